"""Domain errors raised by services; the API, the admin and the CLI each present them their way."""

from __future__ import annotations


class DomainError(Exception):
    """A refusal with a stable snake_case ``code``, a human ``message`` and the HTTP status it maps to."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None, field: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.status = status or self.status
        self.field = field


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Invalid(DomainError):
    """Bad input caught by a service (not by a serializer); carries the field it is about."""

    status = 400
    code = "validation_error"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after
