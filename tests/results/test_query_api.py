"""The results query API: ``GET {prefix}/result/report``, ``/result/metrics``, ``/result/summary``.

Every figure is checked against what agents posted through the agent API (``POST
/api/v1/agent/{id}/results``), with the clock frozen at ``NOW``: the minute rollups' retention
(14 days) decides whether a report is read from minute or hourly rollups, so results are placed
relative to it. Percentiles are compared with the exact nearest-rank percentile of the samples
sent (within 2 % or 0.1 ms, the histogram's promise)."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from results.models import CheckResult, HourRollup, MinuteRollup
from tests.factories import EndpointFactory, SectionFactory
from tests.results import SAMPLES, agent_with_key, key_header, result_item

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 12, 34, 56, tzinfo=UTC)
TEN = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)  # the hour most results are placed in
PREFIXES = ["/api/v1", "/v1", ""]
ROW_COLUMNS = [
    "timestamp",
    "agent_id",
    "hostname",
    "endpoint_id",
    "target",
    "metric_type",
    "status",
    "check_count",
    "successful_checks",
    "failed_checks",
    "success_rate_percent",
    "packet_loss_percent",
    "avg_response_time_ms",
    "min_response_time_ms",
    "max_response_time_ms",
    "p50_response_time_ms",
    "p95_response_time_ms",
    "p99_response_time_ms",
]


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


# ---------------------------------------------------------------------------------------------
# Helpers: agents that post, results of each type, and the three queries


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso(moment: datetime) -> str:
    """How the API writes a time (DRF: ISO 8601, ``Z`` for UTC)."""
    return rfc3339(moment)


class Probe:
    """An agent with its own key, posting through the agent API."""

    def __init__(self, section, name: str):
        self.key = f"smk_test-{name}-{uuid.uuid4().hex}"
        self.agent = agent_with_key(section, key=self.key, name=name)
        self.pk = self.agent.pk

    def send(self, items: list[dict]) -> dict:
        client = APIClient()
        response = client.post(
            f"/api/v1/agent/{self.pk}/results", {"results": items}, format="json", **key_header(self.key)
        )
        assert response.status_code == 202, response.content
        body = response.json()
        assert body["rejected"] == [], body
        return body

    # One MonitoringResult of each kind, at ``moment``.

    def ping(self, endpoint, moment, latencies, failures=0) -> dict:
        result = {"resolved_ip": "192.0.2.1", "successes": len(latencies), "failures": failures}
        result |= {"success_latencies": latencies, "error_details": None}
        return result_item(self.pk, endpoint.pk, "ping", result, timestamp=rfc3339(moment))

    def tcp(self, endpoint, moment, ms, connected=True) -> dict:
        result = {"resolved_ip": "192.0.2.2", "connected": connected, "connect_time_ms": ms, "error_details": None}
        return result_item(self.pk, endpoint.pk, "tcpconnect", result, timestamp=rfc3339(moment))

    def udp(self, endpoint, moment, ms, ok=True) -> dict:
        result = {"resolved_ip": "192.0.2.3", "probe_successful": ok, "response_time_ms": ms, "error_details": None}
        return result_item(self.pk, endpoint.pk, "udpconnect", result, timestamp=rfc3339(moment))

    def http(self, endpoint, moment, ms, ok=True, status_code=200) -> dict:
        result = {"status_code": status_code, "success": ok, "response_time_ms": ms}
        result |= {"response_size_bytes": 100, "error_details": None}
        return result_item(self.pk, endpoint.pk, "httpget", result, timestamp=rfc3339(moment))

    def plugin(self, endpoint, moment, ms, ok=True) -> dict:
        result = {"plugin_name": "dns", "plugin_version": "1.0", "success": ok, "data": {}}
        result |= {"response_time_ms": ms, "error_details": None}
        return result_item(self.pk, endpoint.pk, "plugin", result, timestamp=rfc3339(moment))

    def trace(self, endpoint, moment, reached=True) -> dict:
        hops = [{"hop": 1, "resolved_ip": "10.0.0.1", "hostname": None, "success_latencies": [1.0, 3.0]}]
        result = {"target_reached": reached, "hops": hops, "error_details": None}
        return result_item(self.pk, endpoint.pk, "traceroute", result, timestamp=rfc3339(moment))


def query(client, route: str, prefix: str = "/api/v1", **params):
    """``GET {prefix}/result/{route}``; datetimes as RFC 3339, lists as repeated parameters."""

    def text(value):
        return rfc3339(value) if isinstance(value, datetime) else str(value)

    data = {key: [text(v) for v in value] if isinstance(value, list) else text(value) for key, value in params.items()}
    return client.get(f"{prefix}/result/{route}", data)


def report(client, **params) -> dict:
    params.setdefault("page_size", 1000)
    response = query(client, "report", **params)
    assert response.status_code == 200, response.content
    return response.json()


def nearest_rank(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def assert_close_percentile(reported: float, exact: float, what) -> None:
    # The stated bound, plus the half-microsecond of the answer's rounding to 3 decimals.
    assert abs(reported - exact) <= max(0.02 * exact, 0.1) + 5e-4, (what, exact, reported)


def target_of(endpoint) -> str:
    return f"{endpoint.address}:{endpoint.port}" if endpoint.port else endpoint.address


def body_of(response) -> str:
    return b"".join(response.streaming_content).decode()


# ---------------------------------------------------------------------------------------------
# 1. Percentiles against the exact ones, per agent and merged, at 1m and 1h

DISTRIBUTIONS = {
    "lognormal ~8 ms": lambda rng: rng.lognormvariate(math.log(8), 0.4),
    "bimodal 2 ms / 150 ms": lambda rng: rng.uniform(1.5, 2.5) if rng.random() < 0.7 else max(rng.gauss(150, 20), 1),
    "below a millisecond": lambda rng: rng.uniform(0.02, 0.9),
    "heavy tail": lambda rng: rng.paretovariate(1.3) * 3,
}


@pytest.fixture
def latency_fleet(section_a):
    """Three agents, two endpoints, five minutes of pings, TCP, HTTP, UDP and plugin checks, each
    agent with its own distributions. Returns the samples sent per (minute, endpoint, agent, type)."""
    rng = random.Random(20260310)
    probes = [Probe(section_a, f"probe-{n}") for n in range(3)]
    endpoints = [EndpointFactory(section=section_a, port=443), EndpointFactory(section=section_a)]
    names = list(DISTRIBUTIONS)
    samples: dict[tuple, list[float]] = defaultdict(list)

    def draw(name):
        return round(DISTRIBUTIONS[name](rng), 3)

    for index, probe in enumerate(probes):
        ping_of, tcp_of = names[index], names[(index + 1) % len(names)]
        items = []
        for minute in range(5):
            start = TEN + timedelta(minutes=minute)
            for endpoint in endpoints:
                key = (start, endpoint.pk, probe.pk)
                for n in range(8):
                    moment = start + timedelta(seconds=rng.uniform(0, 59.9))
                    latencies = [draw(ping_of) for _ in range(rng.choice([0, 3, 5, 5]))]
                    items.append(probe.ping(endpoint, moment, latencies, failures=5 - len(latencies)))
                    samples[(*key, "ping")] += latencies
                    ms = draw(tcp_of)
                    items.append(probe.tcp(endpoint, moment, ms))
                    samples[(*key, "tcpconnect")].append(ms)
                    if n % 2:
                        ms = draw(names[3])
                        items.append(probe.http(endpoint, moment, ms))
                        samples[(*key, "httpget")].append(ms)
                        ms = draw(names[2])
                        items.append(probe.udp(endpoint, moment, ms))
                        samples[(*key, "udpconnect")].append(ms)
                        ms = draw(names[0])
                        items.append(probe.plugin(endpoint, moment, ms))
                        samples[(*key, "plugin")].append(ms)
        probe.send(items)
    return probes, endpoints, samples


def regroup(samples: dict, aggregation: str, group_by: str) -> dict:
    """The exact samples per report row: (timestamp, endpoint_id, agent_id or None, type)."""
    width = {"1m": 60, "1h": 3600}[aggregation]
    rows: dict[tuple, list[float]] = defaultdict(list)
    for (start, endpoint_id, agent_id, check_type), values in samples.items():
        bucket = datetime.fromtimestamp(int(start.timestamp()) // width * width, UTC)
        rows[(iso(bucket), str(endpoint_id), str(agent_id) if group_by == "agent" else None, check_type)] += values
    return rows


@pytest.mark.parametrize("aggregation", ["1m", "1h"])
@pytest.mark.parametrize("group_by", ["agent", "endpoint"])
def test_percentiles_are_within_two_percent_of_the_exact_samples(
    client_for, alice, latency_fleet, aggregation, group_by
):
    probes, endpoints, samples = latency_fleet
    window = {"start_time": TEN, "end_time": TEN + timedelta(hours=1)}
    answer = report(client_for(alice), **window, aggregation=aggregation, group_by=group_by)
    assert answer["aggregation"] == aggregation
    expected = regroup(samples, aggregation, group_by)
    rows = {(row["timestamp"], row["endpoint_id"], row["agent_id"], row["metric_type"]): row for row in answer["data"]}
    assert set(rows) == set(expected)
    names = {str(probe.pk): probe.agent.name for probe in probes}
    checked = 0
    for key, values in expected.items():
        row = rows[key]
        assert row["hostname"] == (names[key[2]] if group_by == "agent" else None)
        if not values:  # a bucket of failed pings only
            assert row["p50_response_time_ms"] is None and row["avg_response_time_ms"] is None
            continue
        assert row["min_response_time_ms"] == pytest.approx(min(values), abs=5e-4)
        assert row["max_response_time_ms"] == pytest.approx(max(values), abs=5e-4)
        assert row["avg_response_time_ms"] == pytest.approx(sum(values) / len(values), abs=1e-3)
        for p in (50, 95, 99):
            assert_close_percentile(row[f"p{p}_response_time_ms"], nearest_rank(values, p), (key, p))
            checked += 1
    assert checked > 3 * 30 if aggregation == "1m" else checked > 20
    # Merged agents: one row per bucket x endpoint x type, agent_id null.
    if group_by == "endpoint":
        assert all(row["agent_id"] is None for row in answer["data"])
        per_bucket = 5 if aggregation == "1m" else 1
        assert len(answer["data"]) == per_bucket * len(endpoints) * 5


def test_the_merged_percentile_is_not_an_average_of_percentiles(client_for, alice, section_a):
    """Two agents, one fast and one slow: the merged p50 is a sample's, not the mean of the two."""
    fast, slow = Probe(section_a, "fast"), Probe(section_a, "slow")
    endpoint = EndpointFactory(section=section_a)
    fast.send([fast.tcp(endpoint, TEN + timedelta(seconds=n), 1.0) for n in range(30)])
    slow.send([slow.tcp(endpoint, TEN + timedelta(seconds=n), 100.0) for n in range(10)])
    [row] = report(
        client_for(alice), start_time=TEN, end_time=TEN + timedelta(minutes=1), aggregation="1m", group_by="endpoint"
    )["data"]
    assert row["check_count"] == 40
    assert row["p50_response_time_ms"] == pytest.approx(1.0, abs=0.1)
    assert row["p95_response_time_ms"] == pytest.approx(100.0, rel=0.02)
    assert row["avg_response_time_ms"] == pytest.approx((30 * 1.0 + 10 * 100.0) / 40, abs=1e-3)


# ---------------------------------------------------------------------------------------------
# 2. Rates, loss, status, counts per bucket


@pytest.fixture
def status_fleet(section_a):
    """Minutes 10:20 to 10:26 with every kind of bucket; 10:25 has no results."""
    one, two = Probe(section_a, "one"), Probe(section_a, "two")
    web = EndpointFactory(section=section_a, address="198.51.100.7", port=8443)
    plain = EndpointFactory(section=section_a, address="plain.example.net")
    m = {n: TEN + timedelta(minutes=n) for n in range(20, 27)}
    one.send(
        [
            one.ping(web, m[20] + timedelta(seconds=1), [10.0, 12.0, 14.0]),
            one.ping(web, m[20] + timedelta(seconds=31), [11.0, 13.0]),
            one.tcp(plain, m[20] + timedelta(seconds=2), 2.5),
            one.ping(web, m[21] + timedelta(seconds=5), [20.0, 30.0], failures=1),
            one.ping(web, m[22] + timedelta(seconds=5), [], failures=3),
            one.tcp(web, m[23] + timedelta(seconds=5), 5.0),
            one.tcp(web, m[23] + timedelta(seconds=6), None, connected=False),
            one.trace(plain, m[24] + timedelta(seconds=1)),
            one.trace(plain, m[24] + timedelta(seconds=59, microseconds=999999)),
            one.trace(plain, m[26] + timedelta(seconds=1), reached=False),
        ]
    )
    two.send(
        [
            two.ping(web, m[22] + timedelta(seconds=7), [40.0, 42.0]),
            two.http(plain, m[26] + timedelta(seconds=3), 80.0),
        ]
    )
    return {"one": one, "two": two, "web": web, "plain": plain, "m": m}


def _expected_status_rows(fleet) -> list[dict]:
    one, two, web, plain, m = (fleet[key] for key in ("one", "two", "web", "plain", "m"))
    no_latency = {f"{name}_response_time_ms": None for name in ("avg", "min", "max", "p50", "p95", "p99")}

    def row(minute, endpoint, probe, metric_type, status, counts, rate, loss, latency):
        total, ok = counts
        base = {
            "timestamp": iso(m[minute]),
            "agent_id": str(probe.pk),
            "hostname": probe.agent.name,
            "endpoint_id": str(endpoint.pk),
            "target": target_of(endpoint),
            "metric_type": metric_type,
            "status": status,
            "check_count": total,
            "successful_checks": ok,
            "failed_checks": total - ok,
            "success_rate_percent": rate,
            "packet_loss_percent": loss,
        }
        if latency is None:
            return base | no_latency
        low, high, avg = latency
        return base | {"avg_response_time_ms": avg, "min_response_time_ms": low, "max_response_time_ms": high}

    rows = [
        row(20, web, one, "ping", "reachable", (2, 2), 100.0, 0.0, (10.0, 14.0, 12.0)),
        row(20, plain, one, "tcpconnect", "reachable", (1, 1), 100.0, None, (2.5, 2.5, 2.5)),
        row(21, web, one, "ping", "degraded", (1, 1), 100.0, 33.33, (20.0, 30.0, 25.0)),
        row(22, web, one, "ping", "unreachable", (1, 0), 0.0, 100.0, None),
        row(22, web, two, "ping", "reachable", (1, 1), 100.0, 0.0, (40.0, 42.0, 41.0)),
        row(23, web, one, "tcpconnect", "degraded", (2, 1), 50.0, None, (5.0, 5.0, 5.0)),
        row(24, plain, one, "traceroute", "reachable", (2, 2), 100.0, None, None),
        row(26, plain, one, "traceroute", "unreachable", (1, 0), 0.0, None, None),
        row(26, plain, two, "httpget", "reachable", (1, 1), 100.0, None, (80.0, 80.0, 80.0)),
    ]
    return sorted(rows, key=lambda r: (r["timestamp"], r["endpoint_id"], r["agent_id"]))


def test_report_rows_per_bucket(client_for, alice, status_fleet):
    answer = report(client_for(alice), start_time=TEN, end_time=TEN + timedelta(hours=1), aggregation="1m")
    expected = _expected_status_rows(status_fleet)
    assert [list(row) for row in answer["data"]] == [ROW_COLUMNS] * len(expected)
    latency_keys = {"p50_response_time_ms", "p95_response_time_ms", "p99_response_time_ms"}
    assert [{k: v for k, v in row.items() if k not in latency_keys} for row in answer["data"]] == [
        {k: v for k, v in row.items() if k not in latency_keys} for row in expected
    ]
    # Ordered by timestamp, then endpoint, then agent; 10:25 had no results, so it is absent.
    keys = [(row["timestamp"], row["endpoint_id"], row["agent_id"]) for row in answer["data"]]
    assert keys == sorted(keys)
    assert iso(status_fleet["m"][25]) not in {row["timestamp"] for row in answer["data"]}
    # Latency-less buckets have null percentiles; single-sample ones report that sample.
    by_key = {(row["timestamp"], row["metric_type"], row["agent_id"]): row for row in answer["data"]}
    trace = by_key[(iso(status_fleet["m"][24]), "traceroute", str(status_fleet["one"].pk))]
    assert all(trace[key] is None for key in latency_keys)
    tcp = by_key[(iso(status_fleet["m"][23]), "tcpconnect", str(status_fleet["one"].pk))]
    assert tcp["p50_response_time_ms"] == tcp["p99_response_time_ms"] == 5.0
    assert answer["metadata"] == {
        "total_checks": 12,
        "successful_checks": 9,
        "failed_checks": 3,
        # 10, 12, 14, 11, 13, 2.5, 20, 30, 40, 42, 5, 80
        "average_response_time_ms": round(279.5 / 12, 3),
    }
    assert answer["time_range"] == {"start": iso(TEN), "end": iso(TEN + timedelta(hours=1))}
    assert answer["pagination"] == {
        "page": 1,
        "page_size": 1000,
        "total_items": 9,
        "total_pages": 1,
        "has_next": False,
        "has_previous": False,
    }


def test_group_by_endpoint_merges_the_agents_of_a_bucket(client_for, alice, status_fleet):
    answer = report(
        client_for(alice),
        start_time=status_fleet["m"][22],
        end_time=status_fleet["m"][23],
        aggregation="1m",
        group_by="endpoint",
    )
    [row] = answer["data"]
    assert (row["agent_id"], row["hostname"], row["check_count"], row["successful_checks"]) == (None, None, 2, 1)
    # Sent 3 + 2 packets, received 0 + 2: 60 % lost; one check of two succeeded: degraded.
    assert (row["status"], row["success_rate_percent"], row["packet_loss_percent"]) == ("degraded", 50.0, 60.0)
    assert (row["min_response_time_ms"], row["max_response_time_ms"], row["avg_response_time_ms"]) == (40.0, 42.0, 41.0)


def test_report_filters(client_for, alice, tenant_a, status_fleet):
    one, two, web, plain = (status_fleet[key] for key in ("one", "two", "web", "plain"))
    other_section = SectionFactory(tenant=tenant_a, name="Other")
    elsewhere = Probe(other_section, "elsewhere")
    far = EndpointFactory(section=other_section, address=web.address, port=9000)
    elsewhere.send([elsewhere.tcp(far, status_fleet["m"][20], 1.0)])
    client = client_for(alice)
    window = {"start_time": TEN, "end_time": TEN + timedelta(hours=1), "aggregation": "1m"}

    def keys(**params):
        return sorted(
            (row["timestamp"][14:16], row["metric_type"], row["status"])
            for row in report(client, **{**window, **params})["data"]
        )

    everything = report(client, **window)["data"]
    assert len(everything) == 10 and {row["endpoint_id"] for row in everything} == {
        str(web.pk),
        str(plain.pk),
        str(far.pk),
    }
    assert len(report(client, **window, section_id=status_fleet["web"].section_id)["data"]) == 9
    assert keys(section_id=other_section.pk) == [("20", "tcpconnect", "reachable")]
    assert keys(status=["degraded", "unreachable"]) == [
        ("21", "ping", "degraded"),
        ("22", "ping", "unreachable"),
        ("23", "tcpconnect", "degraded"),
        ("26", "traceroute", "unreachable"),
    ]
    assert keys(metric_type="icmp_ping") == keys(metric_type="ping")
    assert keys(metric_type=["tcp_check", "http_check"]) == [
        ("20", "tcpconnect", "reachable"),
        ("20", "tcpconnect", "reachable"),
        ("23", "tcpconnect", "degraded"),
        ("26", "httpget", "reachable"),
    ]
    assert keys(metric_type="custom") == []
    assert keys(agent_id=two.pk) == [("22", "ping", "reachable"), ("26", "httpget", "reachable")]
    assert len(report(client, **window, agent_id=[one.pk, two.pk])["data"]) == 9
    assert keys(endpoint_id=plain.pk) == keys(target="plain.example.net")
    assert len(keys(endpoint_id=plain.pk)) == 4
    assert keys(target="198.51.100.7:8443") == keys(endpoint_id=web.pk)
    assert keys(target="198.51.100.7:9000") == [("20", "tcpconnect", "reachable")]
    assert keys(target="198.51.100.7:1") == []
    assert keys(endpoint_id=web.pk, agent_id=two.pk, metric_type="ping") == [("22", "ping", "reachable")]
    # The window is [start, end): the bucket at end_time is out.
    assert keys(start_time=status_fleet["m"][21], end_time=status_fleet["m"][23]) == [
        ("21", "ping", "degraded"),
        ("22", "ping", "reachable"),
        ("22", "ping", "unreachable"),
    ]


# Stored rows read as they are (per agent at the tier's width) and groups added up in the database
# (agents merged, wider buckets) count and total their rows in different queries.
@pytest.mark.parametrize(("aggregation", "group_by"), [("1m", "agent"), ("5m", "endpoint"), ("15m", "agent")])
def test_report_pages(client_for, alice, status_fleet, aggregation, group_by):
    client = client_for(alice)
    window = {"start_time": TEN, "end_time": TEN + timedelta(hours=1), "aggregation": aggregation, "group_by": group_by}
    whole = report(client, **window)
    everything = whole["data"]
    assert len(everything) > 4
    pages = [report(client, **window, page=page, page_size=4) for page in range(1, len(everything) // 4 + 3)]
    assert [row for page in pages for row in page["data"]] == everything
    total_pages = -(-len(everything) // 4)
    assert pages[1]["pagination"] == {
        "page": 2,
        "page_size": 4,
        "total_items": len(everything),
        "total_pages": total_pages,
        "has_next": total_pages > 2,
        "has_previous": True,
    }
    assert pages[total_pages - 1]["pagination"]["has_next"] is False
    # Every page, and a page past the end, carries the totals of the whole report.
    assert all(page["metadata"] == whole["metadata"] for page in pages)
    assert pages[-1]["data"] == [] and pages[-1]["pagination"]["total_items"] == len(everything)
    default = query(client, "report", **window).json()
    assert default["pagination"]["page_size"] == 100


@pytest.mark.parametrize("prefix", PREFIXES)
def test_the_report_answers_under_every_prefix(client_for, alice, status_fleet, prefix):
    window = {"start_time": TEN, "end_time": TEN + timedelta(hours=1)}
    response = query(client_for(alice), "report", prefix=prefix, **window)
    assert response.status_code == 200, response.content
    assert response.json() == report(client_for(alice), **window, page_size=100)
    assert response.json()["aggregation"] == "5m"  # the default


# ---------------------------------------------------------------------------------------------
# 3. Bucket boundaries: floor of UTC time


BOUNDARY_TIMES = [
    datetime(2026, 3, 9, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 3, 10, 5, 59, 59, tzinfo=UTC),
    datetime(2026, 3, 10, 6, 0, 0, tzinfo=UTC),
    datetime(2026, 3, 10, 6, 4, 59, 999999, tzinfo=UTC),
    datetime(2026, 3, 10, 6, 5, 0, tzinfo=UTC),
    datetime(2026, 3, 10, 6, 14, 59, tzinfo=UTC),
    datetime(2026, 3, 10, 6, 15, 0, tzinfo=UTC),
    datetime(2026, 3, 10, 11, 59, 59, tzinfo=UTC),
    datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC),
]


def _at(day, hour, minute=0):
    return iso(datetime(2026, 3, day, hour, minute, tzinfo=UTC))


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        (
            "5m",
            [
                *[(_at(9, 23, 55), 1), (_at(10, 5, 55), 1), (_at(10, 6, 0), 2), (_at(10, 6, 5), 1)],
                *[(_at(10, 6, 10), 1), (_at(10, 6, 15), 1), (_at(10, 11, 55), 1), (_at(10, 12, 0), 1)],
            ],
        ),
        (
            "15m",
            [
                *[(_at(9, 23, 45), 1), (_at(10, 5, 45), 1), (_at(10, 6, 0), 4), (_at(10, 6, 15), 1)],
                *[(_at(10, 11, 45), 1), (_at(10, 12, 0), 1)],
            ],
        ),
        ("1h", [(_at(9, 23), 1), (_at(10, 5), 1), (_at(10, 6), 5), (_at(10, 11), 1), (_at(10, 12), 1)]),
        ("6h", [(_at(9, 18), 1), (_at(10, 0), 1), (_at(10, 6), 6), (_at(10, 12), 1)]),
        ("1d", [(_at(9, 0), 1), (_at(10, 0), 8)]),
    ],
)
def test_buckets_start_at_the_floor_of_utc_time(client_for, alice, section_a, aggregation, expected):
    probe, endpoint = Probe(section_a, "clock"), EndpointFactory(section=section_a)
    # Sent with an offset: the buckets still follow UTC.
    items = [probe.tcp(endpoint, moment, 1.0) for moment in BOUNDARY_TIMES]
    items[2]["timestamp"] = "2026-03-10T08:00:00+02:00"
    probe.send(items)
    answer = report(
        client_for(alice), start_time=datetime(2026, 3, 9, tzinfo=UTC), end_time=NOW, aggregation=aggregation
    )
    assert answer["aggregation"] == aggregation
    assert [(row["timestamp"], row["check_count"]) for row in answer["data"]] == expected


# ---------------------------------------------------------------------------------------------
# 4. A resend changes nothing


def test_a_resent_batch_changes_no_figure(client_for, alice, section_a):
    probe, endpoint = Probe(section_a, "resender"), EndpointFactory(section=section_a)
    rng = random.Random(4)
    items = [
        probe.ping(endpoint, TEN + timedelta(seconds=n * 13), [round(rng.uniform(1, 50), 3) for _ in range(3)])
        for n in range(40)
    ] + [probe.http(endpoint, TEN + timedelta(seconds=n * 17), rng.uniform(10, 90), ok=n % 3 > 0) for n in range(30)]
    probe.send(items)
    client = client_for(alice)
    window = {"start_time": TEN, "end_time": TEN + timedelta(hours=1)}
    before = {aggregation: report(client, **window, aggregation=aggregation) for aggregation in ("1m", "5m", "1h")}
    before_summary = query(client, "summary").json()
    resent = probe.send(items)
    assert (resent["accepted"], resent["duplicates_skipped"]) == (0, 70)
    probe.send([*items[10:20], items[0]])  # and a part of it, once more
    assert {aggregation: report(client, **window, aggregation=aggregation) for aggregation in before} == before
    assert query(client, "summary").json() == before_summary
    assert CheckResult.objects.count() == 70


# ---------------------------------------------------------------------------------------------
# 6. Past the minute rollups' retention, sub-hour aggregations are answered hourly


@pytest.fixture
def old_and_new(section_a):
    probe, endpoint = Probe(section_a, "archivist"), EndpointFactory(section=section_a)
    old = datetime(2026, 2, 22, 8, 0, tzinfo=UTC)  # 16 days before NOW
    probe.send(
        [
            probe.tcp(endpoint, old + timedelta(minutes=5, seconds=10), 1.0),
            probe.tcp(endpoint, old + timedelta(minutes=20), 3.0),
            probe.tcp(endpoint, old + timedelta(minutes=59, seconds=59), 5.0, connected=False),
            probe.tcp(endpoint, old + timedelta(minutes=70), 7.0),
            probe.tcp(endpoint, TEN + timedelta(minutes=1), 9.0),
            probe.tcp(endpoint, TEN + timedelta(minutes=7), 11.0),
        ]
    )
    return old


@pytest.mark.parametrize("aggregation", ["1m", "5m", "15m"])
def test_a_window_past_the_minute_retention_is_answered_hourly(client_for, alice, old_and_new, aggregation):
    answer = report(client_for(alice), start_time=NOW - timedelta(days=20), end_time=NOW, aggregation=aggregation)
    assert answer["aggregation"] == "1h"
    assert [(row["timestamp"], row["check_count"], row["successful_checks"]) for row in answer["data"]] == [
        (iso(old_and_new), 3, 2),
        (iso(old_and_new + timedelta(hours=1)), 1, 1),
        (iso(TEN), 2, 2),
    ]
    assert answer["data"][0]["min_response_time_ms"] == 1.0 and answer["data"][0]["max_response_time_ms"] == 5.0


def test_a_window_within_the_minute_retention_keeps_its_aggregation(client_for, alice, old_and_new):
    answer = report(client_for(alice), start_time=NOW - timedelta(days=13), end_time=NOW, aggregation="5m")
    assert answer["aggregation"] == "5m"
    assert [(row["timestamp"], row["check_count"]) for row in answer["data"]] == [
        (iso(TEN), 1),
        (iso(TEN + timedelta(minutes=5)), 1),
    ]
    coarse = report(client_for(alice), start_time=NOW - timedelta(days=20), end_time=NOW, aggregation="6h")
    assert coarse["aggregation"] == "6h"
    assert [row["check_count"] for row in coarse["data"]] == [4, 2]


def test_the_answer_comes_from_the_rollups(client_for, alice, old_and_new):
    """Rows pruned from the minute rollups are gone from sub-hour answers, still in hourly ones."""
    MinuteRollup.objects.filter(bucket__lt=NOW - timedelta(days=14)).delete()
    CheckResult.objects.all().delete()  # the raw rows are not read by the report
    client = client_for(alice)
    assert len(report(client, start_time=NOW - timedelta(days=20), end_time=NOW, aggregation="1h")["data"]) == 3
    assert len(report(client, start_time=NOW - timedelta(days=1), end_time=NOW, aggregation="1m")["data"]) == 2
    assert HourRollup.objects.count() == 3


# ---------------------------------------------------------------------------------------------
# 7. Every bad parameter is a 400 naming it

WINDOW = {"start_time": "2026-03-10T10:00:00Z", "end_time": "2026-03-10T11:00:00Z"}
MISSING = object()
NOT_A_UUID = "not-a-uuid"

WINDOW_CASES = [
    ("start-missing", {"start_time": MISSING}, "start_time"),
    ("end-missing", {"end_time": MISSING}, "end_time"),
    ("start-empty", {"start_time": ""}, "start_time"),
    ("start-not-rfc3339", {"start_time": "yesterday"}, "start_time"),
    ("start-date-only", {"start_time": "2026-03-10"}, "start_time"),
    ("start-basic-format", {"start_time": "20260310T100000Z"}, "start_time"),
    ("start-epoch", {"start_time": "1773136800"}, "start_time"),
    ("end-bad-month", {"end_time": "2026-13-10T11:00:00Z"}, "end_time"),
    ("end-bad-offset", {"end_time": "2026-03-10T11:00:00+25:00"}, "end_time"),
    ("start-no-time-zone", {"start_time": "2026-03-10T10:00:00"}, "start_time"),
    ("end-no-time-zone", {"end_time": "2026-03-10T11:00:00.5"}, "end_time"),
    ("start-plus-decoded-as-space", {"start_time": "2026-03-10T10:00:00 02:00"}, "start_time"),
    ("end-before-start", {"end_time": "2026-03-10T09:00:00Z"}, "end_time"),
    ("end-equals-start", {"end_time": "2026-03-10T10:00:00Z"}, "end_time"),
    ("span-over-400-days", {"start_time": "2025-02-01T00:00:00Z", "end_time": "2026-03-10T00:00:00Z"}, "end_time"),
    ("agent-not-uuid", {"agent_id": NOT_A_UUID}, "agent_id"),
    ("agent-second-not-uuid", {"agent_id": [str(uuid.uuid4()), NOT_A_UUID]}, "agent_id"),
    ("endpoint-not-uuid", {"endpoint_id": NOT_A_UUID}, "endpoint_id"),
    ("metric-type-bad", {"metric_type": "icmp"}, "metric_type"),
    ("metric-type-second-bad", {"metric_type": ["ping", "http"]}, "metric_type"),
    ("format-bad", {"format": "xml"}, "format"),
    ("page-size-zero", {"page_size": 0}, "page_size"),
    ("page-size-1001", {"page_size": 1001}, "page_size"),
    ("page-size-not-a-number", {"page_size": "ten"}, "page_size"),
]
REPORT_CASES = [
    ("aggregation-bad", {"aggregation": "2m"}, "aggregation"),
    ("aggregation-empty", {"aggregation": ""}, "aggregation"),
    ("section-not-uuid", {"section_id": NOT_A_UUID}, "section_id"),
    ("status-bad", {"status": "up"}, "status"),
    ("status-second-bad", {"status": ["reachable", "down"]}, "status"),
    ("group-by-bad", {"group_by": "tenant"}, "group_by"),
    ("page-zero", {"page": 0}, "page"),
    ("page-negative", {"page": -1}, "page"),
    ("page-not-a-number", {"page": "two"}, "page"),
    ("target-too-long", {"target": "x" * 2049}, "target"),
]


def cursor_of(value) -> str:
    """A cursor made by hand, in the API's encoding (base64url of JSON, unpadded)."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


SOME_ID = "0190a000-0000-7000-8000-000000000000"
METRICS_CASES = [
    ("cursor-garbage", {"cursor": "garbage"}, "cursor"),
    ("cursor-empty", {"cursor": ""}, "cursor"),
    ("cursor-not-base64-json", {"cursor": "bm90IGpzb24"}, "cursor"),  # b"not json"
    ("cursor-wrong-shape", {"cursor": cursor_of({"a": 1})}, "cursor"),
    ("cursor-three-parts", {"cursor": cursor_of(["2026-03-10T10:00:00+00:00", SOME_ID, 1])}, "cursor"),
    ("cursor-id-not-a-string", {"cursor": cursor_of(["2026-03-10T10:00:00+00:00", 5])}, "cursor"),
    ("cursor-id-not-a-uuid", {"cursor": cursor_of(["2026-03-10T10:00:00+00:00", "x"])}, "cursor"),
    ("cursor-time-not-a-time", {"cursor": cursor_of(["noon", SOME_ID])}, "cursor"),
    ("cursor-time-naive", {"cursor": cursor_of(["2026-03-10T10:00:00", SOME_ID])}, "cursor"),
    ("cursor-too-long", {"cursor": "A" * 501}, "cursor"),
    ("success-not-boolean", {"success": "maybe"}, "success"),
]
SUMMARY_CASES = [
    ("time-range-bad", {"time_range": "2d"}, "time_range"),
    ("time-range-empty", {"time_range": ""}, "time_range"),
    ("section-not-uuid", {"section_id": NOT_A_UUID}, "section_id"),
]
BAD_INPUTS = (
    [pytest.param("report", WINDOW, change, field, id=f"report-{name}") for name, change, field in WINDOW_CASES]
    + [pytest.param("report", WINDOW, change, field, id=f"report-{name}") for name, change, field in REPORT_CASES]
    + [pytest.param("metrics", WINDOW, change, field, id=f"metrics-{name}") for name, change, field in WINDOW_CASES]
    + [pytest.param("metrics", WINDOW, change, field, id=f"metrics-{name}") for name, change, field in METRICS_CASES]
    + [pytest.param("summary", {}, change, field, id=f"summary-{name}") for name, change, field in SUMMARY_CASES]
)


@pytest.mark.parametrize(("route", "base", "change", "field"), BAD_INPUTS)
def test_a_bad_parameter_is_a_400_naming_it(client_for, vera, assert_error, route, base, change, field):
    params = {**base, **change}
    params = {key: value for key, value in params.items() if value is not MISSING}
    response = client_for(vera).get(f"/api/v1/result/{route}", params)
    assert_error(response, 400, "validation_error", field)


def test_the_cases_cover_every_parameter():
    """Each query parameter of each endpoint has at least one bad value in the table."""
    from results.api.queries import MetricsQuerySerializer, ReportQuerySerializer, SummaryQuerySerializer

    covered = defaultdict(set)
    for case in BAD_INPUTS:
        covered[case.values[0]].add(case.values[3])
    assert covered["report"] >= set(ReportQuerySerializer().fields)
    assert covered["metrics"] >= set(MetricsQuerySerializer().fields)
    assert covered["summary"] >= set(SummaryQuerySerializer().fields)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-10T10:00:00Z", "2026-03-10T10:00:00Z"),
        ("2026-03-10t10:00:00z", "2026-03-10T10:00:00Z"),
        ("2026-03-10 10:00:00Z", "2026-03-10T10:00:00Z"),
        ("2026-03-10T12:00:00+02:00", "2026-03-10T10:00:00Z"),
        ("2026-03-10T05:30:00-04:30", "2026-03-10T10:00:00Z"),
        ("2026-03-10T10:00:00.123456789Z", "2026-03-10T10:00:00.123456Z"),
    ],
)
def test_rfc3339_spellings_are_accepted(client_for, vera, value, expected):
    answer = report(client_for(vera), start_time=value, end_time="2026-03-10T11:00:00Z")
    assert answer["time_range"]["start"] == expected


# ---------------------------------------------------------------------------------------------
# 8. Tenancy


@pytest.fixture
def two_tenants(section_a, section_b):
    mine, theirs = Probe(section_a, "a-probe"), Probe(section_b, "b-probe")
    a_endpoint, b_endpoint = EndpointFactory(section=section_a), EndpointFactory(section=section_b)
    mine.send([mine.tcp(a_endpoint, TEN + timedelta(minutes=n), 1.0) for n in range(3)])
    theirs.send([theirs.ping(b_endpoint, TEN + timedelta(minutes=n), [2.0]) for n in range(2)])
    return mine, a_endpoint, theirs, b_endpoint


def test_a_member_of_another_tenant_sees_nothing_of_a(client_for, bob, section_a, two_tenants):
    mine, a_endpoint, theirs, b_endpoint = two_tenants
    client = client_for(bob)
    window = {"start_time": TEN, "end_time": TEN + timedelta(hours=1), "aggregation": "1m"}
    rows = report(client, **window)["data"]
    assert {(row["agent_id"], row["endpoint_id"]) for row in rows} == {(str(theirs.pk), str(b_endpoint.pk))}
    metrics = query(client, "metrics", **window).json()["metrics"]
    assert len(metrics) == 2 and {item["agent_id"] for item in metrics} == {str(theirs.pk)}
    # A's ids, passed explicitly, match nothing.
    for params in ({"agent_id": mine.pk}, {"endpoint_id": a_endpoint.pk}, {"section_id": section_a.pk}):
        answer = report(client, **window, **params)
        assert answer["data"] == [] and answer["metadata"]["total_checks"] == 0, params
        assert answer["pagination"]["total_items"] == 0
    assert query(client, "metrics", **window, agent_id=mine.pk).json()["metrics"] == []
    assert query(client, "metrics", **window, endpoint_id=a_endpoint.pk).json()["metrics"] == []
    summary = query(client, "summary").json()
    assert (summary["total_agents"], summary["total_targets"], summary["total_checks"]) == (1, 1, 2)
    assert [row["agent_id"] for row in summary["by_agent"]] == [str(theirs.pk)]
    empty = query(client, "summary", section_id=section_a.pk).json()
    assert (empty["total_agents"], empty["total_targets"], empty["total_checks"], empty["by_agent"]) == (0, 0, 0, [])


def test_a_viewer_reads_her_tenant(client_for, vera, two_tenants):
    mine, a_endpoint, _theirs, _b_endpoint = two_tenants
    client = client_for(vera)
    window = {"start_time": TEN, "end_time": TEN + timedelta(hours=1), "aggregation": "1m"}
    rows = report(client, **window)["data"]
    assert [(row["agent_id"], row["endpoint_id"], row["check_count"]) for row in rows] == [
        (str(mine.pk), str(a_endpoint.pk), 1)
    ] * 3
    assert len(query(client, "metrics", **window).json()["metrics"]) == 3
    assert query(client, "summary").json()["total_checks"] == 3


def test_a_superuser_reads_every_tenant(client_for, superuser, two_tenants):
    window = {"start_time": TEN, "end_time": TEN + timedelta(hours=1), "aggregation": "1m"}
    assert len(report(client_for(superuser), **window)["data"]) == 5


@pytest.mark.parametrize("route", ["report", "metrics", "summary"])
@pytest.mark.parametrize("prefix", PREFIXES)
def test_no_credentials_is_401(assert_error, two_tenants, route, prefix):
    response = query(APIClient(), route, prefix=prefix, **WINDOW)
    assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize("route", ["report", "metrics", "summary"])
def test_an_agent_key_is_not_a_user(assert_error, two_tenants, route):
    mine = two_tenants[0]
    response = APIClient().get(f"/api/v1/result/{route}", WINDOW, **key_header(mine.key))
    assert_error(response, 401, "unauthorized")


# ---------------------------------------------------------------------------------------------
# 9. CSV


def _cells(value) -> str:
    return "" if value is None else str(value)


def test_report_csv_has_the_json_rows_and_columns(client_for, alice, status_fleet):
    client = client_for(alice)
    window = {"start_time": TEN, "end_time": TEN + timedelta(hours=1), "aggregation": "1m"}
    rows = report(client, **window)["data"]
    response = query(client, "report", **window, format="csv", page_size=2, page=2)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response.streaming
    lines = list(csv.reader(io.StringIO(body_of(response))))
    assert lines[0] == ROW_COLUMNS
    assert lines[1:] == [[_cells(row[column]) for column in ROW_COLUMNS] for row in rows]
    assert len(lines) == 1 + 9  # every row, no pagination


def test_report_csv_with_filters_and_no_rows(client_for, alice, status_fleet):
    client = client_for(alice)
    window = {"start_time": TEN, "end_time": TEN + timedelta(hours=1), "aggregation": "1m"}
    lines = list(csv.reader(io.StringIO(body_of(query(client, "report", **window, format="csv", status="degraded")))))
    assert len(lines) == 3 and {line[ROW_COLUMNS.index("status")] for line in lines[1:]} == {"degraded"}
    empty = query(client, "report", start_time=NOW - timedelta(minutes=5), end_time=NOW, format="csv")
    assert body_of(empty).splitlines() == [",".join(ROW_COLUMNS)]


METRIC_COLUMNS = ["id", "timestamp", "received_at", "agent_id", "endpoint_id", "type", "target", "status"]
METRIC_COLUMNS += ["response_time_ms", "packet_loss_percent", "status_code", "error_message"]


def test_metrics_csv_has_every_raw_row(client_for, alice, section_a):
    probe = Probe(section_a, "csv")
    endpoint = EndpointFactory(section=section_a, port=53)
    items = [result_item(probe.pk, endpoint.pk, check_type, timestamp=rfc3339(TEN)) for check_type in SAMPLES]
    items += [probe.tcp(endpoint, TEN + timedelta(seconds=n), float(n)) for n in range(120)]
    probe.send(items)
    client = client_for(alice)
    window = {"start_time": TEN, "end_time": TEN + timedelta(hours=1)}
    pages, cursor = [], None
    while True:
        answer = query(client, "metrics", **window, page_size=50, **({"cursor": cursor} if cursor else {})).json()
        pages += answer["metrics"]
        cursor = answer["pagination"]["next_cursor"]
        if not cursor:
            break
    response = query(client, "metrics", **window, format="csv", page_size=5)
    assert response["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(body_of(response))))
    assert lines[0] == METRIC_COLUMNS
    flat = [{**{k: item[k] for k in METRIC_COLUMNS[:5]}, **item["metric"]} for item in pages]
    assert lines[1:] == [[_cells(item[column]) for column in METRIC_COLUMNS] for item in flat]
    assert len(lines) == 1 + 126


# ---------------------------------------------------------------------------------------------
# 10. /result/metrics: keyset pages, filters, the result as sent


@pytest.fixture
def raw_fleet(section_a):
    """250 results of two agents on two endpoints, in runs of five sharing one timestamp."""
    rng = random.Random(250)
    probes = [Probe(section_a, "raw-1"), Probe(section_a, "raw-2")]
    endpoints = [EndpointFactory(section=section_a), EndpointFactory(section=section_a, port=80)]
    sent = []
    for n in range(250):
        probe, endpoint = rng.choice(probes), rng.choice(endpoints)
        moment = TEN + timedelta(seconds=n // 5 * 7, microseconds=n // 5 * 1001)
        kind = rng.choice(["ping", "tcp", "http"])
        if kind == "ping":
            item = probe.ping(endpoint, moment, [1.5] * rng.randint(0, 3), failures=1)
        elif kind == "tcp":
            item = probe.tcp(endpoint, moment, 2.0, connected=rng.random() < 0.7)
        else:
            item = probe.http(endpoint, moment, 30.0, ok=rng.random() < 0.5, status_code=rng.choice([200, 500]))
        sent.append((probe, endpoint, item))
    for probe in probes:
        probe.send([item for owner, _endpoint, item in sent if owner is probe])
    return probes, endpoints, sent


def _all_pages(client, page_size=7, **params) -> tuple[list[dict], int]:
    items, cursor, pages = [], None, 0
    while True:
        extra = {"cursor": cursor} if cursor else {}
        response = query(client, "metrics", page_size=page_size, **params, **extra)
        assert response.status_code == 200, response.content
        answer = response.json()
        pages += 1
        assert len(answer["metrics"]) <= page_size
        assert answer["pagination"]["page_size"] == page_size
        assert answer["pagination"]["has_next"] == (answer["pagination"]["next_cursor"] is not None)
        items += answer["metrics"]
        cursor = answer["pagination"]["next_cursor"]
        if cursor is None:
            return items, pages
        assert len(answer["metrics"]) == page_size


def test_cursor_pages_visit_every_row_once_in_order(client_for, alice, raw_fleet):
    _probes, _endpoints, sent = raw_fleet
    window = {"start_time": TEN, "end_time": TEN + timedelta(hours=1)}
    items, pages = _all_pages(client_for(alice), **window)
    assert pages == math.ceil(250 / 7)
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)) == 250
    assert set(ids) == {item["id"] for _probe, _endpoint, item in sent}
    order = [(item["timestamp"], uuid.UUID(item["id"])) for item in items]
    assert order == sorted(order)
    # Runs of equal timestamps are split across pages (7 does not divide 5) and still none is lost.
    assert len({item["timestamp"] for item in items}) == 50
    default = query(client_for(alice), "metrics", **window).json()
    assert len(default["metrics"]) == 100 and default["pagination"]["has_next"]


def test_an_exactly_full_last_page_has_no_next(client_for, alice, raw_fleet):
    window = {"start_time": TEN, "end_time": TEN + timedelta(hours=1)}
    items, pages = _all_pages(client_for(alice), page_size=50, **window)
    assert (len(items), pages) == (250, 5)
    answer = query(client_for(alice), "metrics", **window, page_size=1000).json()
    assert len(answer["metrics"]) == 250 and answer["pagination"]["next_cursor"] is None


def test_metrics_filters(client_for, alice, raw_fleet):
    probes, endpoints, _sent = raw_fleet
    client = client_for(alice)
    window = {"start_time": TEN, "end_time": TEN + timedelta(hours=1)}
    stored = {str(result.pk): result for result in CheckResult.objects.all()}

    def ids(**params):
        items, _pages = _all_pages(client, page_size=50, **{**window, **params})
        return {item["id"] for item in items}

    assert ids(agent_id=probes[0].pk) == {key for key, r in stored.items() if r.agent_id == probes[0].pk}
    assert ids(endpoint_id=endpoints[1].pk) == {key for key, r in stored.items() if r.endpoint_id == endpoints[1].pk}
    assert ids(metric_type="tcp_check") == {key for key, r in stored.items() if r.check_type == "tcpconnect"}
    assert ids(metric_type=["ping", "httpget"]) == {key for key, r in stored.items() if r.check_type != "tcpconnect"}
    assert ids(success="true") == {key for key, r in stored.items() if r.success}
    assert ids(success="false") == {key for key, r in stored.items() if not r.success}
    assert 0 < len(ids(success="false")) < 250
    both = ids(agent_id=probes[1].pk, endpoint_id=endpoints[0].pk, success="true")
    assert both == {
        key
        for key, r in stored.items()
        if r.agent_id == probes[1].pk and r.endpoint_id == endpoints[0].pk and r.success
    }
    late = TEN + timedelta(seconds=49 * 7)  # the last run of five
    assert len(ids(start_time=late)) == 5
    assert len(ids(end_time=late)) == 245


def test_a_metric_is_the_result_as_the_agent_sent_it(client_for, alice, section_a):
    probe, endpoint = Probe(section_a, "sender"), EndpointFactory(section=section_a, address="192.0.2.80", port=443)
    items = [result_item(probe.pk, endpoint.pk, check_type, timestamp=rfc3339(TEN)) for check_type in SAMPLES]
    older = {"resolved_ip": None, "connected": False, "connect_time_ms": None, "error": "lookup failed"}
    items.append(result_item(probe.pk, endpoint.pk, "tcpconnect", older, timestamp=rfc3339(TEN)))
    many = {"resolved_ip": "192.0.2.1", "successes": 0, "failures": 2, "success_latencies": []}
    many["error_details"] = {"errors": ["timed out", "host unreachable"]}
    items.append(result_item(probe.pk, endpoint.pk, "ping", many, timestamp=rfc3339(TEN)))
    probe.send(items)
    answer = query(client_for(alice), "metrics", start_time=TEN, end_time=TEN + timedelta(minutes=1)).json()
    metrics = {item["id"]: item for item in answer["metrics"]}
    assert len(metrics) == len(items)
    expected = {
        "ping": ("reachable", 15.25, 33.33, None, "request timed out"),
        "tcpconnect": ("reachable", 1.5, None, None, None),
        "udpconnect": ("unreachable", None, None, None, "no reply"),
        "httpget": ("unreachable", 120.25, None, 503, None),
        "traceroute": ("reachable", 8.0, None, None, None),
        "plugin": ("reachable", 4.75, None, None, None),
    }
    for item in items:
        got = metrics[item["id"]]
        check_type = item["check_type"]["type"]
        assert got["timestamp"] == iso(TEN) and got["received_at"] == iso(NOW)
        assert (got["agent_id"], got["endpoint_id"]) == (str(probe.pk), str(endpoint.pk))
        assert list(got["metric"]) == [
            "type",
            "target",
            "status",
            "response_time_ms",
            "packet_loss_percent",
            "status_code",
            "error_message",
            "metadata",
        ]
        assert (got["metric"]["type"], got["metric"]["target"]) == (check_type, "192.0.2.80:443")
        assert got["metric"]["metadata"] == item["check_type"]["result"], check_type
        metric = got["metric"]
        figures = (
            metric["status"],
            metric["response_time_ms"],
            metric["packet_loss_percent"],
            metric["status_code"],
            metric["error_message"],
        )
        if item["check_type"]["result"] is older:
            assert figures == ("unreachable", None, None, None, "lookup failed")
        elif item["check_type"]["result"] is many:
            assert figures[:3] == ("unreachable", None, 100.0)
            assert "timed out" in figures[4] and "host unreachable" in figures[4]
        else:
            assert figures == expected[check_type], check_type


# ---------------------------------------------------------------------------------------------
# 11. /result/summary


@pytest.fixture
def small_fleet(tenant_a, section_a, frozen):
    """Section A: agents online (two), offline and never seen; targets reachable, degraded,
    unreachable, unknown (results only 2 hours ago), silent and disabled. Another section of A has
    one agent and one reachable target."""
    on1, on2, off = Probe(section_a, "on-1"), Probe(section_a, "on-2"), Probe(section_a, "off")
    never = Probe(section_a, "never")
    ok, mixed, down, stale = (
        EndpointFactory(section=section_a, address=f"{name}.example.net") for name in ("ok", "mixed", "down", "stale")
    )
    EndpointFactory(section=section_a, address="silent.example.net")
    EndpointFactory(section=section_a, address="disabled.example.net", enabled=False)
    recent = NOW - timedelta(minutes=5)
    on1.send(
        [
            on1.ping(ok, recent, [5.0, 6.0]),
            on1.ping(ok, recent + timedelta(seconds=10), [5.0, 6.0]),
            on1.tcp(mixed, recent, 4.0),
            on1.http(down, recent, 100.0, ok=False, status_code=503),
            on1.tcp(down, NOW - timedelta(minutes=35), 3.5),  # fine then, but older than 15 minutes
        ]
    )
    on2.send(
        [
            on2.tcp(ok, recent, 3.0),
            on2.tcp(mixed, recent, None, connected=False),
            on2.udp(down, recent, None, ok=False),
        ]
    )
    with time_machine.travel(NOW - timedelta(hours=2), tick=False):
        off.send([off.tcp(stale, NOW - timedelta(hours=2), 2.0), off.tcp(ok, NOW - timedelta(hours=2), None, False)])
    other = SectionFactory(tenant=tenant_a, name="Other")
    there = Probe(other, "there")
    there.send([there.tcp(EndpointFactory(section=other), recent, 1.0)])
    return {"on1": on1, "on2": on2, "off": off, "never": never, "there": there, "section": section_a, "other": other}


def test_summary_of_a_small_fleet(client_for, vera, small_fleet):
    answer = query(client_for(vera), "summary", section_id=small_fleet["section"].pk).json()
    by_agent = answer.pop("by_agent")
    assert answer == {
        "time_range": "24h",
        "total_agents": 4,
        "active_agents": 2,
        "inactive_agents": 2,
        "total_targets": 5,
        "reachable_targets": 1,
        "unreachable_targets": 1,
        "degraded_targets": 1,
        "unknown_targets": 2,
        "total_checks": 10,
        "successful_checks": 6,
        "failed_checks": 4,
        # 5, 6, 5, 6, 4, 100, 3.5 (on-1); 3 (on-2); 2 (off)
        "average_response_time_ms": round(134.5 / 9, 3),
        "active_alerts": 0,
    }
    rows = {row["hostname"]: row for row in by_agent}
    assert {
        name: (row["status"], row["checks_performed"], row["success_rate_percent"]) for name, row in rows.items()
    } == {
        "on-1": ("online", 5, 80.0),
        "on-2": ("online", 3, 33.33),
        "off": ("offline", 2, 50.0),
        "never": ("never_seen", 0, None),
    }
    assert rows["on-1"]["agent_id"] == str(small_fleet["on1"].pk)


def test_summary_time_ranges_and_sections(client_for, vera, small_fleet):
    client = client_for(vera)
    hour = query(client, "summary", time_range="1h", section_id=small_fleet["section"].pk).json()
    assert (hour["time_range"], hour["total_checks"], hour["successful_checks"]) == ("1h", 8, 5)
    assert hour["average_response_time_ms"] == round(132.5 / 8, 3)
    assert {row["hostname"]: row["checks_performed"] for row in hour["by_agent"]}["off"] == 0
    # The targets' state is the last 15 minutes whatever the range.
    assert (hour["reachable_targets"], hour["unknown_targets"]) == (1, 2)
    for time_range in ("7d", "30d"):
        assert query(client, "summary", time_range=time_range).json()["total_checks"] == 11
    whole = query(client, "summary").json()
    assert (whole["total_agents"], whole["active_agents"], whole["total_targets"]) == (5, 3, 6)
    assert (whole["reachable_targets"], whole["total_checks"]) == (2, 11)
    there = query(client, "summary", section_id=small_fleet["other"].pk).json()
    assert (there["total_agents"], there["total_targets"], there["reachable_targets"]) == (1, 1, 1)
    assert [row["hostname"] for row in there["by_agent"]] == ["there"]


def test_summary_when_everything_goes_quiet(client_for, vera, small_fleet, frozen):
    frozen.move_to(NOW + timedelta(hours=1))
    answer = query(client_for(vera), "summary", section_id=small_fleet["section"].pk).json()
    assert (answer["active_agents"], answer["inactive_agents"]) == (0, 4)
    assert (answer["reachable_targets"], answer["degraded_targets"], answer["unknown_targets"]) == (0, 0, 5)
    assert answer["total_checks"] == 10


# ---------------------------------------------------------------------------------------------
# Found in review: a non-ASCII "digit" port, an out-of-range cursor, another tenant's address


def test_a_target_with_a_non_ascii_digit_port_is_no_port(client_for, alice):
    body = report(client_for(alice), start_time=NOW - timedelta(hours=1), end_time=NOW, target="example.com:\u00b2")
    assert body["data"] == []


def test_a_cursor_at_the_edge_of_time_is_refused(client_for, alice, assert_error):
    import base64
    import json as jsonlib

    raw = jsonlib.dumps(["0001-01-01T00:00:00+01:00", str(uuid.uuid4())]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    response = query(client_for(alice), "metrics", start_time=NOW - timedelta(hours=1), end_time=NOW, cursor=cursor)
    assert_error(response, 400, "validation_error", field="cursor")


def test_a_result_naming_another_tenants_endpoint_shows_no_address(client_for, alice, section_a, section_b):
    from endpoints.models import Endpoint
    from results.models import CheckResult

    probe = Probe(section_a, "mover")
    mine = Endpoint.objects.create(section=section_a, address="mine.example")
    probe.send([probe.ping(mine, NOW - timedelta(minutes=5), [10.0])])
    theirs = Endpoint.objects.create(section=section_b, address="secret.bravo.example")
    CheckResult.objects.update(endpoint_id=theirs.pk)  # e.g. an agent that moved between tenants
    body = query(client_for(alice), "metrics", start_time=NOW - timedelta(hours=1), end_time=NOW).json()
    assert [item["metric"]["target"] for item in body["metrics"]] == [None]
    assert "secret.bravo" not in str(body)


def test_a_result_with_an_integer_past_64_bits_reads_back(client_for, alice, section_a):
    """A plugin's details may hold any JSON number: stored, and answered as sent (orjson refuses
    such an integer; the answer falls back to DRF's renderer)."""
    probe = Probe(section_a, "big-numbers")
    endpoint = EndpointFactory(section=section_a)
    item = probe.tcp(endpoint, NOW - timedelta(minutes=5), 12.0)
    item["check_type"]["result"]["counter"] = 10**30
    probe.send([item])

    response = query(client_for(alice), "metrics", start_time=NOW - timedelta(hours=1), end_time=NOW)

    assert response.status_code == 200
    [metric] = response.json()["metrics"]
    assert metric["metric"]["metadata"]["counter"] == 10**30


def test_a_wide_bucket_holds_only_the_windows_samples(client_for, alice, section_a):
    """A 6h bucket starting before start_time: its counts and its percentiles both come from the
    rows inside the window only."""
    probe = Probe(section_a, "edges")
    endpoint = EndpointFactory(section=section_a)
    day = (NOW - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    at = [day + timedelta(hours=7), day + timedelta(hours=11), day + timedelta(hours=11, minutes=30)]
    probe.send([probe.tcp(endpoint, at[0], 15.0), probe.tcp(endpoint, at[1], 10.0), probe.tcp(endpoint, at[2], 20.0)])

    window = {"start_time": day + timedelta(hours=10), "end_time": day + timedelta(hours=12), "aggregation": "6h"}
    for group_by in ("agent", "endpoint"):
        [row] = report(client_for(alice), **window, group_by=group_by)["data"]
        assert row["timestamp"] == iso(day + timedelta(hours=6))
        assert row["check_count"] == 2
        assert row["p50_response_time_ms"] == pytest.approx(10.0, rel=0.02), group_by  # not 15: outside
