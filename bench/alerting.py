"""Benchmark of one alert evaluation pass on PostgreSQL: 1,000 rules over 10,000 (endpoint, agent)
pairs, and the same pass over half the pairs to show that the number of queries does not follow them.

Data set (default): 10 tenants, each with 10 agents checking 100 endpoints (1,000 pairs per tenant)
every minute for the last 15 minutes (minute rollups written with COPY through ingestion's own
rollup code); 5 % of the pairs fail, 2 endpoints per tenant fail for most agents, one agent per
tenant fails everything (its network). Each tenant has 100 rules (status, uptime, loss, average and
p95 latency; windows of 5, 10 and 15 minutes; a third filtered to a tag or to some agents). It
reports, for the first pass (which opens incidents and writes their notifications) and a steady
pass (nothing changes): seconds and database queries.

    .venv/bin/python bench/alerting.py            # --tenants 10 --agents 10 --endpoints 100 --rules 100
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from readside import create_database, drop_database, setup_django


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--agents", type=int, default=10, help="Agents per tenant.")
    parser.add_argument(
        "--endpoints", type=int, default=100, help="Endpoints per tenant (each checked by every agent)."
    )
    parser.add_argument("--rules", type=int, default=100, help="Rules per tenant.")
    parser.add_argument("--minutes", type=int, default=15)
    return parser.parse_args()


def build(args, now: datetime) -> None:
    from agents.models import Agent
    from alerting.models import AlertRule
    from endpoints.models import Endpoint, Tag
    from results.models import CheckResult
    from tenants.models import Section, Tenant

    rng = random.Random(7)
    results = []
    rules = []
    for t in range(args.tenants):
        tenant = Tenant.objects.create(name=f"bench-{t}")
        section = Section.objects.create(tenant=tenant, name="fleet")
        tag = Tag.objects.create(section=section, name="core", scope="endpoint")
        endpoints = Endpoint.objects.bulk_create(
            [Endpoint(section=section, address=f"t{t}-target-{n:03d}.example.net") for n in range(args.endpoints)]
        )
        tag.endpoints.add(*endpoints[::4])
        agents = Agent.objects.bulk_create(
            [
                Agent(id=uuid.uuid4(), section=section, name=f"t{t}-agent-{n}", last_seen_at=now)
                for n in range(args.agents)
            ]
        )
        broken_agent, down = agents[0], set(endpoints[1:3])
        for endpoint in endpoints:
            for agent in agents:
                flaky = rng.random() < 0.05
                for minute in range(args.minutes):
                    ok = not (agent is broken_agent or (endpoint in down and agent is not agents[-1]) or flaky)
                    latencies = [rng.lognormvariate(3, 0.4) for _ in range(3)] if ok else []
                    results.append(
                        CheckResult(
                            id=uuid.uuid4(),
                            agent_id=agent.pk,
                            endpoint_id=endpoint.pk,
                            check_type="ping",
                            success=ok,
                            checked_at=now - timedelta(minutes=minute, seconds=10),
                            received_at=now,
                            packets_sent=3,
                            packets_received=len(latencies),
                            details={"success_latencies": latencies},
                        )
                    )
        for r in range(args.rules):
            kind = r % 5
            fields = {
                "tenant": tenant,
                "name": f"rule {r}",
                "window_seconds": (300, 600, 900)[r % 3],
                "quorum_min_agents": 1,
                "quorum_min_percent": 50,
                "metric": ("status", "uptime_percent", "packet_loss_percent", "response_time_ms", "response_time_ms")[
                    kind
                ],
                "operator": "less_than" if kind == 1 else "greater_than",
                "threshold": (0, 90, 20, 60, 80)[kind],
                "aggregation": "p95" if kind == 4 else "avg",
            }
            if r % 3 == 1:
                fields["filters"] = {"endpoint_tag_ids": [str(tag.pk)]}
            elif r % 3 == 2:
                fields["filters"] = {"agent_ids": [str(agent.pk) for agent in agents[: args.agents // 2]]}
            rules.append(AlertRule(**fields))
    AlertRule.objects.bulk_create(rules)
    write_rollups(results)
    return len(results)


def write_rollups(results) -> None:
    from django.db import connection

    from results.models import MinuteRollup
    from results.rollups import MINUTE, ROLLUP_COLUMNS, cells_of, rollup_rows, series_ids

    series = series_ids({(r.endpoint_id, r.agent_id, r.check_type) for r in results})
    with connection.cursor() as cursor, cursor.connection.cursor() as raw:
        with raw.copy(f"COPY {MinuteRollup._meta.db_table} ({', '.join(ROLLUP_COLUMNS)}) FROM STDIN") as copy:
            for row in rollup_rows(MinuteRollup, cells_of(results, MINUTE), series):
                copy.write_row(row)
        cursor.execute("ANALYZE")


def measured(now: datetime) -> tuple[float, int, object]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from alerting.evaluation import evaluate

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        stats = evaluate(now=now)
        seconds = time.perf_counter() - started
    return seconds, len(queries), stats


def main() -> None:
    args = parse_args()
    base, name = create_database()
    print(f"database {name}")
    try:
        setup_django(f"{base}/{name}")
        from alerting.models import AlertRule, Incident, Notification
        from results.models import RollupSeries

        now = datetime.now(UTC).replace(microsecond=0)
        started = time.perf_counter()
        loaded = build(args, now)
        pairs = RollupSeries.objects.count()
        rules = AlertRule.objects.filter(enabled=True).count()
        took = time.perf_counter() - started
        print(f"{rules:,} rules, {pairs:,} pairs, {loaded:,} results as minute rollups in {took:.0f} s")
        first = measured(now)
        steady = measured(now + timedelta(seconds=15))
        # Half the pairs (the other half's agents offline): the query count must not move.
        from agents.models import Agent

        Agent.objects.filter(name__regex=r"-agent-[5-9]$").update(last_seen_at=now - timedelta(hours=1))
        half = measured(now + timedelta(seconds=30))
        print()
        print("| pass | seconds | queries | opened | resolved |")
        print("|---|---:|---:|---:|---:|")
        for label, (seconds, queries, stats) in {
            "first (opens incidents)": first,
            "steady (no change)": steady,
            "half the agents offline": half,
        }.items():
            print(f"| {label} | {seconds:.2f} | {queries} | {stats.opened} | {stats.resolved} |")
        active = Incident.objects.filter(status="active").count()
        print(f"\nopen incidents {active:,}, outbox {Notification.objects.count():,}")
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(base, name)


if __name__ == "__main__":
    main()
