"""Finding and reading the file, environment overrides, the checks across keys, the loaded singleton."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import environ
import yaml

from smotra.config.parsing import build_config
from smotra.config.schema import MIN_PRODUCTION_SECRET_LENGTH, PLACEHOLDER_SECRETS, Config, ConfigError


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
    "SMOTRA_HEARTBEAT_GROUP_COMMIT": ("agent", "heartbeat_group_commit"),
    "SMOTRA_MAX_BATCH_ITEMS": ("results", "max_batch_items"),
    "SMOTRA_RESULTS_RETENTION": ("results", "retention"),
    "SMOTRA_CORS_ORIGIN": ("cors", "origin"),
    "SMOTRA_ALERTS_RUN_IN_SERVE": ("alerts", "run_in_serve"),
    "SMOTRA_ALERTS_ALLOW_PRIVATE_TARGETS": ("alerts", "allow_private_targets"),
    "SMOTRA_PAGERDUTY_URL": ("alerts", "pagerduty_url"),
    "SMOTRA_EMAIL_HOST": ("email", "host"),
    "SMOTRA_EMAIL_PORT": ("email", "port"),
    "SMOTRA_EMAIL_USERNAME": ("email", "username"),
    "SMOTRA_EMAIL_PASSWORD": ("email", "password"),
    "SMOTRA_EMAIL_USE_TLS": ("email", "use_tls"),
    "SMOTRA_EMAIL_FROM": ("email", "from"),
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
