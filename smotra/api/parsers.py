"""Strict, bounded JSON parsing for every API body."""

from __future__ import annotations

import json
import math
import re

from django.conf import settings
from rest_framework import exceptions
from rest_framework.parsers import JSONParser


class InvalidJSON(exceptions.ParseError):
    default_code = "invalid_json"
    default_detail = "Request body is not valid JSON."


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "payload_too_large"
    default_detail = "Request body is too large."


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a valid JSON number")


# An exponent of three digits or more, or 300 digits in a row: the only ways to write a number past
# a float's range (about 1.8e308).
_HUGE_NUMBER = re.compile(r"[eE]\+?0*[0-9]{3}|[0-9]{300}")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:40]} is out of the range of a JSON number this server keeps")
    return value


class StrictJSONParser(JSONParser):
    """RFC 8259 JSON only: UTF-8, no NaN/Infinity, bounded size, a clear error otherwise.

    The size limit is the route's (``request.body_limit``, set by BodySizeLimitMiddleware), else
    ``results.max_body_bytes``. Nesting beyond what the C decoder accepts (~1,000 levels, a
    RecursionError) is invalid_json; the services refuse anything past MAX_JSON_DEPTH."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = _body_limit(parser_context)
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes.")
        if not raw:
            raise InvalidJSON("Request body is empty; a JSON document is required.")
        declared = _declared_length(parser_context)
        if declared is not None and len(raw) < declared:  # the client closed before sending it all
            raise InvalidJSON(f"Request body ended after {len(raw)} of {declared} bytes.")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJSON(f"Request body is not valid UTF-8 (byte {exc.start}).") from None
        try:
            # A number too large for a float would be stored as infinity, which JSON cannot write
            # back (PostgreSQL's jsonb refuses it: the batch would fail, resent forever). Only a
            # text that could hold one pays for checking every number.
            finite = {"parse_float": _finite_float} if _HUGE_NUMBER.search(text) else {}
            data = json.loads(text, parse_constant=_refuse_constant, **finite)
        except (ValueError, RecursionError) as exc:
            raise InvalidJSON(f"Malformed JSON: {exc}") from None
        # "\ud800" alone decodes to a string no database (nor UTF-8) can hold: one such string
        # would fail a whole batch's INSERT with a 500, and the agent would resend it forever.
        if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(data):
            raise InvalidJSON("Request body has an unpaired UTF-16 surrogate escape.")
        return data


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _has_lone_surrogate(data) -> bool:
    """Whether any string or key of ``data`` holds an unpaired surrogate: an iterative walk, so a
    document nested as deep as the decoder allows (~1,000 levels) costs no recursion."""
    pending = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if not _encodable(value):
                return True
        elif isinstance(value, dict):
            pending.extend(value)  # the keys
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _body_limit(parser_context) -> int:
    request = (parser_context or {}).get("request")
    limit = getattr(request, "body_limit", None) if request is not None else None
    return limit if isinstance(limit, int) else settings.SMOTRA.results.max_body_bytes


def _declared_length(parser_context) -> int | None:
    request = (parser_context or {}).get("request")
    length = request.META.get("CONTENT_LENGTH") if request is not None else None
    return int(length) if length and str(length).isdigit() else None
