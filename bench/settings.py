"""Bench-only Django settings: smotra.settings, unchanged but for what the bench must add.

bench/run.py serves every scenario (Smotra's paths and the baseline alike) with
``DJANGO_SETTINGS_MODULE=bench.settings``, so they share one server, one configuration and one
middleware stack. Added to smotra.settings:

- ``ROOT_URLCONF = "bench.urls"``: the project's URLs plus ``/bench/baseline`` and ``/bench/sleep``;
- :class:`bench.baseline.BaselineMiddleware` just before ``smotra.middleware.AgentRoutesMiddleware``;
- the database counters of bench/dbcount.py, when ``BENCH_COUNTS_DIR`` is set;
- ``BENCH_CONN_MODE``, the database connection handling (:data:`CONN_MODES`), PostgreSQL only but
  the first:
  - ``persistent-check``: smotra.settings' own (CONN_MAX_AGE as configured, CONN_HEALTH_CHECKS=True,
    its ENGINE: smotra.postgresql looks at an idle connection's socket instead of sending SELECT 1);
  - ``persistent-select1``: the same with Django's stock backend, whose check is a SELECT 1 before
    each request's first query;
  - ``persistent``: CONN_HEALTH_CHECKS=False;
  - ``pool-check`` / ``pool``: Django's psycopg pool (CONN_MAX_AGE=0), with or without the pool's
    check of each connection it lends (CONN_HEALTH_CHECKS); min and max size ``server.threads``,
    so a worker holds as many connections as with persistent ones."""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from bench import dbcount
from bench.servers import CONN_MODES
from smotra.settings import *  # noqa: F403
from smotra.settings import DATABASES, MIDDLEWARE, SMOTRA

ROOT_URLCONF = "bench.urls"

_AGENT_ROUTES = "smotra.middleware.AgentRoutesMiddleware"
if _AGENT_ROUTES not in MIDDLEWARE:
    raise ImproperlyConfigured(f"bench.settings: {_AGENT_ROUTES} is no longer in MIDDLEWARE; place the baseline anew")
MIDDLEWARE = list(MIDDLEWARE)
MIDDLEWARE.insert(MIDDLEWARE.index(_AGENT_ROUTES), "bench.baseline.BaselineMiddleware")


def _connection_mode(database: dict, mode: str) -> dict:
    if mode not in CONN_MODES:
        raise ImproperlyConfigured(f"BENCH_CONN_MODE: {mode!r} is not one of {', '.join(CONN_MODES)}")
    database = {**database, "OPTIONS": dict(database.get("OPTIONS", {}))}
    if mode == "persistent-check":
        return database
    if not database["ENGINE"].endswith("postgresql"):
        raise ImproperlyConfigured(f"BENCH_CONN_MODE={mode} is for PostgreSQL only")
    database["CONN_HEALTH_CHECKS"] = mode.endswith(("-check", "-select1"))
    if mode == "persistent-select1":
        database["ENGINE"] = "django.db.backends.postgresql"
    if mode.startswith("pool"):
        threads = SMOTRA.server.threads
        database["CONN_MAX_AGE"] = 0  # Django refuses a pool with persistent connections
        database["OPTIONS"]["pool"] = {"min_size": threads, "max_size": threads, "timeout": 10}
    return database


_MODE = os.environ.get("BENCH_CONN_MODE") or CONN_MODES[0]
DATABASES = {**DATABASES, "default": _connection_mode(DATABASES["default"], _MODE)}

dbcount.install(os.environ.get("BENCH_COUNTS_DIR"))
