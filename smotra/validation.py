"""Fast validators for hot agent payloads (heartbeats, result batches).

DRF serializers cost tens of microseconds per field; a batch of 1,000 results would spend most of
its time there. These plain functions check JSON values and raise :class:`Invalid` naming the field."""

from __future__ import annotations

import sys
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


# Deeper JSON is refused: nothing the agent sends nests past a handful of levels, and recursive
# code (ours, the json encoder, database adapters) must never meet a document ~1,000 levels deep.
MAX_JSON_DEPTH = 64

NUL = "nul"
TOO_DEEP = "too_deep"


def json_problem(value, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """``NUL`` when any string (or key) of a parsed JSON value holds U+0000, ``TOO_DEEP`` when it nests
    more than ``max_depth`` arrays/objects (the value itself is level 1), else None.

    One iterative walk for both (it runs on every item of every batch): PostgreSQL text and jsonb
    cannot store U+0000, and one such string would fail a whole batch's INSERT, resent forever."""
    kind = type(value)
    if kind is str:
        return NUL if "\x00" in value else None
    if kind is not dict and kind is not list:
        return None
    pending = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > max_depth:
            return TOO_DEEP
        if type(node) is dict:
            if "\x00" in "".join(node):  # JSON keys are strings
                return NUL
            node = node.values()
        for item in node:
            kind = type(item)
            if kind is str:
                if "\x00" in item:
                    return NUL
            elif kind is dict or kind is list:
                pending.append((item, depth + 1))
    return None


def contains_nul(value) -> bool:
    """Whether any string (or key) in a parsed JSON value holds U+0000, at any depth."""
    return json_problem(value, max_depth=sys.maxsize) == NUL


def refuse_hostile(value, path: str, *, known: tuple[str, ...] = (), prefix: str = "") -> None:
    """Raise :class:`Invalid` naming ``path`` when ``value`` holds a NUL or nests deeper than
    :data:`MAX_JSON_DEPTH`. Too deep names the first of the dotted ``known`` sub-paths (deepest
    first, e.g. ``agent_status.cache_stats``, ``agent_status``) that holds the excess, as
    ``prefix + sub_path``; the walk is repeated only then, on the refused value."""
    problem = json_problem(value)
    if problem == NUL:
        raise Invalid(f"{path} must not contain NUL (U+0000) characters.", field=path)
    if problem == TOO_DEEP:
        field = next((prefix + sub for sub in known if _too_deep_at(value, sub)), path)
        limit = f"at most {MAX_JSON_DEPTH} levels of arrays and objects, counted from {path}"
        raise Invalid(f"{field} is nested too deeply: {limit}.", field=field)


def _too_deep_at(value, dotted: str) -> bool:
    depth = 1
    for key in dotted.split("."):
        value = value.get(key) if type(value) is dict else None
        depth += 1
    return value is not None and json_problem(value, MAX_JSON_DEPTH - depth + 1) == TOO_DEEP
