from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.workspaces.tenancy import deactivate_workspace


class WorkspaceScopeResetMiddleware:
    """No workspace scope survives a request (threads and tasks are reused)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        deactivate_workspace()
        try:
            return self.get_response(request)
        finally:
            deactivate_workspace()
