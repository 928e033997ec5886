"""The DRF exception handler: every error answers `{"code", "detail", "errors"?}`.

`detail` is one human sentence that names the offending field, so a script's
author sees the problem without digging into `errors`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from apps.core.errors import ApplicationError, StaleVersion


def _first_message(errors: Any, path: str = "") -> str:
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = key if key != "non_field_errors" else ""
            return _first_message(value, f"{path}.{name}".strip(".") if name else path)
    if isinstance(errors, list) and errors:
        return _first_message(errors[0], path)
    text = str(errors)
    return f"{path}: {text}" if path else text


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        detail = f"The request body is larger than {limit} bytes; send large data through an import."
        return Response({"code": "payload_too_large", "detail": detail}, status=413)
    if isinstance(exc, ApplicationError):
        body: dict[str, Any] = {"code": exc.code, "detail": exc.message, **exc.extra}
        if exc.field:
            body["errors"] = {exc.field: [exc.message]}
            if not exc.message.startswith(exc.field):
                body["detail"] = f"{exc.field}: {exc.message}"
        response = Response(body, status=exc.status_code)
        if isinstance(exc, StaleVersion) and "current_version" in exc.extra:
            response["ETag"] = f'"{exc.extra["current_version"]}"'
        return response
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()

    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"code": "invalid", "detail": _first_message(exc.detail), "errors": exc.detail}
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        response.data = {"code": codes if isinstance(codes, str) else "error", "detail": str(exc.detail)}
    if response.status_code == status.HTTP_401_UNAUTHORIZED and "WWW-Authenticate" not in response:
        response["WWW-Authenticate"] = 'Token realm="api"'
    return response
