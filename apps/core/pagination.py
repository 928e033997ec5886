from __future__ import annotations

from django.conf import settings
from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request


def requested_page_size(request: Request, *, default: int, param: str = "page_size", maximum: int | None = None) -> int:
    """The page size asked for; too large or malformed is a 400, never silently clamped."""
    maximum = maximum or settings.API_MAX_PAGE_SIZE
    raw = request.query_params.get(param)
    if raw in (None, ""):
        return default
    try:
        size = int(raw)
    except ValueError:
        raise ValidationError({param: [f"Must be an integer, got {raw!r}."]}) from None
    if not 1 <= size <= maximum:
        raise ValidationError({param: [f"Must be between 1 and {maximum}."]})
    return size


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"

    def get_page_size(self, request: Request) -> int:
        return requested_page_size(request, default=self.page_size)


class CursorPagination(pagination.CursorPagination):
    page_size_query_param = "page_size"
    ordering = "id"

    def get_page_size(self, request: Request) -> int:
        return requested_page_size(request, default=self.page_size)
