"""Strict, bounded JSON parsing for every API body."""

from __future__ import annotations

import json
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


class StrictJSONParser(JSONParser):
    """RFC 8259 JSON only: UTF-8, no NaN/Infinity, bounded size, a clear error otherwise.

    Deep nesting needs no scan of our own: the C decoder raises RecursionError, answered as invalid_json."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.SMOTRA.results.max_body_bytes
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
            data = json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise InvalidJSON(f"Malformed JSON: {exc}") from None
        # "\ud800" alone decodes to a string no database (nor UTF-8) can hold: one such string
        # would fail a whole batch's INSERT with a 500, and the agent would resend it forever.
        if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(data):
            raise InvalidJSON("Request body has an unpaired UTF-16 surrogate escape.")
        return data


def _has_lone_surrogate(data) -> bool:
    try:
        return _lone_surrogate_in(data)
    except RecursionError:  # nested nearly as deep as the decoder allows: refuse rather than guess
        return True


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _lone_surrogate_in(value) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_lone_surrogate_in(key) or _lone_surrogate_in(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_lone_surrogate_in(item) for item in value)
    return False


def _declared_length(parser_context) -> int | None:
    request = (parser_context or {}).get("request")
    length = request.META.get("CONTENT_LENGTH") if request is not None else None
    return int(length) if length and str(length).isdigit() else None
