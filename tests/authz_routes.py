"""The API's routes as the URL resolver knows them, and requests built from placeholder paths.

A policy row names a path such as `maps/<private>/layers/`; the placeholders are filled with the
ids of the world's objects (or, to check the table against the resolver without a database, with
values of the right shape).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from django.http import HttpResponse
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.layers.models import Feature
from tests.authz_world import PLACEHOLDER_SHAPES, SAMPLE_VALUES

API_PREFIX = "api/v1/"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def walk_patterns(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from walk_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def api_routes() -> dict[tuple[str, str], str]:
    """Every (route name, HTTP method) under /api/v1/ → the view action it runs.

    Only viewset routes count (their callback has `.actions`); the router's API root and the
    `.json`-style format-suffix twins of each route are left out, and so is HEAD, which DRF
    answers with the GET action.
    """
    routes: dict[tuple[str, str], str] = {}
    for route, pattern in walk_patterns(get_resolver().url_patterns):
        actions = getattr(pattern.callback, "actions", None)
        if not route.startswith(API_PREFIX) or actions is None or "format" in pattern.pattern.regex.groupindex:
            continue
        for method, action in actions.items():
            if method != "head":
                routes[(pattern.name, method.upper())] = action
    return routes


def fill(template: Any, values: Mapping[str, str]) -> Any:
    """Replace placeholders in a path or a JSON body (recursively)."""
    if isinstance(template, str):
        for name, value in values.items():
            template = template.replace(name, value)
        return template
    if isinstance(template, dict):
        return {key: fill(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(value, values) for value in template]
    return template


SAMPLE_PLACEHOLDERS = {name: SAMPLE_VALUES[shape] for name, shape in PLACEHOLDER_SHAPES.items()}


def route_of(path_template: str) -> str:
    """The route name a placeholder path resolves to (no database needed)."""
    path = "/" + API_PREFIX + fill(path_template, SAMPLE_PLACEHOLDERS).split("?")[0]
    return resolve(path).url_name


def client_as(user: User | None) -> APIClient:
    """A client signed in by session as `user` (CSRF is checked elsewhere), or anonymous."""
    client = APIClient()
    if user is not None:
        client.force_login(user)
    return client


def send(client: APIClient, method: str, path: str, body: Any = None, *, if_match: bool = True) -> HttpResponse:
    """Send one request; feature writes carry the feature's current version in If-Match."""
    unfilled = re.findall(r"<[-\w]+>", path + json.dumps(body))
    if unfilled:
        raise ValueError(f"no object in the world for {unfilled} (in {path} {body})")
    url = "/" + API_PREFIX + path
    extra: dict[str, str] = {}
    match = resolve(url.split("?")[0])
    if if_match and match.url_name == "feature-detail" and method not in SAFE_METHODS:
        version = Feature.objects.unscoped().get(pk=match.kwargs["pk"]).version
        extra["HTTP_IF_MATCH"] = f'"{version}"'
    data = json.dumps(body) if body is not None else None
    response = client.generic(method, url, data=data or "", content_type="application/json", **extra)
    if response.streaming:  # file downloads (exports): read in full, so the leak checks see every byte
        streamed = b"".join(response.streaming_content)
        response = HttpResponse(streamed, status=response.status_code, content_type=response["Content-Type"])
    return response


def response_json(response: HttpResponse) -> Any:
    if not response.content or "json" not in response.get("Content-Type", ""):
        return None
    return json.loads(response.content)
