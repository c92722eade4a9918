"""Log formatting: one line per record (JSON or text), every line carrying the request id."""

from __future__ import annotations

import contextvars
import json
import logging
import re
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# Attributes every LogRecord has; anything else was passed in `extra=` and belongs in the line.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    """Stamp the current request's id on every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


# C0, DEL, C1 and the Unicode line/paragraph separators: a request path or header carrying any of
# them could otherwise end a log line early and forge the next one (or drive a terminal).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_NO_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape(value) -> str:
    """``str(value)`` with control characters written as ``\\n``, ``\\x1b``, ``\\u2028``... (one line)."""
    return _CONTROL.sub(_escape_char, str(value))


def _json_escape_char(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"


def _extras(record: logging.LogRecord) -> dict:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD}


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """``{"time","level","logger","message","request_id",...extra}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", request_id_var.get()),
            **_extras(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # json.dumps escapes C0 itself; DEL, C1 and U+2028/U+2029 (line breaks to many readers) it
        # leaves raw. They can only occur inside JSON strings here, so a \uXXXX escape is exact.
        return _CONTROL.sub(_json_escape_char, json.dumps(line, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """``time level logger [request_id] message key=value ...`` on one line, every value escaped
    (:func:`escape`). A traceback follows on its own lines, other control characters escaped."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{escape(key)}={escape(value)}" for key, value in _extras(record).items())
        request_id = escape(getattr(record, "request_id", request_id_var.get()))
        message = escape(record.getMessage())
        line = f"{_timestamp(record)} {record.levelname.lower()} {escape(record.name)} [{request_id}] {message}"
        line = f"{line} {extras}" if extras else line
        if record.exc_info:
            line = f"{line}\n{_CONTROL_NO_NEWLINE.sub(_escape_char, self.formatException(record.exc_info))}"
        return line
