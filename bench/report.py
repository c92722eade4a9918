"""bench/run.py's output: the header that says how each number is measured, one line per scenario as
it finishes, and the tables at the end (Markdown, to paste into the README)."""

from __future__ import annotations

from fleet import BASELINE
from servers import CONN_MODES

METHOD = """\
How it is measured:
- Every server runs smotra.wsgi:application with DJANGO_SETTINGS_MODULE=bench.settings (smotra.settings
  plus the /bench/baseline route and the counters below) against its own copy of one onboarded database
  (PostgreSQL: CREATE DATABASE ... TEMPLATE; SQLite: a copy of the file), so every run starts equal.
- Baseline: POST /bench/baseline with a heartbeat's headers and body; the view does one INSERT of one row
  (raw cursor, autocommit) and answers 202, through the same middleware as the agent routes
  (bench/baseline.py). "x base" = the scenario's requests/s / the baseline's, same server and mode
  (a result batch is one request).
- Throughput and p50/p99: wrk (C) where a fixed list of requests may be replayed, else bench/loadgen.py;
  closed loop, keep-alive, after a 1 s warm-up.
- CPU ms/request: utime + stime from /proc over the measured window / requests, for the server's process
  tree, PostgreSQL (the bench database's backends + postmaster, WAL writer, checkpointer, ...), the load
  generator (this process + wrk) and "others" (the machine's busy time minus those three: other
  people's work on the machine). load = the 1-minute loadavg before -> after.
- Database work per request, over warm-up + measured requests: "stmts" = statements Django sends
  (execute_wrapper); "trips" = round trips psycopg makes (its queries, which add CONN_HEALTH_CHECKS'
  SELECT 1 and the pool's check, plus each transaction's BEGIN and COMMIT), both counted inside the
  server's processes (bench/dbcount.py); "tx" and "rows" = pg_stat_database's xact_commit + xact_rollback
  and tup_inserted + tup_updated + tup_deleted deltas, read once the backends have flushed them (~11 s
  after each scenario). pg_stat_statements, which would count statements in PostgreSQL itself, needs
  shared_preload_libraries, i.e. a restart. "tx" also counts what PostgreSQL does when a connection
  opens and, over the scenario and that wait, the alerting worker's and autovacuum's transactions.
  wrk leaves up to one request per connection unanswered at its end: the server did it, the
  denominator misses it."""


def _number(value, spec: str, none: str = "-") -> str:
    return none if value is None else format(value, spec)


def format_line(row: dict) -> str:
    ratio = f"x{row['ratio']:.2f}" if row.get("ratio") is not None else "     "
    return (
        f"{row['database']:8} {row['server']:8} {row['conn']:16} {row['scenario']:22} "
        f"{row['per_second']:8.0f} {row['unit']:7} {ratio}  p50 {row['p50_ms']:5.1f} p99 {row['p99_ms']:6.1f} ms  "
        f"cpu ms/req srv {row['server_ms']:.2f} pg {_number(row['pg_ms'], '.2f')} gen {row['loadgen_ms']:.2f} "
        f"oth {row['others_ms']:.2f}  stmts {_number(row['statements'], '.2f')} "
        f"trips {_number(row['round_trips'], '.2f')} tx {_number(row['transactions'], '.2f')}  "
        f"load {row['load_before']:.2f}->{row['load_after']:.2f}"
    )


def _key(row: dict) -> str:
    return f"| {row['database']} | {row['server']} | {row['conn']} | {row['scenario']} |"


def print_tables(rows: list[dict]) -> None:
    _print_throughput(rows)
    _print_resources(rows)
    _print_database(rows)
    _print_servers(rows)
    _print_connections(rows)


def _print_throughput(rows: list[dict]) -> None:
    print("\n### Throughput and latency\n")
    print(
        "| database | server | connections | scenario | client | throughput | x baseline | p50 ms | p99 ms | answers |"
    )
    print("|---|---|---|---|---|---:|---:|---:|---:|---|")
    for row in rows:
        answers = str(row["statuses"]) + (f" errors {row['errors']}" if row["errors"] else "")
        ratio = _number(row.get("ratio"), ".2f")
        print(
            f"{_key(row)} {row['client']} | {row['per_second']:,.0f} {row['unit']} | {ratio} | "
            f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {answers} |"
        )


def _print_resources(rows: list[dict]) -> None:
    print("\n### CPU per request (ms) and machine load\n")
    print(
        "| database | server | connections | scenario | server | postgres | load generator | others "
        "| loadavg before -> after |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---|")
    for row in rows:
        print(
            f"{_key(row)} {row['server_ms']:.2f} | {_number(row['pg_ms'], '.2f')} | {row['loadgen_ms']:.2f} | "
            f"{row['others_ms']:.2f} | {row['load_before']:.2f} -> {row['load_after']:.2f} |"
        )


def _print_database(rows: list[dict]) -> None:
    print("\n### Database work per request\n")
    print(
        "| database | server | connections | scenario | statements (Django) | round trips (psycopg) "
        "| transactions (PostgreSQL) | rows written (PostgreSQL) | new connections |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"{_key(row)} {_number(row['statements'], '.2f')} | {_number(row['round_trips'], '.2f')} | "
            f"{_number(row['transactions'], '.2f')} | {_number(row['rows_written'], '.2f')} | "
            f"{_number(row['connects'], '.3f')} |"
        )


def _print_servers(rows: list[dict]) -> None:
    pairs = {}
    for row in rows:
        if row["conn"] == CONN_MODES[0]:
            pairs.setdefault((row["database"], row["scenario"]), {})[row["server"]] = row
    pairs = {key: value for key, value in pairs.items() if len(value) == 2}
    if not pairs:
        return
    print("\n### gunicorn (gthread) vs granian (WSGI), same workers x threads\n")
    print(
        "| database | scenario | gunicorn | granian | granian / gunicorn | p99 ms gunicorn / granian "
        "| server CPU ms/req gunicorn / granian |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for (database, scenario), by_server in pairs.items():
        gunicorn, granian = by_server["gunicorn"], by_server["granian"]
        print(
            f"| {database} | {scenario} | {gunicorn['per_second']:,.0f} {gunicorn['unit']} | "
            f"{granian['per_second']:,.0f} {granian['unit']} | {granian['per_second'] / gunicorn['per_second']:.2f} | "
            f"{gunicorn['p99_ms']:.1f} / {granian['p99_ms']:.1f} | "
            f"{gunicorn['server_ms']:.2f} / {granian['server_ms']:.2f} |"
        )


def _print_connections(rows: list[dict]) -> None:
    modes = {row["conn"] for row in rows}
    if len(modes) < 2:
        return
    reference = {}
    for row in rows:
        if row["conn"] == CONN_MODES[0]:
            reference.setdefault((row["database"], row["server"], row["scenario"]), row)
    print(
        "\n### Database connections and heartbeat group commit (same server), against persistent "
        "connections with health checks\n"
    )
    print(
        "| database | server | scenario | connections | throughput | vs persistent-check | p50 / p99 ms "
        "| CPU ms/req server / postgres | round trips | transactions |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    compared = [row for row in rows if (row["database"], row["server"], row["scenario"]) in _compared_keys(rows)]
    for row in sorted(compared, key=lambda r: (r["database"], r["server"], _order(r["scenario"]), _mode(r["conn"]))):
        base = reference.get((row["database"], row["server"], row["scenario"]))
        versus = row["per_second"] / base["per_second"] if base else None
        print(
            f"| {row['database']} | {row['server']} | {row['scenario']} | {row['conn']} | "
            f"{row['per_second']:,.0f} {row['unit']} | {_number(versus, '.2f')} | "
            f"{row['p50_ms']:.1f} / {row['p99_ms']:.1f} | "
            f"{row['server_ms']:.2f} / {_number(row['pg_ms'], '.2f')} | {_number(row['round_trips'], '.2f')} | "
            f"{_number(row['transactions'], '.2f')} |"
        )


def _compared_keys(rows: list[dict]) -> set:
    """(database, server, scenario) measured in more than one connection mode."""
    modes: dict[tuple, set] = {}
    for row in rows:
        modes.setdefault((row["database"], row["server"], row["scenario"]), set()).add(row["conn"])
    return {key for key, seen in modes.items() if len(seen) > 1}


def _order(scenario: str) -> int:
    return 0 if scenario == BASELINE else 1 if scenario == "heartbeats" else 2


def _mode(conn: str) -> int:
    """Smotra's own mode first, then the others as listed; a variant that is not a connection mode
    (group-commit) right after Smotra's own."""
    return CONN_MODES.index(conn) if conn in CONN_MODES else 0.5
