"""Path converters: ids in any spelling uuid.UUID accepts, canonicalised before any comparison."""

from __future__ import annotations

import uuid

from django.urls import register_converter


class AnyUUIDConverter:
    """Upper-case, braces, ``urn:uuid:`` or no hyphens: all the same id. Anything else: no route (404)."""

    regex = r"[^/]+"

    def to_python(self, value: str) -> uuid.UUID:
        if len(value) > 64:
            raise ValueError("too long")
        return uuid.UUID(value)

    def to_url(self, value) -> str:
        return str(value)


register_converter(AnyUUIDConverter, "anyuuid")
