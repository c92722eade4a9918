"""Per-agent configuration overrides: what may be overridden, with which types and ranges.

The agent's own validators reject zeros and wrong types, so a bad override would break the agent's
configuration; we refuse it here instead. Defaults are the contract's (§6.1)."""

from __future__ import annotations

from typing import Any

from smotra.errors import Invalid

DEFAULTS: dict[str, dict[str, Any]] = {
    "monitoring": {
        "interval_secs": 60,
        "timeout_secs": 5,
        "ping_count": 3,
        "max_concurrent": 10,
        "traceroute_on_failure": False,
        "traceroute_max_hops": 30,
    },
    "server": {
        "url": None,
        "api_key": None,
        "report_interval_secs": 300,
        "heartbeat_interval_secs": 300,
        "verify_tls": True,
        "timeout_secs": 30,
        "retry_attempts": 3,
    },
    "storage": {"cache_dir": "./cache", "max_cached_results": 10000, "max_cache_age_secs": 86400},
}

# key -> (type, minimum, maximum); None bounds = unbounded. ``server.api_key`` is never settable.
_RULES: dict[str, dict[str, tuple]] = {
    "monitoring": {
        "interval_secs": (int, 1, 86400),
        "timeout_secs": (int, 1, 3600),
        "ping_count": (int, 1, 100),
        "max_concurrent": (int, 1, 10000),
        "traceroute_on_failure": (bool, None, None),
        "traceroute_max_hops": (int, 1, 255),
    },
    "server": {
        "url": (str, None, None),
        "report_interval_secs": (int, 1, 86400),
        "heartbeat_interval_secs": (int, 1, 86400),
        "verify_tls": (bool, None, None),
        "timeout_secs": (int, 1, 3600),
        "retry_attempts": (int, 0, 100),
    },
    "storage": {
        "cache_dir": (str, None, None),
        "max_cached_results": (int, 1, 10_000_000),
        "max_cache_age_secs": (int, 1, 365 * 86400),
    },
}


def _check(block: str, key: str, value: Any) -> Any:
    field = f"{block}_overrides.{key}"
    if key not in _RULES[block]:
        raise Invalid(f"{key!r} cannot be overridden; allowed: {', '.join(_RULES[block])}.", field=field)
    kind, low, high = _RULES[block][key]
    if block == "server" and key == "url" and value is None:
        return None
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise Invalid(f"{key} must be an integer.", field=field)
    if kind is not int and not isinstance(value, kind):
        raise Invalid(f"{key} must be a {kind.__name__}.", field=field)
    if kind is int and ((low is not None and value < low) or (high is not None and value > high)):
        raise Invalid(f"{key} must be between {low} and {high}.", field=field)
    if kind is str and not value.strip():
        raise Invalid(f"{key} must not be empty.", field=field)
    if kind is str and "\x00" in value:  # PostgreSQL's jsonb cannot store NUL: refuse it, not a 500
        raise Invalid(f"{key} must not contain NUL characters.", field=field)
    return value


def overrides_validate(block: str, overrides: Any) -> dict[str, Any]:
    """A clean copy of ``overrides`` for ``block`` (monitoring/server/storage), or Invalid."""
    if not isinstance(overrides, dict):
        raise Invalid("Overrides must be a JSON object.", field=f"{block}_overrides")
    return {key: _check(block, key, value) for key, value in overrides.items()}


def effective(block: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Defaults with the agent's overrides applied (secrets stay null whatever is stored)."""
    merged = {**DEFAULTS[block], **{k: v for k, v in overrides.items() if k in _RULES[block]}}
    if block == "server":
        merged["api_key"] = None
    return merged
