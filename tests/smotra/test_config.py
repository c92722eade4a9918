"""The configuration file: formats, defaults, durations, env overrides, precedence and start-up errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smotra.config import DEFAULT_JWT_SECRET, ConfigError, find_config_path, load_config

ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without anything that selects or overrides configuration."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SMOTRA_") and key not in ("CONFIG_FILE", "DATABASE_URL")
    }
    return {**env, **extra}


# ---------------------------------------------------------------------------------------------
# Formats and pool keys


def test_it_loads_yaml_with_nested_pool_keys(tmp_path):
    path = write(
        tmp_path / "config.yaml",
        """
server:
  port: 9090
  shutdown_timeout: 45s
database_type: postgres
postgres_config:
  host: db.example
  username: smotra
  password: hunter2
  database: monitoring
  sslmode: require
  config:
    type: postgres
    maxopenconns: 40
    maxidleconns: 10
    connmaxlifetime: 30m
    connmaxidletime: 5m
""",
    )

    config = load_config(path, env={})

    assert config.source == str(path)
    assert config.server.port == 9090
    assert config.server.shutdown_timeout == 45.0
    assert config.database_type == "postgres"
    pg = config.postgres_config
    assert (pg.host, pg.username, pg.password, pg.database, pg.sslmode) == (
        "db.example",
        "smotra",
        "hunter2",
        "monitoring",
        "require",
    )
    assert pg.pool.type == "postgres"
    assert (pg.pool.max_open_conns, pg.pool.max_idle_conns) == (40, 10)
    assert (pg.pool.conn_max_lifetime, pg.pool.conn_max_idle_time) == (1800.0, 300.0)
    assert config.pool is pg.pool


def test_it_loads_yaml_with_inline_pool_keys(tmp_path):
    path = write(
        tmp_path / "config.yaml",
        """
database_type: sqlite
sqlite_config:
  filepath: /var/lib/smotra/smotra.db
  type: sqlite
  maxopenconns: 8
  maxidleconns: 0
  connmaxlifetime: 1h
  connmaxidletime: 90s
""",
    )

    config = load_config(path, env={})

    sqlite = config.sqlite_config
    assert sqlite.filepath == "/var/lib/smotra/smotra.db"
    assert (sqlite.pool.type, sqlite.pool.max_open_conns, sqlite.pool.max_idle_conns) == ("sqlite", 8, 0)
    assert (sqlite.pool.conn_max_lifetime, sqlite.pool.conn_max_idle_time) == (3600.0, 90.0)


def test_it_prefers_the_nested_pool_block_over_inline_keys(tmp_path):
    path = write(
        tmp_path / "config.yaml",
        "sqlite_config:\n  maxopenconns: 4\n  config:\n    maxopenconns: 12\n",
    )

    assert load_config(path, env={}).sqlite_config.pool.max_open_conns == 12


def test_it_loads_json_with_json_pool_names_and_nanosecond_durations(tmp_path):
    document = {
        "server": {"port": 8181, "read_timeout": 1_500_000_000, "idle_timeout": "2m"},
        "database_type": "postgres",
        "postgres_config": {
            "host": "pg",
            "max_open_conns": 25,
            "max_idle_conns": 5,
            "conn_max_lifetime": 3_600_000_000_000,
            "conn_max_idle_time": "10m",
        },
        "auth": {"jwt_expiration": "24h0m0s"},
    }
    path = write(tmp_path / "config.json", json.dumps(document))

    config = load_config(path, env={})

    assert config.server.port == 8181
    assert config.server.read_timeout == 1.5
    assert config.server.idle_timeout == 120.0
    pool = config.postgres_config.pool
    assert (pool.max_open_conns, pool.max_idle_conns) == (25, 5)
    assert (pool.conn_max_lifetime, pool.conn_max_idle_time) == (3600.0, 600.0)
    assert config.auth.jwt_expiration == 86400.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15s", 15.0),
        ("2m", 120.0),
        ("1h30m", 5400.0),
        ("24h0m0s", 86400.0),
        ("150ms", 0.15),
        ("1.5h", 5400.0),
        ("0", 0.0),
    ],
)
def test_it_parses_go_durations(tmp_path, text, seconds):
    path = write(tmp_path / "config.yaml", f'server:\n  write_timeout: "{text}"\n')

    assert load_config(path, env={}).server.write_timeout == pytest.approx(seconds)


def test_it_applies_defaults_to_absent_keys(tmp_path):
    path = write(tmp_path / "config.yaml", "logging:\n  level: debug\n")

    config = load_config(path, env={})

    assert config.logging.level == "debug"
    assert config.logging.format == "json"
    server = config.server
    assert (server.host, server.port, server.environment) == ("0.0.0.0", 8080, "development")
    assert (server.read_timeout, server.write_timeout, server.idle_timeout, server.shutdown_timeout) == (
        15.0,
        15.0,
        120.0,
        30.0,
    )
    assert config.database_type == "sqlite"
    assert config.sqlite_config.filepath == "./data/smotra.db"
    assert config.postgres_config.port == 5432
    agent = config.agent
    assert agent.claim_token_expiration_hours == 24
    assert (
        agent.claim_poll_initial_interval_secs,
        agent.claim_poll_increment_secs,
        agent.claim_poll_max_interval_secs,
    ) == (5, 5, 60)
    assert agent.offline_after == 900.0
    assert config.auth.jwt_expiration == 86400.0
    assert config.cors.origin == ""


def test_it_uses_built_in_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    config = load_config(env={})

    assert config.source == "built-in defaults"
    assert config.database_type == "sqlite"
    assert config.server.port == 8080


def test_it_treats_an_empty_file_as_all_defaults(tmp_path):
    path = write(tmp_path / "config.yaml", "# nothing here\n")

    assert load_config(path, env={}).server.port == 8080


# ---------------------------------------------------------------------------------------------
# Environment overrides and precedence


def test_it_lets_the_environment_beat_the_file(tmp_path):
    path = write(
        tmp_path / "config.yaml",
        """
server:
  port: 9000
logging:
  level: info
auth:
  jwt_secret: from-the-file
postgres_config:
  password: from-the-file
""",
    )
    env = {
        "SMOTRA_PORT": "9443",
        "SMOTRA_LOG_LEVEL": "error",
        "SMOTRA_JWT_SECRET": "from-the-environment",
        "SMOTRA_DB_PASSWORD": "env-password",
        "DATABASE_URL": "postgres://smotra:pw@db.example:5433/smotra",
    }

    config = load_config(path, env=env)

    assert config.server.port == 9443
    assert config.logging.level == "error"
    assert config.auth.jwt_secret == "from-the-environment"
    assert config.postgres_config.password == "env-password"
    assert config.database_url == "postgres://smotra:pw@db.example:5433/smotra"


def test_it_reads_cors_origin_from_the_environment():
    assert load_config(env={"SMOTRA_CORS_ORIGIN": "https://ui.example"}).cors.origin == "https://ui.example"


def test_it_reads_heartbeat_group_commit_from_the_file_and_the_environment(tmp_path):
    empty = write(tmp_path / "empty.yaml", "")
    path = write(tmp_path / "config.yaml", "agent:\n  heartbeat_group_commit: true\n")

    assert load_config(empty, env={}).agent.heartbeat_group_commit is False
    assert load_config(path, env={}).agent.heartbeat_group_commit is True
    assert load_config(path, env={"SMOTRA_HEARTBEAT_GROUP_COMMIT": "false"}).agent.heartbeat_group_commit is False
    with pytest.raises(ConfigError) as raised:
        load_config(empty, env={"SMOTRA_HEARTBEAT_GROUP_COMMIT": "sometimes"})
    assert raised.value.key == "SMOTRA_HEARTBEAT_GROUP_COMMIT"


def test_it_rejects_a_bad_environment_value_naming_the_variable(tmp_path):
    path = write(tmp_path / "config.yaml", "server:\n  port: 8080\n")

    with pytest.raises(ConfigError) as raised:
        load_config(path, env={"SMOTRA_PORT": "70000"})

    assert raised.value.key == "SMOTRA_PORT"
    assert "\n" not in str(raised.value)


def test_it_finds_the_config_by_precedence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    smotra_config, config_file = tmp_path / "a.yaml", tmp_path / "b.yaml"

    assert find_config_path({}) is None
    write(tmp_path / "config.yaml", "server:\n  port: 1111\n")
    assert find_config_path({}) == Path("config.yaml")
    assert find_config_path({"CONFIG_FILE": str(config_file)}) == config_file
    both = {"SMOTRA_CONFIG": str(smotra_config), "CONFIG_FILE": str(config_file)}
    assert find_config_path(both) == smotra_config


def test_it_loads_the_file_chosen_by_precedence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "config.yaml", "server:\n  port: 1111\n")
    write(tmp_path / "config-file.yaml", "server:\n  port: 2222\n")
    write(tmp_path / "smotra-config.yaml", "server:\n  port: 3333\n")

    assert load_config(env={}).server.port == 1111
    assert load_config(env={"CONFIG_FILE": "config-file.yaml"}).server.port == 2222
    env = {"CONFIG_FILE": "config-file.yaml", "SMOTRA_CONFIG": "smotra-config.yaml"}
    assert load_config(env=env).server.port == 3333


# ---------------------------------------------------------------------------------------------
# Start-up errors: one line on stderr, naming the file and the key, exit status 2, no traceback.

CONFIG_ERRORS = {
    "invalid_yaml": ("server:\n  port: [8080\n", ("(file)", "invalid YAML")),
    "unknown_database_type": ("database_type: mysql\n", ("database_type", "mysql")),
    "bad_duration": ("server:\n  read_timeout: 15 seconds\n", ("server.read_timeout", "invalid duration")),
    "port_out_of_range": ("server:\n  port: 70000\n", ("server.port", "70000")),
    "port_zero": ("server:\n  port: 0\n", ("server.port", "between 1 and 65535")),
    "bad_sslmode": ("postgres_config:\n  sslmode: prefer\n", ("postgres_config.sslmode", "prefer")),
    "production_empty_secret": (
        'server:\n  environment: production\nauth:\n  jwt_secret: ""\n',
        ("auth.jwt_secret", "production"),
    ),
    "production_default_secret": (
        f"server:\n  environment: production\nauth:\n  jwt_secret: {DEFAULT_JWT_SECRET}\n",
        ("auth.jwt_secret", "production"),
    ),
    "production_absent_secret": ("server:\n  environment: production\n", ("auth.jwt_secret", "production")),
    "production_short_secret": (
        "server:\n  environment: production\nauth:\n  jwt_secret: only-twenty-chars-xx\n",
        ("auth.jwt_secret", "at least 32 characters"),
    ),
}


def run_manage(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line_config_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("smotra: configuration error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize("case", sorted(CONFIG_ERRORS))
def test_it_rejects_bad_configuration_with_one_line(tmp_path, case):
    text, fragments = CONFIG_ERRORS[case]
    path = write(tmp_path / "config.yaml", text)

    result = run_manage("check", "--config", str(path))

    assert_one_line_config_error(result, str(path), *fragments)


@pytest.mark.parametrize("case", ["bad_duration", "bad_sslmode"])
def test_it_rejects_bad_configuration_given_with_the_short_flag(tmp_path, case):
    text, fragments = CONFIG_ERRORS[case]
    path = write(tmp_path / "config.yaml", text)

    result = run_manage("check", "-c", str(path))

    assert_one_line_config_error(result, str(path), *fragments)


def test_it_rejects_an_unreadable_config_file(tmp_path):
    missing = tmp_path / "missing.yaml"

    result = run_manage("check", "--config", str(missing))

    assert_one_line_config_error(result, str(missing), "(file)", "cannot read")


def test_it_rejects_invalid_json(tmp_path):
    path = write(tmp_path / "config.json", '{"server": {"port": 8080,}}')

    result = run_manage("check", "--config", str(path))

    assert_one_line_config_error(result, str(path), "(file)", "invalid JSON")


def test_it_rejects_a_port_out_of_range_from_the_environment(tmp_path):
    path = write(tmp_path / "config.yaml", "server:\n  port: 8080\n")

    result = run_manage("check", "--config", str(path), env=clean_env(SMOTRA_PORT="0"))

    assert_one_line_config_error(result, "environment", "SMOTRA_PORT", "between 1 and 65535")


def test_it_rejects_an_unsupported_database_url(tmp_path):
    path = write(tmp_path / "config.yaml", "server:\n  port: 8080\n")

    result = run_manage("check", "--config", str(path), env=clean_env(DATABASE_URL="mysql://root@localhost/smotra"))

    assert_one_line_config_error(result, "environment", "DATABASE_URL")


def test_it_rejects_a_bad_file_found_through_smotra_config(tmp_path):
    path = write(tmp_path / "config.yaml", "database_type: oracle\n")

    result = run_manage("check", env=clean_env(SMOTRA_CONFIG=str(path)))

    assert_one_line_config_error(result, str(path), "database_type")


def test_it_passes_check_with_a_good_config(tmp_path):
    path = write(tmp_path / "config.yaml", f"sqlite_config:\n  filepath: {tmp_path / 'smotra.db'}\n")

    result = run_manage("check", "-c", str(path))

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_it_keeps_dash_c_for_djangos_shell(tmp_path):
    path = write(tmp_path / "config.yaml", f"sqlite_config:\n  filepath: {tmp_path / 'smotra.db'}\n")

    result = run_manage("shell", "--config", str(path), "-c", "print(6 * 7)")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "42"


def test_it_still_takes_dash_dash_config_for_the_shell(tmp_path):
    path = write(tmp_path / "config.yaml", "database_type: oracle\n")

    result = run_manage("shell", "--config", str(path), "-c", "print(1)")

    assert_one_line_config_error(result, str(path), "database_type")


def test_it_reads_the_alerting_and_email_sections(tmp_path):
    text = (
        "alerts:\n  evaluation_interval: 30s\n  max_delivery_attempts: 3\n  allow_private_targets: true\n"
        "  run_in_serve: false\n  pagerduty_url: http://127.0.0.1:9/enqueue\n"
        "email:\n  host: smtp.example.com\n  port: 2525\n  username: u\n  use_tls: false\n  from: ops@example.com\n"
    )
    config = load_config(write(tmp_path / "config.yaml", text), env={"SMOTRA_EMAIL_PASSWORD": "s3cret"})

    alerts, email = config.alerts, config.email
    assert (alerts.evaluation_interval, alerts.max_delivery_attempts, alerts.delivery_timeout) == (30.0, 3, 5.0)
    assert alerts.allow_private_targets and not alerts.run_in_serve
    assert alerts.pagerduty_url == "http://127.0.0.1:9/enqueue"
    assert (email.host, email.port, email.username, email.password) == ("smtp.example.com", 2525, "u", "s3cret")
    assert not email.use_tls and email.from_address == "ops@example.com"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("alerts:\n  max_delivery_attempts: 0\n", "alerts.max_delivery_attempts"),
        ("alerts:\n  evaluation_interval: soon\n", "alerts.evaluation_interval"),
        ("alerts:\n  run_in_serve: maybe\n", "alerts.run_in_serve"),
        ("email:\n  port: seventy\n", "email.port"),
    ],
)
def test_it_names_a_bad_alerting_or_email_key(tmp_path, text, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(write(tmp_path / "config.yaml", text), env={})
