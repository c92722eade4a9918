"""Configuration file loader: the original server's YAML/JSON format, with defaults and env overrides.

The file is found by ``-c/--config`` (``manage.py`` turns it into ``SMOTRA_CONFIG``), else the
environment variable ``SMOTRA_CONFIG``, else ``CONFIG_FILE``, else ``./config.yaml`` when it exists,
else built-in development defaults (SQLite). Environment variables override the file.

Every problem raises :class:`ConfigError`, whose ``str()`` is one line naming the source, the key and
what is wrong, so the process can stop before it serves without a traceback.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import environ
import yaml

DEFAULT_JWT_SECRET = "smotra-development-secret-do-not-use-in-production"  # noqa: S105 - refused in production
# Values that people paste from examples; refused in production like an empty secret.
PLACEHOLDER_SECRETS = {DEFAULT_JWT_SECRET, "change-me", "changeme", "secret", "your-secret-key"}
MIN_PRODUCTION_SECRET_LENGTH = 32

ENVIRONMENTS = ("development", "staging", "production")
DATABASE_TYPES = ("sqlite", "postgres")
SSL_MODES = ("disable", "require", "verify-full")
LOG_LEVELS = ("debug", "info", "warn", "error")
LOG_FORMATS = ("json", "text")

# Pool keys of the original format and their JSON spellings, normalised to one name.
POOL_KEY_ALIASES = {
    "type": "type",
    "maxopenconns": "max_open_conns",
    "max_open_conns": "max_open_conns",
    "maxidleconns": "max_idle_conns",
    "max_idle_conns": "max_idle_conns",
    "connmaxlifetime": "conn_max_lifetime",
    "conn_max_lifetime": "conn_max_lifetime",
    "connmaxidletime": "conn_max_idle_time",
    "conn_max_idle_time": "conn_max_idle_time",
}

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class ConfigError(Exception):
    """A configuration problem, rendered as a single line: ``source: key: problem``."""

    def __init__(self, source: str, key: str, problem: str):
        self.source, self.key, self.problem = source, key, problem
        super().__init__(f"{source}: {key}: {problem}")


@dataclass(frozen=True)
class PoolConfig:
    """Connection pool knobs of the original format (see README for how each maps onto Django)."""

    type: str = ""
    max_open_conns: int = 0  # 0 = unlimited
    max_idle_conns: int = 2
    conn_max_lifetime: float = 0.0  # seconds, 0 = unlimited
    conn_max_idle_time: float = 0.0


@dataclass(frozen=True)
class ServerConfig:
    host: str = "0.0.0.0"
    port: int = 8080
    read_timeout: float = 15.0
    write_timeout: float = 15.0
    idle_timeout: float = 120.0
    shutdown_timeout: float = 30.0
    drain_delay: float = 3.0
    environment: str = "development"
    workers: int = 0  # 0 = 2 x cores + 1 (capped by max_open_conns)
    threads: int = 4
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class SqliteConfig:
    filepath: str = "./data/smotra.db"
    pool: PoolConfig = field(default_factory=PoolConfig)


@dataclass(frozen=True)
class PostgresConfig:
    host: str = "localhost"
    port: int = 5432
    username: str = "postgres"
    password: str = ""
    database: str = "smotra"
    sslmode: str = "disable"
    connect_timeout: float = 5.0
    pool: PoolConfig = field(default_factory=PoolConfig)


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "info"
    format: str = "json"


@dataclass(frozen=True)
class AuthConfig:
    jwt_secret: str = DEFAULT_JWT_SECRET
    jwt_expiration: float = 24 * 3600.0


@dataclass(frozen=True)
class AgentConfig:
    server_url: str = ""
    claim_token_expiration_hours: int = 24
    claim_poll_initial_interval_secs: int = 5
    claim_poll_increment_secs: int = 5
    claim_poll_max_interval_secs: int = 60
    offline_after: float = 15 * 60.0
    registration_rate_limit: int = 60  # registrations per source address per minute
    last_seen_resolution: float = 5.0
    # Deliver a claimed agent's key only to a poll from the address that registered it.
    bind_to_source_address: bool = True
    # Registration, claim, heartbeat and report bodies: far smaller than a result batch.
    max_body_bytes: int = 64 * 1024
    # Unknown endpoint ids remembered per agent; beyond this they are only counted in a metric.
    max_unknown_endpoints: int = 1000


@dataclass(frozen=True)
class ResultsConfig:
    max_batch_items: int = 1000
    max_body_bytes: int = 10 * 1024 * 1024
    retention: float = 30 * 86400.0


@dataclass(frozen=True)
class CorsConfig:
    origin: str = ""


@dataclass(frozen=True)
class Config:
    """The whole configuration, every value already validated and defaulted."""

    source: str = "built-in defaults"
    server: ServerConfig = field(default_factory=ServerConfig)
    database_type: str = "sqlite"
    database_url: str = ""
    sqlite_config: SqliteConfig = field(default_factory=SqliteConfig)
    postgres_config: PostgresConfig = field(default_factory=PostgresConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    results: ResultsConfig = field(default_factory=ResultsConfig)
    cors: CorsConfig = field(default_factory=CorsConfig)
    cache_url: str = ""

    @property
    def effective_workers(self) -> int:
        """Gunicorn worker processes: explicit, else 2 x cores + 1 capped by the pool's max_open_conns."""
        if self.server.workers:
            return self.server.workers
        workers = 2 * (os.cpu_count() or 1) + 1
        cap = self.pool.max_open_conns // max(self.server.threads, 1)
        return max(1, min(workers, cap)) if self.pool.max_open_conns else workers

    @property
    def effective_database_type(self) -> str:
        """DATABASE_URL, when set, decides the engine (and so whose pool keys apply)."""
        if self.database_url:
            return "sqlite" if self.database_url.startswith("sqlite") else "postgres"
        return self.database_type

    @property
    def pool(self) -> PoolConfig:
        if self.effective_database_type == "postgres":
            return self.postgres_config.pool
        return self.sqlite_config.pool


# ---------------------------------------------------------------------------------------------
# Finding and reading the file


def find_config_path(environ_: dict[str, str] | None = None) -> Path | None:
    """The configuration file to read, by the documented precedence, or None for built-in defaults."""
    env = os.environ if environ_ is None else environ_
    for name in ("SMOTRA_CONFIG", "CONFIG_FILE"):
        if env.get(name):
            return Path(env[name])
    default = Path("config.yaml")
    return default if default.exists() else None


def read_document(path: Path) -> dict[str, Any]:
    """Parse a YAML or JSON file into a mapping (JSON by extension, YAML otherwise)."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, "(file)", f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        document = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            source, "(file)", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(source, "(file)", f"invalid YAML{where}: {problem}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(source, "(file)", "the top level must be a mapping of keys")
    return document


# ---------------------------------------------------------------------------------------------
# Value parsers: each takes (source, key, raw value) and returns a clean value or raises ConfigError.


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
        {"max_batch_items": _positive, "max_body_bytes": _positive, "retention": parse_duration},
    )


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
        cors=_cors(source, doc),
    )


# ---------------------------------------------------------------------------------------------
# Environment overrides

# variable -> (section, key); parsed with the same parsers as the file.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "SMOTRA_HOST": ("server", "host"),
    "SMOTRA_PORT": ("server", "port"),
    "SMOTRA_WORKERS": ("server", "workers"),
    "SMOTRA_THREADS": ("server", "threads"),
    "SMOTRA_ENVIRONMENT": ("server", "environment"),
    "SMOTRA_SHUTDOWN_TIMEOUT": ("server", "shutdown_timeout"),
    "SMOTRA_DATABASE_TYPE": ("", "database_type"),
    "SMOTRA_SQLITE_PATH": ("sqlite_config", "filepath"),
    "SMOTRA_DB_HOST": ("postgres_config", "host"),
    "SMOTRA_DB_PORT": ("postgres_config", "port"),
    "SMOTRA_DB_USER": ("postgres_config", "username"),
    "SMOTRA_DB_PASSWORD": ("postgres_config", "password"),
    "SMOTRA_DB_NAME": ("postgres_config", "database"),
    "SMOTRA_DB_SSLMODE": ("postgres_config", "sslmode"),
    "SMOTRA_LOG_LEVEL": ("logging", "level"),
    "SMOTRA_LOG_FORMAT": ("logging", "format"),
    "SMOTRA_JWT_SECRET": ("auth", "jwt_secret"),
    "SMOTRA_JWT_EXPIRATION": ("auth", "jwt_expiration"),
    "SMOTRA_SERVER_URL": ("agent", "server_url"),
    "SMOTRA_OFFLINE_AFTER": ("agent", "offline_after"),
    "SMOTRA_REGISTRATION_RATE_LIMIT": ("agent", "registration_rate_limit"),
    "SMOTRA_BIND_TO_SOURCE_ADDRESS": ("agent", "bind_to_source_address"),
    "SMOTRA_MAX_BATCH_ITEMS": ("results", "max_batch_items"),
    "SMOTRA_RESULTS_RETENTION": ("results", "retention"),
    "SMOTRA_CORS_ORIGIN": ("cors", "origin"),
}


def apply_environment(doc: dict[str, Any], env: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Overlay environment variables onto the document; returns it and {dotted key: variable used}."""
    merged = {key: (dict(value) if isinstance(value, dict) else value) for key, value in doc.items()}
    used: dict[str, str] = {}
    for variable, (section, key) in ENV_OVERRIDES.items():
        if variable not in env:
            continue
        used[f"{section}.{key}" if section else key] = variable
        if section:
            merged.setdefault(section, {})
            if not isinstance(merged[section], dict):
                merged[section] = {}
            merged[section][key] = env[variable]
        else:
            merged[key] = env[variable]
    return merged, used


def _check_database_url(url: str) -> str:
    if not url:
        return ""
    try:
        parsed = environ.Env.db_url_config(url)
    except Exception as exc:  # django-environ raises several types for malformed URLs
        raise ConfigError("environment", "DATABASE_URL", f"not a database URL: {exc}") from None
    if parsed.get("ENGINE") not in ("django.db.backends.sqlite3", "django.db.backends.postgresql"):
        raise ConfigError("environment", "DATABASE_URL", "only sqlite:// and postgres:// URLs are supported")
    return url


def _check_cache_url(url: str) -> str:
    if not url:
        return ""
    try:
        environ.Env.cache_url_config(url)
    except Exception as exc:  # django-environ raises several types for malformed URLs
        raise ConfigError("environment", "SMOTRA_CACHE_URL", f"not a cache URL: {exc}") from None
    return url


def _check_production(config: Config) -> None:
    if config.server.environment != "production":
        return
    secret = config.auth.jwt_secret
    if not secret or secret in PLACEHOLDER_SECRETS:
        raise ConfigError(config.source, "auth.jwt_secret", "must be set to a private value in production")
    if len(secret) < MIN_PRODUCTION_SECRET_LENGTH:
        raise ConfigError(
            config.source,
            "auth.jwt_secret",
            f"must be at least {MIN_PRODUCTION_SECRET_LENGTH} characters in production",
        )


def _check_workers(config: Config) -> None:
    max_open = config.pool.max_open_conns
    if max_open and config.server.workers and config.server.workers * config.server.threads > max_open:
        raise ConfigError(
            config.source,
            "server.workers",
            f"{config.server.workers} workers x {config.server.threads} threads can open more "
            f"database connections than max_open_conns ({max_open})",
        )


def load_config(path: Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Read, default, override and validate the configuration. Raises :class:`ConfigError`."""
    env = dict(os.environ if env is None else env)
    path = find_config_path(env) if path is None else path
    doc, source = ({}, "built-in defaults") if path is None else (read_document(path), str(path))
    doc, from_env = apply_environment(doc, env)
    try:
        config = build_config(doc, source)
    except ConfigError as exc:
        if exc.key in from_env:  # name the variable that carried the bad value, not the file
            raise ConfigError("environment", from_env[exc.key], exc.problem) from None
        raise
    database_url = _check_database_url(env.get("DATABASE_URL", ""))
    config = replace(config, database_url=database_url, cache_url=_check_cache_url(env.get("SMOTRA_CACHE_URL", "")))
    _check_production(config)
    _check_workers(config)
    return config


_loaded: Config | None = None


def get_config() -> Config:
    """The process-wide configuration, loaded once."""
    global _loaded
    if _loaded is None:
        _loaded = load_config()
    return _loaded


def parse_age(option: str, text: str) -> float:
    """A command-line age in seconds: ``7d`` (days, which Go durations lack) or a Go duration."""
    if text.endswith("d") and text[:-1].isdigit():
        return int(text[:-1]) * 86400.0
    return parse_duration("command line", option, text)
