"""Benchmark of the read side on PostgreSQL: a realistic data set, then ingestion, query and pruning timings.

    .venv/bin/python bench/readside.py [--results 5000000] [--days 30] [--runs 30] [--rounds 2] [--keep]
    .venv/bin/python bench/readside.py --results 20000000 --rounds 3 --calm 2.5   # the partitioning goal

Data set: 20 agents in one section and as many endpoints as --results needs over --days (about 190
for the default 5 M, 750 for 20 M); each endpoint is checked by 3 of the agents (a quorum topology) with
a 3-packet ping every 5 minutes (SmokePing's step), from the UTC midnight --days ago until now.
Latency per (endpoint, agent) is log-normal around its own base (1-150 ms) with jitter; a few
outages (hours of failures, and a lossy evening per endpoint) are mixed in. Every raw result's id is
a UUIDv7 of its own check time, as an agent makes it, so the rows spread over results_checkresult's
day partitions (results.partitions; the days' partitions are made first, and the run prints how many
rows fell into the default one: none should). The rows and their minute, hour and day rollups are
generated in SQL a UTC day at a time, two days side by side (bench/partitions.py); a few series'
rollups are checked against ingestion's own code (results.rollups.tiers_of). Then, in one run:

- ingestion items/s with and without rollup maintenance (results_ingest, batches of 100), on the
  loaded database and on an empty copy of it made before loading (same fleet, same code path),
  alternating between the two for --rounds rounds: their ratio, best round against best round, as
  the median of each round's back-to-back pair, and by CPU per item, is what the size costs;
- p50/p99 of /result/report (a) one endpoint, all agents, 24 h at 5m, (b) one endpoint, 30 days at 1h,
  (c) the whole section, 30 days at 1d, group_by=endpoint; /result/summary for 24 h; a page of
  /result/metrics deep into the data (through Django's test client, so DRF and serialisation count);
- storage of raw results and of the rollups (pg_total_relation_size, indexes included);
- pruning: results_prune with a cutoff that expires exactly the oldest day partition, then the old
  way for the next day's rows (delete_in_chunks, 5000 a statement) and the VACUUM it leaves.

Every measure notes the CPU time it cost (this process and its database backend), the 1-minute
load average and the share of the machine's CPU that other work took meanwhile (the machine is
shared; --calm waits for it to quieten before each phase). Throwaway databases on $BENCH_POSTGRES_URL (default
postgres://postgres@127.0.0.1:5432) are created and dropped (``--keep`` keeps the loaded one, without
the pruning, and prints its name)."""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import secrets
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from uuid6 import uuid7

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before bench/ (the script's own directory): its alerting.py is not the app
import partitions as day_load  # noqa: E402 - bench/partitions.py
from partitions import Timing  # noqa: E402

STEP = timedelta(minutes=5)
AGENTS_PER_ENDPOINT = 3
CORES = os.cpu_count() or 1


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=int, default=5_000_000, help="About how many raw results (default 5M).")
    parser.add_argument("--endpoints", type=int, help="Default: as many as --results needs over --days.")
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=30, help="Timed runs per query (default 30).")
    parser.add_argument("--batches", type=int, default=200, help="Batches of 100 per ingestion measure.")
    parser.add_argument(
        "--rounds", type=int, default=2, help="Rounds of ingestion measures on each database (default 2)."
    )
    parser.add_argument("--processes", type=int, default=2, help="Days loaded side by side (default 2).")
    parser.add_argument(
        "--calm",
        type=float,
        metavar="LOAD",
        help="Before each measuring phase wait (up to --calm-wait seconds) for the 1-minute load average "
        "to fall below LOAD: the machine is shared.",
    )
    parser.add_argument("--calm-wait", type=float, default=900, help="At most this long per phase (default 900 s).")
    parser.add_argument("--keep", action="store_true", help="Keep the database (its name is printed).")
    parser.add_argument(
        "--reuse",
        metavar="NAME",
        help="Measure on a database an earlier --keep run left (no load; it is kept again).",
    )
    parser.add_argument("--no-ingestion", action="store_true", help="Skip the ingestion measures.")
    parser.add_argument(
        "--no-prune", action="store_true", help="Skip the pruning measures (always skipped on a kept database)."
    )
    return parser.parse_args()


def create_database(template: str | None = None) -> tuple[str, str]:
    """A new database (a copy of ``template``, which nobody may be connected to, when given)."""
    import psycopg

    base = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
    name = f"{template}_empty" if template else f"smotra_bench_read_{secrets.token_hex(4)}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return base, name


def drop_database(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["SMOTRA_DATABASE_TYPE"] = "postgres"
    os.environ.setdefault("SMOTRA_LOG_LEVEL", "warn")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smotra.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    import smotra.wsgi  # noqa: F401 - loads the app and freezes its heap, as each server worker does


# ---------------------------------------------------------------------------------------------
# The fleet and its results


def existing_fleet():
    """The fleet a kept database holds, in the order build_fleet made it."""
    from agents.models import Agent
    from endpoints.models import Endpoint
    from tenants.models import Section, User

    section = Section.objects.get(tenant__name="Bench", name="fleet")
    endpoints = list(Endpoint.objects.filter(section=section).order_by("address"))
    agents = list(Agent.objects.filter(section=section).order_by("name"))
    return User.objects.get(username="bench-viewer"), section, endpoints, agents


def build_fleet(endpoint_count: int, agent_count: int):
    from agents.models import Agent
    from endpoints.models import Endpoint
    from tenants.models import Membership, Section, Tenant, User

    tenant = Tenant.objects.create(name="Bench")
    section = Section.objects.create(tenant=tenant, name="fleet")
    user = User.objects.create(username="bench-viewer", is_staff=True)
    Membership.objects.create(user=user, tenant=tenant, role="viewer")
    endpoints = Endpoint.objects.bulk_create(
        [Endpoint(section=section, address=f"target-{n:04d}.example.net", port=443) for n in range(endpoint_count)]
    )
    now = datetime.now(UTC)
    agents = Agent.objects.bulk_create(
        [Agent(id=uuid.uuid4(), section=section, name=f"agent-{n:02d}", last_seen_at=now) for n in range(agent_count)]
    )
    pairs = [
        (endpoint, agents[(index * 7 + k * 3) % agent_count])
        for index, endpoint in enumerate(endpoints)
        for k in range(AGENTS_PER_ENDPOINT)
    ]
    return user, section, endpoints, agents, pairs


# ---------------------------------------------------------------------------------------------
# Measurements


def agent_batches(agent, endpoints, batches: int) -> list[list[dict]]:
    """Batches of 100 as an agent reports: every endpoint checked once per STEP, oldest first. Item
    k of the run is endpoint k mod E in round k // E; the rounds end just before now."""
    rounds = -(-batches * 100 // len(endpoints))
    first = datetime.now(UTC).replace(microsecond=0) - rounds * STEP
    return [
        [
            {
                "id": str(uuid7()),
                "agent_id": str(agent.pk),
                "endpoint_id": str(endpoints[(b * 100 + n) % len(endpoints)].pk),
                "timestamp": (first + (b * 100 + n) // len(endpoints) * STEP).isoformat(),
                "check_type": {
                    "type": "ping",
                    "result": {
                        "resolved_ip": "192.0.2.1",
                        "successes": 3,
                        "failures": 0,
                        "success_latencies": [10.5, 11.25, 12.0],
                        "error_details": None,
                    },
                },
            }
            for n in range(100)
        ]
        for b in range(batches)
    ]


def ingestion_rate(agent, endpoints, batches: int, *, with_rollups: bool, client=None, key: str = "") -> float:
    """Items per second in batches of 100: through results_ingest (validation, dedup, insert,
    rollups), or with ``client`` through the agent route as well (HTTP parsing, authentication)."""
    from unittest import mock

    from results import storage
    from results.services import ingest

    items = agent_batches(agent, endpoints, batches)
    # Without rollups: the same statement without its rollup tiers, nor their shares worked out.
    patch = mock.patch.object(storage, "TIERS", storage.TIERS if with_rollups else ())
    with patch:
        started = time.perf_counter()
        for batch in items:
            if client is None:
                ingest.results_ingest(agent=agent, items=batch)
                continue
            response = client.post(
                f"/api/v1/agent/{agent.pk}/results",
                json.dumps({"results": batch}),
                content_type="application/json",
                HTTP_X_AGENT_API_KEY=key,
            )
            assert response.status_code == 202, response.content[:300]
        elapsed = time.perf_counter() - started
    return batches * 100 / elapsed


WARM_UP = 2


def timed(client, path: str, params: dict, runs: int, token: str) -> tuple[float, float, int]:
    url = f"{path}?{urlencode(params, doseq=True)}"
    durations = []
    for _ in range(WARM_UP):  # the first runs read pages from disk; the measured ones do not
        client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
    response = None
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
        durations.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
    durations.sort()
    rows = len(response.json().get("data") or response.json().get("metrics") or response.json().get("by_agent") or [])
    p99 = durations[min(len(durations) - 1, math.ceil(0.99 * len(durations)) - 1)]
    return statistics.median(durations), p99, rows


TABLES = (
    "results_checkresult",
    "results_minuterollup",
    "results_hourrollup",
    "results_dayrollup",
    "results_rollupseries",
)


def storage() -> dict:
    """(bytes with indexes, rows) per table; the raw table's bytes are its partitions'."""
    from django.db import connection

    sizes = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute("SELECT pg_total_relation_size(%s), (SELECT count(*) FROM " + table + ")", [table])
            sizes[table] = cursor.fetchone()
    sizes["results_checkresult"] = (day_load.raw_size(), sizes["results_checkresult"][1])
    return sizes


# ---------------------------------------------------------------------------------------------
# Noise: the machine is shared


class Meter:
    """Around one measure: the CPU seconds this process and its database backend spent (``cpu``:
    what the measure costs, which other work on the machine changes far less than the wall time),
    the 1-minute load average at its end, and the share of all cores other work used meanwhile."""

    def __enter__(self) -> Meter:
        from django.db import connection

        connection.ensure_connection()
        self.backend = connection.connection.info.backend_pid
        self.before = self._read()
        return self

    def __exit__(self, *exc) -> None:
        after = self._read()
        elapsed, busy, ours = (b - a for a, b in zip(self.before, after, strict=True))
        self.cpu, self.load = ours, os.getloadavg()[0]
        self.others = max(0.0, busy - ours) / (elapsed * CORES) if elapsed else 0.0

    def _read(self) -> tuple[float, float, float]:
        own = sum(os.times()[:2])
        return time.monotonic(), day_load.machine_busy(), own + day_load.process_cpu(self.backend)

    def __str__(self) -> str:
        return f"load {self.load:.1f}, others {self.others:.0%}"


def speed() -> str:
    """A fixed pure-Python loop, best of 5: how fast a core of the machine is now (about 30 ms on
    the 2-core machine busy with others' work, 2026-12-01), to set runs on different days side by side."""
    best = min(_loop_seconds() for _ in range(5))
    return f"sum(range(10**6)) takes {best * 1000:.0f} ms"


def _loop_seconds() -> float:
    started = time.perf_counter()
    sum(range(10**6))
    return time.perf_counter() - started


def use_database(name: str) -> None:
    """Point Django's connection at another database of the same server (the next query connects)."""
    from django.db import connections

    connections.close_all()
    connections["default"].settings_dict["NAME"] = name


# ---------------------------------------------------------------------------------------------
# The run


def main() -> None:
    args = parse_args()
    if args.reuse:
        base, name = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/"), args.reuse
        args.keep = True
    else:
        base, name = create_database()
    print(f"database {name}")
    databases = {"loaded": name}
    try:
        setup_django(f"{base}/{name}")
        run(args, base, databases)
    finally:
        from django.db import connections

        connections.close_all()
        if "empty" in databases:
            drop_database(base, databases["empty"])
        if args.keep:
            print(f"kept database {name}")
        else:
            drop_database(base, name)


def run(args, base: str, databases: dict[str, str]) -> None:
    from django.conf import settings
    from django.db import connections
    from django.test import Client

    from agents.keys import api_key_hash
    from results.models import CheckResult

    settings.ALLOWED_HOSTS = ["*"]
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = day_load.days_back(now, args.days)
    notes: dict[str, str] = {"speed at the start": speed()}
    if args.reuse:
        user, section, endpoints, agents = existing_fleet()
        loaded = CheckResult.objects.count()
        start = day_load.utc_midnight(CheckResult.objects.order_by("checked_at").first().checked_at)
        print(f"reusing {loaded:,} results")
    else:
        steps = (now - start) // STEP
        count = args.endpoints or max(1, round(args.results / (steps * AGENTS_PER_ENDPOINT)))
        user, section, endpoints, agents, pairs = build_fleet(count, args.agents)
    key = secrets.token_urlsafe(32)
    agent = agents[0]
    type(agent).objects.filter(pk=agent.pk).update(api_key_hash=api_key_hash(key))
    if not args.reuse:
        if not args.no_ingestion:  # the fleet without results: ingestion's baseline
            connections.close_all()  # nobody may be connected to a template
            databases["empty"] = create_database(template=databases["loaded"])[1]
        loaded = load(args, base, databases["loaded"], pairs, start, now, notes)

    client = Client()
    rounds = {}
    if not args.no_ingestion:
        calm(args, "ingestion", notes)
        rounds = ingestion(args, agent, endpoints, client, key, databases)
    use_database(databases["loaded"])
    calm(args, "queries", notes)
    timings = queries(args, user, section, endpoints, client, now, start)
    sizes = storage()
    prunes = {}
    if not (args.keep or args.no_prune):
        calm(args, "pruning", notes)
        prunes = prune(start)
    notes["speed at the end"] = speed()
    report(loaded, notes, rounds, timings, sizes, prunes)


def load(args, base: str, name: str, pairs, start: datetime, now: datetime, notes: dict) -> int:
    """The data set (bench/partitions.py), then prune_results, VACUUM ANALYZE and a CHECKPOINT."""
    from django.conf import settings

    from results.partitions import partitions_ensure

    created = partitions_ensure(since=start.date(), until=now.date() + timedelta(days=7))
    print(f"{len(created)} day partition(s) created beside the migration's")
    minute_floor = now - timedelta(seconds=settings.SMOTRA.results.minute_rollup_retention)
    plan = plan_load(f"{base}/{name}", pairs, start, now, minute_floor)
    started, busy, own, load_before = time.perf_counter(), day_load.machine_busy(), _own_cpu(), os.getloadavg()[0]
    loaded, backends = day_load.load_days(plan, args.processes)
    seconds = time.perf_counter() - started
    others = day_load.machine_busy() - busy - (_own_cpu() - own) - backends
    notes["load"] = f"{loaded:,} rows with rollups in {seconds:.0f} s ({loaded / seconds:,.0f} rows/s); "
    notes["load"] += f"load {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, "
    notes["load"] += f"others {max(0.0, others) / (seconds * CORES):.0%} (checkpoints, WAL, autovacuum among them); "
    notes["load"] += f"the loading backends' CPU: {backends:.0f} s, {backends / loaded * 1e6:.0f} us a row"
    print(f"loaded {notes['load']}")
    describe(plan, minute_floor, notes)
    settle(args, notes)
    return loaded


def calm(args, phase: str, notes: dict) -> None:
    """Wait for the machine to quieten down (``--calm``), and note how long and how far it did."""
    if not args.calm:
        return
    started = time.monotonic()
    while os.getloadavg()[0] >= args.calm and time.monotonic() - started < args.calm_wait:
        time.sleep(15)
    load, waited = os.getloadavg()[0], time.monotonic() - started
    notes[f"before {phase}"] = f"waited {waited:.0f} s for a load average under {args.calm}: {load:.1f}"
    print(notes[f"before {phase}"])


def _own_cpu() -> float:
    return sum(os.times()[:2])


def plan_load(url: str, pairs, start: datetime, now: datetime, minute_floor: datetime) -> day_load.Plan:
    from results.rollups import series_ids

    steps = (now - start) // STEP
    days = -(-steps // day_load.STEPS_PER_DAY)
    print(f"{len(pairs)} (endpoint, agent) pairs x {steps} checks = {len(pairs) * steps:,} results, {days} UTC days")
    series = series_ids({(endpoint.pk, agent.pk, "ping") for endpoint, agent in pairs})
    return day_load.Plan(
        url=url,
        start=int(start.timestamp()),
        steps=steps,
        minute_floor=int(minute_floor.timestamp()),
        pairs=day_load.plan_pairs(pairs, series, int(start.timestamp()), days),
    )


def describe(plan: day_load.Plan, minute_floor: datetime, notes: dict) -> None:
    """Where the rows went (none should be in the default partition); the rollups checked."""
    rows = day_load.partition_rows()
    default = rows.pop("results_checkresult_default", 0)
    filled = [count for count in rows.values() if count]
    notes["partitions"] = (
        f"{len(rows)} day partitions, {len(filled)} with rows ({min(filled):,} to {max(filled):,}); "
        f"{default:,} row(s) in the default partition"
    )
    print(notes["partitions"])
    wrong = day_load.check_rollups(plan.pairs, minute_floor)
    notes["rollups"] = "match results.rollups.tiers_of" if not wrong else f"{wrong} row(s) DIFFER from tiers_of"
    print(f"rollups of 3 series: {notes['rollups']}")


def settle(args, notes: dict) -> None:
    """prune_results (minute rollups keep 14 days, as in production; results only past the data
    set's days), VACUUM ANALYZE, and a CHECKPOINT: a checkpoint falling due during the timed
    measures would measure the loader's I/O instead."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    started = time.perf_counter()
    older = None if args.days * 86400 <= settings.SMOTRA.results.retention else f"{args.days + 2}d"
    call_command("prune_results", *(["--older-than", older] if older else []), stdout=io.StringIO())
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")
    notes["settle"] = f"prune_results, VACUUM ANALYZE, CHECKPOINT after it: {time.perf_counter() - started:.0f} s"
    print(notes["settle"])


def ingestion(args, agent, endpoints, client, key: str, databases: dict[str, str]) -> dict:
    """Each measure on each database, alternating (the order turned round every round): per
    (database, path, rollups) a (items/s, CPU seconds per item, Meter) for every round."""
    rounds: dict[tuple, list[tuple[float, float, Meter]]] = {}
    labels = list(databases)
    for number in range(args.rounds):
        for database in labels if number % 2 == 0 else labels[::-1]:
            use_database(databases[database])
            for label, kwargs in {"service": {}, "http": {"client": client, "key": key}}.items():
                for with_rollups in (False, True):
                    with Meter() as meter:
                        rate = ingestion_rate(agent, endpoints, args.batches, with_rollups=with_rollups, **kwargs)
                    cpu = meter.cpu / (args.batches * 100)
                    print(
                        f"  ingestion {database} {label} rollups={with_rollups}: {rate:,.0f} items/s, "
                        f"CPU {cpu * 1e6:.0f} us/item ({meter})"
                    )
                    rounds.setdefault((database, label, with_rollups), []).append((rate, cpu, meter))
    return rounds


def queries(args, user, section, endpoints, client, now: datetime, start: datetime) -> dict:
    from django.db import connection

    from results.models import CheckResult
    from results.selectors.raw import cursor_encode
    from tenants.tokens import token_issue

    token, _ = token_issue(user=user)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # after the ingestion measures, as the autovacuum would
        cursor.execute("CHECKPOINT")
    endpoint = endpoints[17]
    day_ago, month_ago = (now - timedelta(days=1)).isoformat(), (now - timedelta(days=args.days)).isoformat()
    # Three quarters into the data's time (an OFFSET of 15 million rows would take a minute).
    deep = CheckResult.objects.filter(checked_at__gte=start + (now - start) * 3 / 4).order_by("checked_at", "id")[0]
    measures = {
        "report (a): 1 endpoint, all agents, 24 h, 5m": (
            "/api/v1/result/report",
            {"start_time": day_ago, "end_time": now.isoformat(), "aggregation": "5m", "endpoint_id": str(endpoint.pk)},
        ),
        "report (b): 1 endpoint, 30 d, 1h": (
            "/api/v1/result/report",
            {
                "start_time": month_ago,
                "end_time": now.isoformat(),
                "aggregation": "1h",
                "endpoint_id": str(endpoint.pk),
                "page_size": 1000,
            },
        ),
        "report (c): section, 30 d, 1d, group_by=endpoint": (
            "/api/v1/result/report",
            {
                "start_time": month_ago,
                "end_time": now.isoformat(),
                "aggregation": "1d",
                "section_id": str(section.pk),
                "group_by": "endpoint",
            },
        ),
        "summary, 24 h": ("/api/v1/result/summary", {"time_range": "24h"}),
        "metrics: a page deep into the data": (
            "/api/v1/result/metrics",
            {"start_time": month_ago, "end_time": now.isoformat(), "cursor": cursor_encode(deep)},
        ),
    }
    timings = {}
    for label, (path, params) in measures.items():
        with Meter() as meter:
            p50, p99, rows = timed(client, path, params, args.runs, token)
        cpu = meter.cpu / (args.runs + WARM_UP)
        timings[label] = (p50, p99, rows, cpu, meter)
        print(f"  {label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, CPU {cpu * 1000:.1f} ms/request ({meter})")
    return timings


def prune(start: datetime) -> dict[str, tuple[Timing, Meter]]:
    """Drop the oldest day partition, then delete the next day's rows the old way."""
    from django.db import connection

    first, second = start.date(), start.date() + timedelta(days=1)
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")  # the queries' hint bits and the like, not the prune, write them out
    with Meter() as meter:
        dropped = day_load.prune_oldest_day(first)
    prunes = {f"results_prune, cutoff at the end of {first} (drops its partition)": (dropped, meter)}
    print(f"  pruned {dropped.rows:,} rows in {dropped.seconds:.2f} s: {dropped.note} ({meter})")
    with Meter() as meter:
        deleted, vacuumed = day_load.delete_next_day(second)
    prunes[f"old way: delete_in_chunks of {second}'s rows, 5000 a statement"] = (deleted, meter)
    prunes[f"old way: then VACUUM of {second}'s partition"] = (vacuumed, meter)
    print(f"  deleted {deleted.rows:,} rows in {deleted.seconds:.1f} s, vacuumed in {vacuumed.seconds:.1f} s ({meter})")
    return prunes


def report(loaded, notes, rounds, timings, sizes, prunes) -> None:
    out = io.StringIO()
    out.write(f"\nraw results: {loaded:,}\n")
    for label, note in notes.items():
        out.write(f"{label}: {note}\n")
    out.write("\n| measure | value | noise |\n|---|---:|---|\n")
    ingestion_rows(out, rounds)
    for label, (p50, p99, rows, cpu, meter) in timings.items():
        out.write(f"| {label}: p50 / p99 ms ({rows} rows), CPU ms/request | {p50:.1f} / {p99:.1f}, {cpu * 1000:.1f} |")
        out.write(f" {meter} |\n")
    raw_bytes = sizes["results_checkresult"][0]
    rollup_bytes = sum(size for table, (size, _rows) in sizes.items() if table != "results_checkresult")
    for table, (size, rows) in sizes.items():
        out.write(f"| {table}: rows, MB | {rows:,}, {size / 2**20:,.0f} | |\n")
    out.write(f"| rollup storage / raw | {rollup_bytes / raw_bytes:.0%} | |\n")
    for label, (timing, meter) in prunes.items():
        out.write(f"| {label}: s (rows) | {timing.seconds:.2f} ({timing.rows:,}) | {meter} |\n")
    print(out.getvalue())


def ingestion_rows(out, rounds: dict) -> None:
    """Per measure its best round (items/s) and median CPU per item; per path the loaded table's
    throughput against the empty one's three ways: best against best, the median of the rounds'
    pairs (measured back to back), and by CPU per item (what noise disturbs least)."""
    for (database, label, with_rollups), measured in rounds.items():
        rate, _cpu, meter = max(measured, key=lambda run: run[0])
        cpu = statistics.median(run[1] for run in measured)
        rollups = "with" if with_rollups else "without"
        out.write(f"| ingestion ({label}), {database} table, {rollups} rollups: items/s, CPU us/item |")
        out.write(f" {rate:,.0f}, {cpu * 1e6:.0f} | best of {len(measured)}: {meter} |\n")
    for label in ("service", "http"):
        for with_rollups in (False, True):
            empty, loaded = rounds.get(("empty", label, with_rollups)), rounds.get(("loaded", label, with_rollups))
            if not (empty and loaded):
                continue
            best = max(run[0] for run in loaded) / max(run[0] for run in empty)
            paired = statistics.median(full[0] / bare[0] for full, bare in zip(loaded, empty, strict=True))
            by_cpu = statistics.median(run[1] for run in empty) / statistics.median(run[1] for run in loaded)
            rollups = "with" if with_rollups else "without"
            out.write(f"| ingestion ({label}, {rollups} rollups): loaded / empty table, best / paired / by CPU |")
            out.write(f" {best:.0%} / {paired:.0%} / {by_cpu:.0%} | |\n")


if __name__ == "__main__":
    main()
