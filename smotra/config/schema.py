"""What a configuration is: every section as a frozen dataclass with its defaults, and ConfigError."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

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
    # PostgreSQL: concurrent heartbeats of a worker process share one statement and one commit.
    heartbeat_group_commit: bool = False
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
    minute_rollup_retention: float = 14 * 86400.0
    hour_rollup_retention: float = 400 * 86400.0


@dataclass(frozen=True)
class AlertsConfig:
    evaluation_interval: float = 15.0
    max_delivery_attempts: int = 8
    # Refuse outbound URLs that resolve to loopback, private or link-local addresses (SSRF).
    allow_private_targets: bool = False
    # ``serve`` runs one evaluator beside the web server, supervised and drained with it.
    run_in_serve: bool = True
    delivery_timeout: float = 5.0
    pagerduty_url: str = "https://events.pagerduty.com/v2/enqueue"


@dataclass(frozen=True)
class EmailConfig:
    """SMTP for the email channel; with no host, mail goes to the console (the log)."""

    host: str = ""
    port: int = 587
    username: str = ""
    password: str = ""
    use_tls: bool = True
    from_address: str = "smotra@localhost"


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
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    email: EmailConfig = field(default_factory=EmailConfig)
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
