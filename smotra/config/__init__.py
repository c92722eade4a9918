"""Configuration file loader: the original server's YAML/JSON format, with defaults and env overrides.

The file is found by ``-c/--config`` (``manage.py`` turns it into ``SMOTRA_CONFIG``), else the
environment variable ``SMOTRA_CONFIG``, else ``CONFIG_FILE``, else ``./config.yaml`` when it exists,
else built-in development defaults (SQLite). Environment variables override the file.

Every problem raises :class:`ConfigError`, whose ``str()`` is one line naming the source, the key and
what is wrong, so the process can stop before it serves without a traceback.

The package: ``schema`` (what a configuration is: dataclasses and defaults), ``parsing`` (values and
sections of a document), ``loading`` (finding the file, environment overrides, final checks).
"""

from smotra.config.loading import apply_environment, find_config_path, get_config, load_config, read_document
from smotra.config.parsing import (
    build_config,
    parse_age,
    parse_bool,
    parse_choice,
    parse_duration,
    parse_int,
    parse_str,
)
from smotra.config.schema import (
    DEFAULT_JWT_SECRET,
    PLACEHOLDER_SECRETS,
    AgentConfig,
    AuthConfig,
    Config,
    ConfigError,
    CorsConfig,
    LoggingConfig,
    PoolConfig,
    PostgresConfig,
    ResultsConfig,
    ServerConfig,
    SqliteConfig,
)

__all__ = [
    "DEFAULT_JWT_SECRET",
    "PLACEHOLDER_SECRETS",
    "AgentConfig",
    "AuthConfig",
    "Config",
    "ConfigError",
    "CorsConfig",
    "LoggingConfig",
    "PoolConfig",
    "PostgresConfig",
    "ResultsConfig",
    "ServerConfig",
    "SqliteConfig",
    "apply_environment",
    "build_config",
    "find_config_path",
    "get_config",
    "load_config",
    "parse_age",
    "parse_bool",
    "parse_choice",
    "parse_duration",
    "parse_int",
    "parse_str",
    "read_document",
]
