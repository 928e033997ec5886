"""The production settings and the Compose deployment hold together.

The settings tests run manage.py in a subprocess: production settings are
evaluated at import time, which cannot be repeated inside this process.
"""

from __future__ import annotations

import ast
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from celery_app import app as celery_app

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_DIR = REPO_ROOT / "compose"
REQUIRED_VARIABLES = ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL")
WORKERS = ("worker-imports", "worker-tiling", "worker-analysis", "worker-posters")
SERVICES = {"web", *WORKERS, "beat", "migrate", "postgis", "redis"}
# Only what the interpreter needs is passed on, so a developer's shell (say,
# SECURE_SSL_REDIRECT=false) cannot change what the deploy checks see.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


def production_environment(**overrides: str | None) -> dict[str, str]:
    """The required variables and nothing optional; an override of None removes one."""
    environment = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="meridian.example.com",
        DATABASE_URL=os.environ["DATABASE_URL"],
        REDIS_URL=os.environ["REDIS_URL"],
    )
    for name, value in overrides.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return environment


def run_deploy_check(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def compose_services() -> dict[str, dict[str, Any]]:
    with (COMPOSE_DIR / "docker-compose.yml").open() as compose_file:
        return yaml.safe_load(compose_file)["services"]


def test_production_settings_pass_the_deploy_checks() -> None:
    result = run_deploy_check(production_environment())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        *[pytest.param(name, None, id=f"{name}-unset") for name in REQUIRED_VARIABLES],
        pytest.param("SECRET_KEY", "", id="SECRET_KEY-empty"),
    ],
)
def test_production_settings_refuse_to_start_and_name_a_missing_variable(variable: str, value: str | None) -> None:
    result = run_deploy_check(production_environment(**{variable: value}))

    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("django.core.exceptions.ImproperlyConfigured")
    assert variable in message


def test_production_settings_refuse_a_wildcard_allowed_host() -> None:
    result = run_deploy_check(production_environment(ALLOWED_HOSTS="*"))

    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stderr.strip().splitlines()[-1]


def test_compose_defines_every_service_with_healthchecks_on_web_and_the_datastores() -> None:
    services = compose_services()

    assert services.keys() >= SERVICES
    for name in ("web", "postgis", "redis"):
        assert services[name]["healthcheck"]["test"], name
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["postgis"]["image"] == "postgis/postgis:15-3.3"


def test_web_workers_and_beat_start_only_after_migrate_completes() -> None:
    services = compose_services()

    assert services["migrate"]["command"][-2:] == ["migrate", "--noinput"]
    for name in ("web", *WORKERS, "beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name


def test_every_celery_queue_is_consumed_by_a_compose_worker_with_prefetch_one() -> None:
    services = compose_services()
    consumed: set[str] = set()
    for name in WORKERS:
        command: list[str] = services[name]["command"]
        assert command[command.index("--prefetch-multiplier") + 1] == "1", name
        consumed.update(command[command.index("-Q") + 1].split(","))

    assert consumed == {queue.name for queue in celery_app.conf.task_queues}


def test_every_variable_the_production_settings_read_is_documented() -> None:
    settings_dir = REPO_ROOT / "config" / "settings"
    production_source = (settings_dir / "production.py").read_text()
    source = (settings_dir / "base.py").read_text() + production_source
    read = set(re.findall(r"\benv(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]*)\"", source)) | set(REQUIRED_VARIABLES)
    read.discard("DEBUG")  # production pins DEBUG off whatever the environment says
    example = (COMPOSE_DIR / ".env.example").read_text()
    in_env_example = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE))
    in_docstring = set(re.findall(r"[A-Z][A-Z0-9_]{2,}", ast.get_docstring(ast.parse(production_source)) or ""))

    assert read - in_env_example == set(), "add them to compose/.env.example"
    assert read - in_docstring == set(), "list them in the config/settings/production.py docstring"
