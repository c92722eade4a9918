"""Fast validators for hot agent payloads (heartbeats, result batches).

DRF serializers cost tens of microseconds per field; a batch of 1,000 results would spend most of
its time there. These plain functions check JSON values and raise :class:`Invalid` naming the field."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from smotra.errors import Invalid

MAX_NUMBER = 1e15


def _present(obj: dict, key: str, path: str, required: bool):
    value = obj.get(key)
    if value is None and required:
        raise Invalid(f"{path} is required.", field=path)
    return value


def number(obj: dict, key: str, path: str, *, required: bool = False, integer: bool = False, maximum=MAX_NUMBER):
    """A non-negative number (an integer when ``integer``), or None when absent and optional."""
    value = _present(obj, key, path, required)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise Invalid(f"{path} must be {'an integer' if integer else 'a number'}.", field=path)
    if value < 0 or value > maximum:
        raise Invalid(f"{path} must be between 0 and {maximum:g}.", field=path)
    return value


def boolean(obj: dict, key: str, path: str, *, required: bool = False):
    value = _present(obj, key, path, required)
    if value is not None and not isinstance(value, bool):
        raise Invalid(f"{path} must be true or false.", field=path)
    return value


def string(obj: dict, key: str, path: str, *, required: bool = False, max_length: int = 255):
    value = _present(obj, key, path, required)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"{path} must be a string.", field=path)
    if len(value) > max_length:
        raise Invalid(f"{path} must be at most {max_length} characters.", field=path)
    return value


def timestamp(obj: dict, key: str, path: str, *, required: bool = False) -> datetime | None:
    """RFC 3339 with a zone (``Z`` or an offset), any number of fractional digits."""
    value = _present(obj, key, path, required)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise Invalid(f"{path} must be an RFC 3339 timestamp.", field=path)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{path} must be an RFC 3339 timestamp.", field=path) from None
    if parsed.tzinfo is None:
        raise Invalid(f"{path} must carry a time zone (e.g. Z).", field=path)
    try:
        # In UTC; an instant that leaves Python's range once converted (year 1 or 9999 with an
        # offset) is refused: SQLite's adapter fails on it and PostgreSQL stores an unreadable date.
        return parsed.astimezone(UTC)
    except OverflowError:
        raise Invalid(f"{path} is out of range.", field=path) from None


def uuid_value(obj: dict, key: str, path: str) -> uuid.UUID:
    value = _present(obj, key, path, True)
    if not isinstance(value, str) or len(value) > 64:
        raise Invalid(f"{path} must be a UUID.", field=path)
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Invalid(f"{path} must be a UUID.", field=path) from None


def mapping(obj: dict, key: str, path: str, *, required: bool = False) -> dict | None:
    value = _present(obj, key, path, required)
    if value is not None and not isinstance(value, dict):
        raise Invalid(f"{path} must be an object.", field=path)
    return value


def number_list(obj: dict, key: str, path: str, *, required: bool = False, max_items: int = 10_000) -> list | None:
    value = _present(obj, key, path, required)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > max_items:
        raise Invalid(f"{path} must be a list of at most {max_items} numbers.", field=path)
    for index, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not 0 <= item <= MAX_NUMBER:
            raise Invalid(f"{path}[{index}] must be a non-negative number.", field=f"{path}[{index}]")
    return value


_SCALARS = frozenset({int, float, bool, type(None)})


def contains_nul(value) -> bool:
    """Whether any string (or key) in a parsed JSON value holds U+0000. PostgreSQL text and jsonb
    cannot store it: one such string would fail a whole batch's INSERT, resent by the agent forever."""
    kind = type(value)
    if kind is str:
        return "\x00" in value
    if kind is dict:
        return any("\x00" in key or (type(item) not in _SCALARS and contains_nul(item)) for key, item in value.items())
    if kind is list:
        return any(type(item) not in _SCALARS and contains_nul(item) for item in value)
    return False
