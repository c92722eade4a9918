"""Benchmark of the read side on PostgreSQL: a realistic data set, then ingestion and query timings.

    .venv/bin/python bench/readside.py [--results 5000000] [--days 30] [--runs 30] [--keep]

Data set (default): 200 endpoints and 20 agents in one section; each endpoint is checked by 3 of the
agents (a quorum topology) with a 3-packet ping every 5 minutes (SmokePing's step) for 30 days, so
200 x 3 x 288 x 30 = 5.18 million raw results. Latency per (endpoint, agent) is log-normal around its
own base (1-150 ms) with jitter; a few outages (hours of failures, and a lossy evening per endpoint)
are mixed in. Raw rows are loaded with COPY; rollups are computed by the same code as ingestion
(results.rollups.cells_of) and written with COPY too. Then, in one run:

- ingestion items/s with and without rollup maintenance (results_ingest, batches of 100);
- p50/p99 of /result/report (a) one endpoint, all agents, 24 h at 5m, (b) one endpoint, 30 days at 1h,
  (c) the whole section, 30 days at 1d, group_by=endpoint; /result/summary for 24 h; a page of
  /result/metrics deep into the data (through Django's test client, so DRF and serialisation count);
- storage of raw results and of the rollups (pg_total_relation_size, indexes included).

A throwaway database on $BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432) is created
and dropped (``--keep`` keeps it and prints its name)."""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
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
sys.path.insert(0, str(ROOT))

STEP = timedelta(minutes=5)
AGENTS_PER_ENDPOINT = 3


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=int, default=5_000_000, help="About how many raw results (default 5M).")
    parser.add_argument("--endpoints", type=int, default=200)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=30, help="Timed runs per query (default 30).")
    parser.add_argument("--batches", type=int, default=200, help="Batches of 100 per ingestion measure.")
    parser.add_argument("--keep", action="store_true", help="Keep the database (its name is printed).")
    parser.add_argument(
        "--reuse",
        metavar="NAME",
        help="Measure on a database an earlier --keep run left (no load; it is kept again).",
    )
    parser.add_argument("--no-ingestion", action="store_true", help="Skip the ingestion measures.")
    return parser.parse_args()


def create_database() -> tuple[str, str]:
    import psycopg

    base = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
    name = f"smotra_bench_read_{secrets.token_hex(4)}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
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
        [Endpoint(section=section, address=f"target-{n:03d}.example.net", port=443) for n in range(endpoint_count)]
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


def outage(rng: random.Random, start: datetime, days: int) -> tuple[datetime, datetime]:
    begin = start + timedelta(minutes=rng.randrange(days * 24 * 60))
    return begin, begin + timedelta(hours=rng.choice([1, 2, 4]))


def generate(pairs, start: datetime, steps: int, seed: int = 42):
    """Yield CheckResult instances (unsaved), time-ordered per pair: realistic latencies, outages."""
    from results.models import CheckResult

    rng = random.Random(seed)
    days = max(1, steps * STEP // timedelta(days=1))
    for endpoint, agent in pairs:
        base = rng.uniform(1, 150)
        spread = rng.uniform(0.05, 0.4)
        outages = [outage(rng, start, days) for _ in range(rng.choice([0, 0, 1, 2]))]
        lossy_hour = rng.randrange(24)
        for step in range(steps):
            at = start + step * STEP + timedelta(seconds=rng.randrange(60))
            down = any(begin <= at < end for begin, end in outages)
            loss = 0.3 if at.hour == lossy_hour else 0.005
            latencies = [] if down else [round(rng.lognormvariate(math.log(base), spread), 3) for _ in range(3)]
            latencies = [value for value in latencies if rng.random() > loss]
            yield CheckResult(
                id=uuid.uuid4(),
                agent_id=agent.pk,
                endpoint_id=endpoint.pk,
                check_type="ping",
                success=bool(latencies),
                checked_at=at,
                received_at=at,
                latency_ms=round(statistics.fmean(latencies), 3) if latencies else None,
                packets_sent=3,
                packets_received=len(latencies),
                resolved_ip="192.0.2.1",
                details={
                    "successes": len(latencies),
                    "failures": 3 - len(latencies),
                    "success_latencies": latencies,
                    "error_details": None if latencies else {"errors": ["request timed out"]},
                },
            )


COPY_COLUMNS = [
    "id",
    "agent_id",
    "endpoint_id",
    "check_type",
    "success",
    "checked_at",
    "received_at",
    "latency_ms",
    "packets_sent",
    "packets_received",
    "status_code",
    "resolved_ip",
    "details",
]


def load(pairs, start: datetime, steps: int, minute_floor: datetime) -> int:
    """COPY the raw rows, one (endpoint, agent) pair at a time, and its rollup rows as ingestion's
    own code computes them (results.rollups.cells_of, rollup_rows). A pair's results all arrive here
    at once, so each rollup row is complete and COPY can write it: upserting 5 million rows one
    batch at a time would measure the loader, not the reads. Minute rows older than their retention
    are not written, as in a database that ``prune_results`` keeps (deleting them after loading
    would leave their space in the table's files and measure that instead)."""
    from django.db import connection

    from results.rollups import MINUTE, RESOLUTIONS, ROLLUP_COLUMNS, cells_of, rollup_rows, series_ids

    loaded = 0
    with connection.cursor() as cursor:
        raw = cursor.connection
        for number, pair in enumerate(pairs):
            results = list(generate([pair], start, steps, seed=number))
            series = series_ids({(r.endpoint_id, r.agent_id, r.check_type) for r in results})
            with raw.transaction(), raw.cursor() as copy_cursor:
                with copy_cursor.copy(f"COPY results_checkresult ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy:
                    for r in results:
                        copy.write_row([getattr(r, name) for name in COPY_COLUMNS[:-1]] + [json.dumps(r.details)])
                for model, width in RESOLUTIONS.values():
                    cells = cells_of(results, width)
                    if width == MINUTE:
                        cells = {key: cell for key, cell in cells.items() if key[1] >= minute_floor}
                    table = model._meta.db_table
                    with copy_cursor.copy(f"COPY {table} ({', '.join(ROLLUP_COLUMNS)}) FROM STDIN") as copy:
                        for row in rollup_rows(model, cells, series):
                            copy.write_row(row)
            loaded += len(results)
            if number % 20 == 0:
                print(f"  loaded {loaded:,}", end="\r", flush=True)
    print()
    return loaded


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
    from django.db import connection

    sizes = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute("SELECT pg_total_relation_size(%s), (SELECT count(*) FROM " + table + ")", [table])
            sizes[table] = cursor.fetchone()
    return sizes


def main() -> None:
    args = parse_args()
    if args.reuse:
        base, name = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/"), args.reuse
        args.keep = True
    else:
        base, name = create_database()
    print(f"database {name}")
    try:
        setup_django(f"{base}/{name}")
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep:
            print(f"kept database {name}")
        else:
            drop_database(base, name)


def run(args) -> None:
    from django.conf import settings
    from django.test import Client

    from agents.keys import api_key_hash
    from results.models import CheckResult
    from results.selectors.raw import cursor_encode
    from tenants.tokens import token_issue

    settings.ALLOWED_HOSTS = ["*"]
    from django.core.management import call_command
    from django.db import connection

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    if args.reuse:
        user, section, endpoints, agents = existing_fleet()
        loaded = CheckResult.objects.count()
        print(f"reusing {loaded:,} results")
    else:
        user, section, endpoints, agents, pairs = build_fleet(args.endpoints, args.agents)
        steps = max(1, round(args.results / len(pairs)))
        start = now - steps * STEP
        total = len(pairs) * steps
        print(f"{len(pairs)} (endpoint, agent) pairs x {steps} checks = {total:,} results over {args.days} d")
        started = time.perf_counter()
        minute_floor = now - timedelta(seconds=settings.SMOTRA.results.minute_rollup_retention)
        loaded = load(pairs, start, steps, minute_floor)
        print(f"loaded {loaded:,} results with rollups in {time.perf_counter() - started:.0f} s")
        call_command("prune_results", stdout=io.StringIO())  # minute rollups keep 14 days, as in production
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
            # Write the loaded pages out now: a checkpoint falling due during the timed queries would
            # measure the loader's I/O instead of the queries.
            cursor.execute("CHECKPOINT")

    fresh = agents[0]
    key = secrets.token_urlsafe(32)
    type(fresh).objects.filter(pk=fresh.pk).update(api_key_hash=api_key_hash(key))
    client = Client()
    # Each measure twice, alternating, the better of two kept: the machine's noise is larger than
    # a single run's difference.
    rates = {}
    for _round in range(0 if args.no_ingestion else 2):
        for label, kwargs in {
            "service": {},
            "http": {"client": client, "key": key},
        }.items():
            for with_rollups in (False, True):
                rate = ingestion_rate(fresh, endpoints, args.batches, with_rollups=with_rollups, **kwargs)
                rates[(label, with_rollups)] = max(rate, rates.get((label, with_rollups), 0))

    token, _ = token_issue(user=user)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # after the ingestion measures, as the autovacuum would
        cursor.execute("CHECKPOINT")
    endpoint = endpoints[17]
    day_ago, month_ago = (now - timedelta(days=1)).isoformat(), (now - timedelta(days=args.days)).isoformat()
    deep = CheckResult.objects.order_by("checked_at", "id")[loaded * 3 // 4]
    queries = {
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
    timings = {label: timed(client, path, params, args.runs, token) for label, (path, params) in queries.items()}
    sizes = storage()
    report(loaded, rates, timings, sizes)


def report(loaded, rates, timings, sizes) -> None:
    out = io.StringIO()
    out.write(f"\nraw results: {loaded:,}\n\n")
    out.write("| measure | value |\n|---|---:|\n")
    for label in ("service", "http") if rates else ():
        without, with_rollups = rates[(label, False)], rates[(label, True)]
        out.write(f"| ingestion ({label}) without rollups (items/s) | {without:,.0f} |\n")
        ratio = with_rollups / without
        out.write(f"| ingestion ({label}) with rollups (items/s) | {with_rollups:,.0f} ({ratio:.0%}) |\n")
    for label, (p50, p99, rows) in timings.items():
        out.write(f"| {label}: p50 / p99 ms ({rows} rows) | {p50:.1f} / {p99:.1f} |\n")
    raw_bytes = sizes["results_checkresult"][0]
    rollup_bytes = sum(size for table, (size, _rows) in sizes.items() if table != "results_checkresult")
    for table, (size, rows) in sizes.items():
        out.write(f"| {table}: rows, MB | {rows:,}, {size / 2**20:,.0f} |\n")
    out.write(f"| rollup storage / raw | {rollup_bytes / raw_bytes:.0%} |\n")
    print(out.getvalue())


if __name__ == "__main__":
    main()
