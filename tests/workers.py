"""Real Celery workers for tests: a subprocess on the test database and the test broker."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

CELERY = str(Path(settings.BASE_DIR) / ".venv" / "bin" / "celery")


def worker_database_url() -> str:
    """The database this test runs against (pytest-django's test_<name>), for the worker to use too."""
    db = connection.settings_dict
    credentials = f"{quote(db['USER'])}:{quote(str(db['PASSWORD']))}@" if db.get("USER") else ""
    return f"postgres://{credentials}{db['HOST']}:{db['PORT']}/{db['NAME']}"


def start_celery_worker(*, queues: str, log: Path, app: str = "celery_app", **env: str) -> subprocess.Popen:
    """One solo worker consuming `queues`, with the test settings (and so the test broker DB)."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": worker_database_url(),
        **env,
    }
    return subprocess.Popen(  # noqa: S603 (our own executable and fixed arguments)
        [CELERY, "-A", app, "worker", "-Q", queues, "--pool", "solo", "-c", "1", "--without-gossip",
         "--without-mingle", "-l", "info"],
        cwd=settings.BASE_DIR, env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def stop_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def wait_until(predicate: Callable[[], bool], *, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached after {timeout}s")
