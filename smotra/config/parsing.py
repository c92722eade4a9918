"""Turning a parsed YAML/JSON document into a validated :class:`Config`: value parsers, then sections."""

from __future__ import annotations

import re
from typing import Any

from smotra.config.schema import (
    DATABASE_TYPES,
    ENVIRONMENTS,
    LOG_FORMATS,
    LOG_LEVELS,
    POOL_KEY_ALIASES,
    SSL_MODES,
    AgentConfig,
    AlertsConfig,
    AuthConfig,
    Config,
    ConfigError,
    CorsConfig,
    EmailConfig,
    LoggingConfig,
    PoolConfig,
    PostgresConfig,
    ResultsConfig,
    ServerConfig,
    SqliteConfig,
)

# ---------------------------------------------------------------------------------------------
# Value parsers: each takes (source, key, raw value) and returns a clean value or raises ConfigError.

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(source: str, key: str, value: Any) -> float:
    """A Go-style duration (``15s``, ``1h30m``, ``24h0m0s``) or integer nanoseconds, in seconds."""
    if isinstance(value, bool):
        raise ConfigError(source, key, f"expected a duration such as 15s or 2m, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(source, key, f"duration must not be negative, got {value}")
        return value / 1e9
    text = str(value).strip()
    if text == "0":
        return 0.0
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ConfigError(source, key, f"invalid duration {text!r} (use Go syntax such as 15s, 2m, 1h30m)")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def parse_int(source: str, key: str, value: Any, *, minimum: int = 0, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(source, key, f"expected an integer, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(source, key, f"expected an integer, got {value!r}") from None
    if number < minimum or (maximum is not None and number > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigError(source, key, f"must be {bound}, got {number}")
    return number


def parse_bool(source: str, key: str, value: Any) -> bool:
    """true/false (YAML or JSON booleans, or the strings true/false/1/0/yes/no from the environment)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ConfigError(source, key, f"expected true or false, got {value!r}")


def parse_choice(source: str, key: str, value: Any, choices: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text == "warning":
        text = "warn"
    if text not in choices:
        raise ConfigError(source, key, f"must be one of {', '.join(choices)}, got {value!r}")
    return text


def parse_str(source: str, key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise ConfigError(source, key, f"expected a string, got {type(value).__name__}")
    return str(value)


def _mapping(source: str, key: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(source, key, f"expected a mapping, got {type(value).__name__}")
    return value


# ---------------------------------------------------------------------------------------------
# Sections


def _pool(source: str, prefix: str, block: dict[str, Any]) -> PoolConfig:
    """Pool keys, inline or under a nested ``config:`` block (nested wins when both are given)."""
    raw: dict[str, Any] = {}
    nested = _mapping(source, f"{prefix}.config", block.get("config"))
    for where, mapping in ((prefix, block), (f"{prefix}.config", nested)):
        for name, value in mapping.items():
            if name in POOL_KEY_ALIASES:
                raw[POOL_KEY_ALIASES[name]] = (f"{where}.{name}", value)
    values: dict[str, Any] = {}
    for name, (key, value) in raw.items():
        if name == "type":
            values[name] = parse_str(source, key, value)
        elif name in ("conn_max_lifetime", "conn_max_idle_time"):
            values[name] = parse_duration(source, key, value)
        else:
            values[name] = parse_int(source, key, value)
    return PoolConfig(**values)


def _server(source: str, doc: dict[str, Any]) -> ServerConfig:
    block = _mapping(source, "server", doc.get("server"))
    values: dict[str, Any] = {}
    if "host" in block:
        values["host"] = parse_str(source, "server.host", block["host"]) or "0.0.0.0"
    if "port" in block:
        values["port"] = parse_int(source, "server.port", block["port"], minimum=1, maximum=65535)
    for name in ("read_timeout", "write_timeout", "idle_timeout", "shutdown_timeout", "drain_delay"):
        if name in block:
            values[name] = parse_duration(source, f"server.{name}", block[name])
    if "environment" in block:
        values["environment"] = parse_choice(source, "server.environment", block["environment"], ENVIRONMENTS)
    if block.get("workers") not in (None, 0, "", "0"):  # 0: the default, 2 x cores + 1
        values["workers"] = parse_int(source, "server.workers", block["workers"], minimum=1, maximum=512)
    if "threads" in block:
        values["threads"] = parse_int(source, "server.threads", block["threads"], minimum=1, maximum=256)
    if "trusted_proxies" in block:
        values["trusted_proxies"] = _string_list(source, "server.trusted_proxies", block["trusted_proxies"])
    return ServerConfig(**values)


def _string_list(source: str, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if not isinstance(value, list):
        raise ConfigError(source, key, f"expected a list, got {type(value).__name__}")
    return tuple(parse_str(source, key, item) for item in value)


def _sqlite(source: str, doc: dict[str, Any]) -> SqliteConfig:
    block = _mapping(source, "sqlite_config", doc.get("sqlite_config"))
    filepath = parse_str(source, "sqlite_config.filepath", block.get("filepath")) or SqliteConfig.filepath
    return SqliteConfig(filepath=filepath, pool=_pool(source, "sqlite_config", block))


def _postgres(source: str, doc: dict[str, Any]) -> PostgresConfig:
    block = _mapping(source, "postgres_config", doc.get("postgres_config"))
    values: dict[str, Any] = {"pool": _pool(source, "postgres_config", block)}
    for name in ("host", "username", "password", "database"):
        if block.get(name) not in (None, ""):
            values[name] = parse_str(source, f"postgres_config.{name}", block[name])
    if "port" in block:
        values["port"] = parse_int(source, "postgres_config.port", block["port"], minimum=1, maximum=65535)
    if "sslmode" in block:
        values["sslmode"] = parse_choice(source, "postgres_config.sslmode", block["sslmode"], SSL_MODES)
    if "connect_timeout" in block:
        values["connect_timeout"] = parse_duration(source, "postgres_config.connect_timeout", block["connect_timeout"])
    return PostgresConfig(**values)


def _simple(source: str, doc: dict[str, Any], name: str, cls: type, fields: dict[str, Any]) -> Any:
    """Build a flat section from ``fields``: key -> parser(source, key, value)."""
    block = _mapping(source, name, doc.get(name))
    values = {key: parse(source, f"{name}.{key}", block[key]) for key, parse in fields.items() if key in block}
    return cls(**values)


def _positive(source: str, key: str, value: Any) -> int:
    return parse_int(source, key, value, minimum=1)


def _logging(source: str, doc: dict[str, Any]) -> LoggingConfig:
    return _simple(
        source,
        doc,
        "logging",
        LoggingConfig,
        {
            "level": lambda s, k, v: parse_choice(s, k, v, LOG_LEVELS),
            "format": lambda s, k, v: parse_choice(s, k, v, LOG_FORMATS),
        },
    )


def _auth(source: str, doc: dict[str, Any]) -> AuthConfig:
    return _simple(source, doc, "auth", AuthConfig, {"jwt_secret": parse_str, "jwt_expiration": parse_duration})


def _agent(source: str, doc: dict[str, Any]) -> AgentConfig:
    return _simple(
        source,
        doc,
        "agent",
        AgentConfig,
        {
            "server_url": parse_str,
            "claim_token_expiration_hours": _positive,
            "claim_poll_initial_interval_secs": _positive,
            "claim_poll_increment_secs": parse_int,
            "claim_poll_max_interval_secs": _positive,
            "offline_after": parse_duration,
            "registration_rate_limit": _positive,
            "last_seen_resolution": parse_duration,
            "heartbeat_group_commit": parse_bool,
            "bind_to_source_address": parse_bool,
            "max_body_bytes": _positive,
            "max_unknown_endpoints": _positive,
        },
    )


def _results(source: str, doc: dict[str, Any]) -> ResultsConfig:
    return _simple(
        source,
        doc,
        "results",
        ResultsConfig,
        {
            "max_batch_items": _positive,
            "max_body_bytes": _positive,
            "retention": parse_duration,
            "minute_rollup_retention": parse_duration,
            "hour_rollup_retention": parse_duration,
        },
    )


def _alerts(source: str, doc: dict[str, Any]) -> AlertsConfig:
    return _simple(
        source,
        doc,
        "alerts",
        AlertsConfig,
        {
            "evaluation_interval": parse_duration,
            "max_delivery_attempts": _positive,
            "allow_private_targets": parse_bool,
            "run_in_serve": parse_bool,
            "delivery_timeout": parse_duration,
            "pagerduty_url": parse_str,
        },
    )


def _email(source: str, doc: dict[str, Any]) -> EmailConfig:
    block = _mapping(source, "email", doc.get("email"))
    parsers = {"host": parse_str, "port": _positive, "username": parse_str, "password": parse_str}
    parsers |= {"use_tls": parse_bool, "from": parse_str}  # "from" is a keyword: from_address in Python
    values = {
        ("from_address" if key == "from" else key): parse(source, f"email.{key}", block[key])
        for key, parse in parsers.items()
        if key in block
    }
    return EmailConfig(**values)


def _cors(source: str, doc: dict[str, Any]) -> CorsConfig:
    return _simple(source, doc, "cors", CorsConfig, {"origin": parse_str})


def build_config(doc: dict[str, Any], source: str) -> Config:
    """Turn a parsed document into a validated :class:`Config` with defaults for everything absent."""
    database_type = "sqlite"
    if doc.get("database_type") not in (None, ""):
        raw = doc["database_type"]
        database_type = "postgres" if str(raw).lower() in ("postgres", "postgresql") else str(raw).lower()
        if database_type not in DATABASE_TYPES:
            raise ConfigError(source, "database_type", f"must be one of sqlite, postgres, got {raw!r}")
    return Config(
        source=source,
        server=_server(source, doc),
        database_type=database_type,
        sqlite_config=_sqlite(source, doc),
        postgres_config=_postgres(source, doc),
        logging=_logging(source, doc),
        auth=_auth(source, doc),
        agent=_agent(source, doc),
        results=_results(source, doc),
        alerts=_alerts(source, doc),
        email=_email(source, doc),
        cors=_cors(source, doc),
    )


def parse_age(option: str, text: str) -> float:
    """A command-line age in seconds: ``7d`` (days, which Go durations lack) or a Go duration."""
    if text.endswith("d") and text[:-1].isdigit():
        return int(text[:-1]) * 86400.0
    return parse_duration("command line", option, text)
