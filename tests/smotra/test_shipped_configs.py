"""The configuration files shipped in configs/ load, and say what the README says they say."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from smotra.config import ConfigError, PoolConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
PRODUCTION_SECRET = "p" * 40


def _clean_environment() -> dict[str, str]:
    """The caller's environment without anything that would override or replace a config file."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SMOTRA_") and key not in ("DATABASE_URL", "CONFIG_FILE")
    }


def test_it_loads_the_development_yaml():
    config = load_config(CONFIGS / "dev.yaml", env={})

    assert config.source == str(CONFIGS / "dev.yaml")
    assert config.database_type == "sqlite"
    assert config.database_url == ""
    assert config.sqlite_config.filepath == "./data/smotra.db"
    assert config.server.environment == "development"
    assert (config.server.host, config.server.port) == ("0.0.0.0", 8080)
    assert config.server.idle_timeout == 120.0
    assert (config.logging.level, config.logging.format) == ("debug", "text")
    assert config.auth.jwt_expiration == 24 * 3600.0
    assert config.agent.offline_after == 15 * 60.0


def test_it_honours_the_nested_pool_block_of_the_development_yaml():
    config = load_config(CONFIGS / "dev.yaml", env={})

    assert config.sqlite_config.pool == PoolConfig(
        type="sqlite", max_open_conns=16, max_idle_conns=2, conn_max_lifetime=3600.0, conn_max_idle_time=600.0
    )
    assert config.pool is config.sqlite_config.pool


def test_it_loads_the_development_json_with_json_pool_names_and_nanosecond_durations():
    config = load_config(CONFIGS / "dev.json", env={})

    assert config.database_type == "sqlite"
    assert config.server.idle_timeout == 120.0
    assert config.auth.jwt_expiration == 24 * 3600.0
    assert config.sqlite_config.pool.max_open_conns == 16
    assert config.sqlite_config.pool.conn_max_idle_time == 600.0


def test_the_development_json_says_the_same_as_the_development_yaml():
    from_yaml = load_config(CONFIGS / "dev.yaml", env={})
    from_json = load_config(CONFIGS / "dev.json", env={})

    assert replace(from_json, source="") == replace(from_yaml, source="")


def test_it_refuses_the_production_yaml_without_a_jwt_secret_in_the_environment():
    with pytest.raises(ConfigError) as excinfo:
        load_config(CONFIGS / "prod.yaml", env={"SMOTRA_DB_PASSWORD": "db-password"})

    assert excinfo.value.key == "auth.jwt_secret"
    assert "auth.jwt_secret" in str(excinfo.value)
    assert str(CONFIGS / "prod.yaml") in str(excinfo.value)


def test_it_loads_the_production_yaml_with_secrets_from_the_environment():
    env = {"SMOTRA_JWT_SECRET": PRODUCTION_SECRET, "SMOTRA_DB_PASSWORD": "db-password"}

    config = load_config(CONFIGS / "prod.yaml", env=env)

    assert config.server.environment == "production"
    assert config.database_type == "postgres"
    assert config.postgres_config.sslmode == "require"
    assert config.postgres_config.password == "db-password"
    assert config.postgres_config.pool.max_open_conns == 40
    assert config.auth.jwt_secret == PRODUCTION_SECRET
    assert (config.logging.level, config.logging.format) == ("info", "json")
    assert config.effective_workers * config.server.threads <= config.postgres_config.pool.max_open_conns


def test_the_production_yaml_holds_no_secrets():
    text = (CONFIGS / "prod.yaml").read_text()
    keys = {line.split(":", 1)[0].strip() for line in text.splitlines() if not line.lstrip().startswith("#")}

    assert "jwt_secret" not in keys
    assert "password" not in keys


def test_manage_py_check_accepts_the_development_yaml():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--config", "configs/dev.yaml"],
        cwd=ROOT,
        env=_clean_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
