"""Strict, bounded JSON parsing for every API body."""

from __future__ import annotations

import json

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
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJSON(f"Request body is not valid UTF-8 (byte {exc.start}).") from None
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise InvalidJSON(f"Malformed JSON: {exc}") from None
