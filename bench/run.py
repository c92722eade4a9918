"""Benchmark of the agent hot paths against the real server, with a baseline, in one run.

    .venv/bin/python bench/run.py [--db sqlite|postgres|both] [--server gunicorn|granian|both]
        [--conn-modes persistent-select1,persistent,pool-check,pool|none] [--agents 50] [--seconds 10]
        [--client wrk|python] [--no-pg-counters] [--no-group-commit]

For each database it onboards N agents through the real API on a fresh database (register, claim,
poll for the key, tag them into a topology with 20 endpoints), then, for each server variant, starts
the server on its own copy of that database and drives 8 closed-loop keep-alive clients per scenario
(wrk where installed, for the scenarios that may replay a fixed list of requests; bench/loadgen.py
otherwise). Scenarios: the baseline (one INSERT, bench/baseline.py), heartbeats, configuration GETs
answered 200 and 304, result batches. Variants:

- ``--server``: gunicorn gthread as `manage.py serve` runs it, and/or granian's WSGI server with the
  same workers x threads (bench/servers.py), each on every scenario, with Smotra's database settings;
- ``--conn-modes`` (PostgreSQL): the first server again with other database connection handling
  than Smotra's own ``persistent-check`` (bench/settings.py: ``persistent-select1`` = Django's stock
  backend and its SELECT 1 health check, ``persistent`` = CONN_HEALTH_CHECKS off, ``pool-check`` /
  ``pool`` = Django's psycopg pool with or without its connection check), on the baseline, heartbeats
  and configuration 200;
- group commit (PostgreSQL, ``--no-group-commit`` skips it): the first server again with
  ``agent.heartbeat_group_commit`` on, on the baseline and heartbeats.

Per scenario it prints throughput (and as a multiple of the same variant's baseline), p50/p99 latency,
CPU per request of the server, PostgreSQL, the load generator and everything else on the machine,
the 1-minute load average before and after (bench/machine.py), and the database work per request:
statements and round trips counted in the server (bench/dbcount.py), transactions and rows written
from pg_stat_database. The output's header says how each is measured.
PostgreSQL: throwaway databases on $BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432)."""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dbcount import read_totals
from fleet import BASELINE, configuration_versions, scenarios, setup_fleet
from loadgen import percentile, run_load
from machine import Postgres, UsageMeter, loadavg
from report import METHOD, format_line, print_tables
from servers import CONN_MODES, SERVERS, GunicornServer, make_server, server_shape
from wrkload import WRK, run_wrk

# The connection modes are compared on these (the brief: the paths most sensitive to per-request cost).
CONN_SCENARIOS = (BASELINE, "heartbeats", "configuration (200)")


class SqliteDatabase:
    """A fresh SQLite file to onboard into, and copies of it for each server variant."""

    kind = "sqlite"
    monitor = None

    def __init__(self):
        self.directory = Path(tempfile.mkdtemp(prefix="smotra-bench-"))
        self.template, self.copies = self.directory / "bench.db", 0

    def template_env(self) -> dict:
        return {"SMOTRA_SQLITE_PATH": str(self.template)}

    def clone(self) -> tuple[dict, str]:
        self.copies += 1
        path = self.directory / f"copy-{self.copies}.db"
        for suffix in ("", "-wal", "-shm"):  # the server has stopped: the WAL is normally gone
            if Path(f"{self.template}{suffix}").exists():
                shutil.copyfile(f"{self.template}{suffix}", f"{path}{suffix}")
        return {"SMOTRA_SQLITE_PATH": str(path)}, str(path)

    def drop(self, name: str) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{name}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class PostgresDatabase:
    """A throwaway database to onboard into, then ``CREATE DATABASE ... TEMPLATE`` copies of it."""

    kind = "postgres"

    def __init__(self, base_url: str):
        self.base_url, self.monitor = base_url, Postgres(base_url)
        self.template = f"smotra_bench_{secrets.token_hex(4)}"
        self.copies: list[str] = []
        self.monitor.connection.execute(f'CREATE DATABASE "{self.template}"')
        preload = self.monitor.connection.execute("SHOW shared_preload_libraries").fetchone()[0]
        print(
            f"\nPostgreSQL {self.monitor.connection.info.server_version // 10000}: shared_preload_libraries = "
            f"{preload!r}" + ("" if "pg_stat_statements" in preload else " (pg_stat_statements would need a restart)")
        )

    def template_env(self) -> dict:
        return {"DATABASE_URL": f"{self.base_url}/{self.template}"}

    def clone(self) -> tuple[dict, str]:
        name = f"{self.template}_{len(self.copies) + 1}"
        self._wait_unused(self.template)
        self.monitor.connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.copies.append(name)
        return {"DATABASE_URL": f"{self.base_url}/{name}"}, name

    def _wait_unused(self, name: str) -> None:
        """A template must have no sessions; the onboarding server's may take a moment to go."""
        deadline = time.monotonic() + 10
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
        while self.monitor.connection.execute(query, [name]).fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.2)

    def drop(self, name: str) -> None:
        self.monitor.connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        for name in [*self.copies, self.template]:
            self.drop(name)
        self.monitor.close()


def bench_env(mode: str, counts: str | None) -> dict:
    env = {"DJANGO_SETTINGS_MODULE": "bench.settings", "BENCH_CONN_MODE": mode}
    return {**env, "BENCH_COUNTS_DIR": counts} if counts else env


def onboard(database, base_env: dict, args) -> tuple:
    """The fleet, its endpoints and configuration versions, and the baseline's table, in the template."""
    env = {**base_env, **database.template_env(), **bench_env(CONN_MODES[0], None)}
    with GunicornServer(env, args.workers) as server:
        fleet, endpoints = setup_fleet(server, args.agents)
        versions = configuration_versions(server.port, fleet)
        server.manage("shell", "-c", "from bench.baseline import create_table; create_table()")
    return fleet, endpoints, versions


# agent.heartbeat_group_commit on (PostgreSQL): heartbeats against the per-request insert of the
# first variant, in the same run.
GROUP_COMMIT = ("group-commit", {"SMOTRA_HEARTBEAT_GROUP_COMMIT": "true"}, (BASELINE, "heartbeats"))


def variants(kind: str, args) -> list[tuple[str, str, tuple | None, dict, str]]:
    """(server, connection mode, scenarios or None for all, extra server environment, label) to
    measure on one database."""
    servers = SERVERS if args.server == "both" else (args.server,)
    plan = [(server, CONN_MODES[0], None, {}, CONN_MODES[0]) for server in servers]
    if kind == "postgres":
        if args.group_commit:
            label, env, selected = GROUP_COMMIT
            plan.append((servers[0], CONN_MODES[0], selected, env, label))
        plan += [(servers[0], mode, CONN_SCENARIOS, {}, mode) for mode in args.conn_modes]
    return plan


def bench_database(database, base_env: dict, args) -> list[dict]:
    fleet, endpoints, versions = onboard(database, base_env, args)
    plan = scenarios(fleet, endpoints, args.batch, versions)
    rows = []
    for server_kind, mode, selected, extra, label in variants(database.kind, args):
        env, name = database.clone()
        try:
            with tempfile.TemporaryDirectory(prefix="smotra-counts-") as counts:
                server_env = {**base_env, **env, **bench_env(mode, counts), **extra}
                print_variant(database, server_kind, label, {**os.environ, **server_env})
                context = {"database": database, "name": name, "counts": counts, "mode": label, "fleet": len(fleet)}
                with make_server(server_kind, server_env, args.workers) as server:
                    chosen = [scenario for scenario in plan if selected is None or scenario[0] in selected]
                    rows += run_variant(server, chosen, context, args)
        finally:
            database.drop(name)
    return rows


def run_variant(server, chosen: list, context: dict, args) -> list[dict]:
    """Every chosen scenario on one running server; ratios against its baseline (measured first)."""
    monitor, rows, baseline = context["database"].monitor, [], None
    if monitor and args.pg_counters:  # the start's own counts must be flushed before the first reading
        monitor.settled_stats(context["name"], since=time.monotonic())
    for scenario in chosen:
        row = measure(server, scenario, context, args)
        baseline = baseline or (row["rps"] if scenario[0] == BASELINE else None)
        row["ratio"] = row["rps"] / baseline if baseline else None
        rows.append(row)
        print("  " + format_line(row), flush=True)
    return rows


def measure(server, scenario, context: dict, args) -> dict:
    """One scenario: warm-up, the measured load, then every counter's difference (see report.METHOD)."""
    name, monitor = context["name"], context["database"].monitor
    counts_before = read_totals(context["counts"])
    pg_before = monitor.stats(name) if monitor and args.pg_counters else None
    warm = run_load("127.0.0.1", server.port, scenario[1], clients=args.clients, seconds=1)
    meter = UsageMeter(server.pids, monitor, name if monitor else None)
    meter.start()
    outcome, p50, p99, client = drive(server.port, scenario, args, context["fleet"])
    usage = meter.stop()
    counts = _delta(read_totals(context["counts"]), counts_before)
    pg = _delta(vars(monitor.settled_stats(name, since=time.monotonic())), vars(pg_before)) if pg_before else None
    row = {"database": context["database"].kind, "server": server.kind, "conn": context["mode"], "client": client}
    postgres = context["database"].kind == "postgres"
    return row | _row(scenario, outcome, p50, p99, usage, counts, pg, served=len(warm.latencies), postgres=postgres)


def drive(port: int, scenario, args, fleet_size: int):
    """(outcome, p50 s, p99 s, client name) of the measured load."""
    _, make, _, replayable = scenario
    if replayable and args.client == "wrk":
        fixed = [make(i) for i in range(fleet_size)]
        return (*run_wrk(port, fixed, clients=args.clients, seconds=args.seconds), "wrk")
    outcome = run_load("127.0.0.1", port, make, clients=args.clients, seconds=args.seconds)
    return outcome, percentile(outcome.latencies, 0.50), percentile(outcome.latencies, 0.99), "loadgen.py"


def _row(scenario, outcome, p50, p99, usage, counts: dict, pg: dict | None, *, served: int, postgres: bool) -> dict:
    """The figures of one scenario. CPU is per measured request; the database counters also saw the
    warm-up's ``served`` requests, so their figures are per warm-up + measured request."""
    label, _, items_per_request, _ = scenario
    requests = len(outcome.latencies)
    served += requests

    def per_request_ms(seconds):
        return seconds / requests * 1000 if requests else float("nan")

    def per_served(value):
        return value / served if served else float("nan")

    return {
        "scenario": label,
        "requests": requests,
        "rps": requests / outcome.elapsed,
        "per_second": requests * items_per_request / outcome.elapsed,
        "unit": "items/s" if items_per_request > 1 else "req/s",
        "p50_ms": p50 * 1000,
        "p99_ms": p99 * 1000,
        "server_ms": per_request_ms(usage.server),
        "pg_ms": per_request_ms(usage.postgres) if usage.postgres is not None else None,
        "loadgen_ms": per_request_ms(usage.loadgen),
        "others_ms": per_request_ms(usage.others),
        "load_before": usage.load_before,
        "load_after": usage.load_after,
        "statements": per_served(counts["statements"]),
        "round_trips": per_served(counts["queries"] + counts["transaction_commands"]) if postgres else None,
        "connects": per_served(counts["connects"]) if postgres else None,
        "transactions": per_served(pg["transactions"]) if pg else None,
        "rows_written": per_served(pg["rows_written"]) if pg else None,
        "statuses": outcome.statuses,
        "errors": outcome.errors,
    }


def _delta(after: dict, before: dict) -> dict:
    return {key: after[key] - before[key] for key in after}


def print_header(args) -> None:
    print(
        f"Smotra benchmark: {args.agents} agents, {args.clients} keep-alive clients, {args.seconds:g} s per "
        f"scenario, {os.cpu_count()} cores, loadavg {loadavg():.2f} at start"
    )
    print(METHOD)


def print_variant(database, server_kind: str, mode: str, env: dict) -> None:
    shape = server_shape(env)
    how = "manage.py serve, gthread" if server_kind == "gunicorn" else "--interface wsgi, blocking threads"
    print(
        f"\n{database.kind} / {server_kind} ({how}: {shape['workers']} workers x {shape['threads']} threads) / "
        f"{mode}: ENGINE {shape['engine']}, CONN_MAX_AGE {shape['conn_max_age']}, CONN_HEALTH_CHECKS "
        f"{shape['health_checks']}, pool {shape['pool'] or '-'}; loadavg {loadavg():.2f}",
        flush=True,
    )


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--server", choices=[*SERVERS, "both"], default="both")
    parser.add_argument(
        "--conn-modes",
        default=",".join(CONN_MODES[1:]),
        type=_conn_modes,
        help=f"PostgreSQL connection modes to compare with {CONN_MODES[0]}, comma-separated, or 'none' "
        f"(default: {','.join(CONN_MODES[1:])})",
    )
    parser.add_argument(
        "--no-group-commit",
        dest="group_commit",
        action="store_false",
        help="skip the PostgreSQL variant with agent.heartbeat_group_commit on",
    )
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--workers", type=int, default=None, help="server workers (default: the server's default)")
    parser.add_argument(
        "--client",
        choices=["wrk", "python"],
        default="wrk" if WRK else "python",
        help="load from wrk where a fixed list of requests may be replayed (default when installed), "
        "else bench/loadgen.py",
    )
    parser.add_argument(
        "--no-pg-counters",
        dest="pg_counters",
        action="store_false",
        help="skip pg_stat_database's transactions and rows (saves the ~11 s wait after each scenario)",
    )
    return parser.parse_args()


def _conn_modes(value: str) -> list[str]:
    modes = [] if value == "none" else [mode.strip() for mode in value.split(",") if mode.strip()]
    unknown = [mode for mode in modes if mode not in CONN_MODES[1:]]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown connection modes {unknown}; choose from {CONN_MODES[1:]}")
    return modes


def check_installed(args) -> None:
    """granian and psycopg-pool are for measuring only: in the venv, not in requirements.txt."""
    import importlib.util

    needed = {"granian": args.server in ("granian", "both")}
    needed["psycopg_pool"] = args.db != "sqlite" and any(mode.startswith("pool") for mode in args.conn_modes)
    missing = [module for module, need in needed.items() if need and importlib.util.find_spec(module) is None]
    if missing:
        packages = " ".join(module.replace("_", "-") for module in missing)
        sys.exit(f"bench/run.py: install {packages} first: .venv/bin/python -m pip install {packages}")


def main() -> None:
    args = parse_args()
    check_installed(args)
    base_env = {
        "SMOTRA_LOG_LEVEL": os.environ.get("SMOTRA_LOG_LEVEL", "warn"),
        "SMOTRA_REGISTRATION_RATE_LIMIT": "100000",
    }
    for variable in ("SMOTRA_CONFIG", "CONFIG_FILE", "DATABASE_URL", "DJANGO_SETTINGS_MODULE"):
        os.environ.pop(variable, None)
    print_header(args)
    rows = []
    if args.db in ("sqlite", "both"):
        database = SqliteDatabase()
        try:
            rows += bench_database(database, base_env, args)
        finally:
            database.close()
    if args.db in ("postgres", "both"):
        database = PostgresDatabase(os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"))
        try:
            rows += bench_database(database, base_env, args)
        finally:
            database.close()
    print_tables(rows)


if __name__ == "__main__":
    main()
