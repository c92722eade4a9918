"""The HTTP server's own answers (408, 414, 431, 400...) in the API's JSON error shape."""

from __future__ import annotations

import json
import re
from http import HTTPStatus

from gunicorn.http.errors import (
    ChunkMissingTerminator,
    InvalidChunkExtension,
    InvalidChunkSize,
)
from uuid6 import uuid7

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
RECV_SIZE = 64 * 1024
UNLIMITED_REQUEST_LINE = 1024 * 1024  # gunicorn's bound for limit_request_line = 0 in its fast parser
LINGER_SECONDS = 2.0  # util.close_graceful's defaults
LINGER_DRAIN = 64 * 1024
CHUNK_ERRORS = (InvalidChunkSize, ChunkMissingTerminator, InvalidChunkExtension)
ERROR_CODES = {
    400: "bad_request",
    403: "forbidden",
    408: "request_timeout",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "request_header_fields_too_large",
    500: "internal_error",
    501: "not_implemented",
}
REASONS = {414: "URI Too Long"}  # RFC 9110's phrase, as gunicorn writes it (Python: "Request-URI Too Long")
ERROR_MESSAGES = {
    414: "The request line is too long.",
    431: "The request header fields are too large.",
    500: "Internal server error.",
}
_HEX = re.compile(rb"[0-9A-Fa-f]+")


def error_answer(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 answer with the API's error body, closing the connection."""
    request_id = str(uuid7())
    reason = REASONS.get(status) or HTTPStatus(status).phrase
    code = ERROR_CODES.get(status, "bad_request" if status < 500 else "internal_error")
    body = json.dumps({"error": code, "message": message, "request_id": request_id}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nX-Request-ID: {request_id}\r\n\r\n"
    )
    return head.encode("ascii") + body


def error_message(status: int, exc: BaseException) -> str:
    if isinstance(exc, CHUNK_ERRORS):
        return "The chunked framing of the request body is invalid."
    # Otherwise gunicorn's words for what was wrong, clipped: they may quote the request.
    return ERROR_MESSAGES.get(status) or f"{HTTPStatus(status).phrase}: {str(exc)[:200]}"


def body_limit(path: str) -> int:
    """The largest body ``path`` accepts, as BodySizeLimitMiddleware enforces it."""
    from smotra.middleware import body_limit  # here: it needs Django set up, which a worker does after import

    return body_limit(path)


class ErrorPage:
    """Stands in for the client socket while gunicorn writes its HTML error page; keeps the status."""

    def __init__(self):
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0  # util.write_nonblock then just calls sendall

    def sendall(self, data: bytes) -> None:
        self.data += data

    def status(self) -> int:
        try:
            return int(self.data.split(b" ", 2)[1])  # b"HTTP/1.1 431 Request Header ..."
        except (IndexError, ValueError):
            return 500
