"""The one error shape of the API (contract §2), produced for every failure on an API path.

``{"error": code, "message": text, "details": [{"field", "issue"}], "request_id": id}``
"""

from __future__ import annotations

import logging
import sys

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions

from smotra.errors import DomainError, RateLimited
from smotra.http import is_api_path
from smotra.logging import request_id_var

logger = logging.getLogger("smotra.errors")

DATABASE_RETRY_AFTER_SECONDS = 5

# DRF exception class -> (code, message used when the exception carries only DRF's default text)
_DRF_CODES: list[tuple[type[exceptions.APIException], str, str | None]] = [
    (exceptions.NotAuthenticated, "unauthorized", "No authentication provided"),
    (exceptions.AuthenticationFailed, "unauthorized", "Invalid authentication"),
    (exceptions.PermissionDenied, "forbidden", None),
    (exceptions.NotFound, "not_found", None),
    (exceptions.MethodNotAllowed, "method_not_allowed", None),
    (exceptions.UnsupportedMediaType, "unsupported_media_type", None),
    (exceptions.NotAcceptable, "not_acceptable", None),
    (exceptions.Throttled, "rate_limited", None),
    (exceptions.ParseError, "invalid_json", None),
    (exceptions.ValidationError, "validation_error", "Request validation failed"),
]


def error_response(status: int, code: str, message: str, details: list[dict] | None = None, headers=None):
    """Build the contract's error body. Middleware and Django handlers use it; views raise instead."""
    body = {"error": code, "message": message}
    if details:
        body["details"] = details
    body["request_id"] = request_id_var.get()
    response = JsonResponse(body, status=status, headers=headers)
    return response


def flatten_errors(errors, prefix: str = "") -> list[dict]:
    """Serializer errors (nested dicts/lists) -> ``[{"field": "a.b[0].c", "issue": "..."}]``."""
    if isinstance(errors, dict):
        details = []
        for key, value in errors.items():
            if isinstance(key, int):  # ListField/many=True children are keyed by index
                path = f"{prefix}[{key}]"
            elif key in ("non_field_errors", "detail"):  # an object-level error belongs to the object
                path = prefix or "body"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            details += flatten_errors(value, path)
        return details
    if isinstance(errors, list):
        if all(not isinstance(item, (dict, list)) for item in errors):
            return [{"field": prefix or "body", "issue": str(item)} for item in errors]
        details = []
        for index, item in enumerate(errors):
            if item:
                details += flatten_errors(item, f"{prefix}[{index}]")
        return details
    return [{"field": prefix or "body", "issue": str(errors)}]


def _validation_message(details: list[dict]) -> str:
    first = details[0] if details else None
    return f"Invalid {first['field']}: {first['issue']}" if first else "Request validation failed"


def _from_drf(exc: exceptions.APIException):
    code, default_message = next(
        ((code, message) for cls, code, message in _DRF_CODES if isinstance(exc, cls)), (None, None)
    )
    if isinstance(exc, exceptions.ValidationError):
        details = flatten_errors(exc.detail)
        return exc.status_code, "validation_error", _validation_message(details), details
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if code is None:  # an APIException subclass of ours: its default_code is the contract code
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
    if default_message and str(detail) == str(type(exc).default_detail):
        detail = default_message
    return exc.status_code, code, str(detail), None


def exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every exception of an API view becomes the contract's error body."""
    headers = {}
    if isinstance(exc, DomainError):
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        details = [{"field": exc.field, "issue": exc.message}] if exc.field else None
        return error_response(exc.status, exc.code, exc.message, details, headers)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        status, code, message, details = _from_drf(exc)
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        if getattr(exc, "auth_header", None):  # set by APIView from the view's first authenticator
            headers["WWW-Authenticate"] = exc.auth_header
        return error_response(status, code, message, details, headers)
    return unexpected_error_response(exc)


def unexpected_error_response(exc: BaseException):
    """503 when the database is unreachable (clients retry), else a 500 without a traceback."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.error("database unavailable: %s", exc)
        return error_response(
            503,
            "service_unavailable",
            "The database is unavailable; retry later.",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, DatabaseError):
        logger.exception("database error")
    else:
        logger.error("unhandled exception", exc_info=(type(exc), exc, exc.__traceback__))
    return error_response(500, "internal_error", "An unexpected error occurred.")


# Django-level handlers (errors outside DRF views: unknown routes, middleware failures).


def handler404(request, exception=None):
    if not is_api_path(request.path):
        return defaults.page_not_found(request, exception)
    return error_response(404, "not_found", f"No route for {request.method} {request.path}")


def handler500(request):
    exc = sys.exc_info()[1]
    if not is_api_path(request.path):
        return defaults.server_error(request)
    if exc is not None and isinstance(exc, (OperationalError, InterfaceError)):
        return unexpected_error_response(exc)
    return error_response(500, "internal_error", "An unexpected error occurred.")


def handler400(request, exception=None):
    if not is_api_path(request.path):
        return defaults.bad_request(request, exception)
    return error_response(400, "bad_request", "The request could not be understood.")


def handler403(request, exception=None):
    if not is_api_path(request.path):
        return defaults.permission_denied(request, exception)
    return error_response(403, "forbidden", "You do not have permission to perform this action.")
