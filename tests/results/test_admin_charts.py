"""The admin's overview page and its charts on the endpoint and agent pages.

A small fleet posts through the agent API with the clock frozen at ``NOW``: in tenant A three
agents (online, offline, never seen) and four endpoints (reachable, degraded, unreachable, no
results), in tenant B ("bravo") an agent whose endpoint is down. Every figure on the pages is
checked against what was posted; nothing of tenant B may show for tenant A's people."""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from agents.models import Agent
from endpoints.models import Endpoint
from tenants.models import Role, Section, Tenant
from tests.admin import LEAK_MARKER, admin_url, html, staff_user
from tests.results import agent_with_key, key_header, result_item

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 12, 34, 56, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
LATE = NOW.replace(second=10) - 30 * MINUTE  # 12:04:10, probe-one's first ping of the half hour
OVERVIEW = "/admin/results/checkresult/overview/"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Probe:
    """An agent with its own key, posting results and heartbeats through the agent API."""

    def __init__(self, section, name: str):
        self.key = f"smk_test-{name}-{uuid.uuid4().hex}"
        self.agent = agent_with_key(section, key=self.key, name=name)
        self.pk = self.agent.pk

    def post(self, route: str, body: dict, status: int) -> dict:
        response = APIClient().post(f"/api/v1/agent/{self.pk}/{route}", body, format="json", **key_header(self.key))
        assert response.status_code == status, response.content
        return response.json() if response.content else {}

    def send(self, items: list[dict]) -> None:
        self.post("results", {"results": items}, 202)

    def ping(self, endpoint_id, moment, latencies, failures=0) -> dict:
        result = {"resolved_ip": "192.0.2.1", "successes": len(latencies), "failures": failures}
        result |= {"success_latencies": latencies, "error_details": None}
        return result_item(self.pk, endpoint_id, "ping", result, timestamp=rfc3339(moment))

    def tcp(self, endpoint, moment, ms) -> dict:
        result = {"resolved_ip": "192.0.2.2", "connected": ms is not None, "connect_time_ms": ms, "error_details": None}
        return result_item(self.pk, endpoint.pk, "tcpconnect", result, timestamp=rfc3339(moment))

    def http(self, endpoint, moment, ok) -> dict:
        result = {"status_code": 200 if ok else 503, "success": ok, "response_time_ms": 40.0 if ok else None}
        result |= {"response_size_bytes": 100, "error_details": None}
        return result_item(self.pk, endpoint.pk, "httpget", result, timestamp=rfc3339(moment))

    def heartbeat(self, moment, cpu: float, used: float, total: float = 4096.0) -> None:
        body = {"timestamp": rfc3339(moment), "status": "healthy", "cpu_usage_percent": cpu}
        self.post("heartbeat", body | {"memory_usage_mb": used, "memory_total_mb": total}, 204)


class Fleet:
    """Tenant A: probe-one pings alpha every minute of the last half hour ([10, 12, 14] ms) and once
    three days ago, connects to beta for ten minutes (every other one fails) and fails HTTP on gamma
    for five; probe-two pings alpha for ten minutes 12:04-12:13 ([20, 20, 20] ms; one ping loses a
    packet, one loses all three), then goes offline; probe-three was never seen; delta has no
    results. Tenant B: bravo-probe's pings of bravo.example.net all fail, and it reports an unknown
    endpoint id, as does probe-one."""

    def __init__(self):
        self.tenant_a = Tenant.objects.create(name="Acme Tenant")
        self.section_a = Section.objects.create(tenant=self.tenant_a, name="acme-section", monitor_all_endpoints=True)
        self.tenant_b = Tenant.objects.create(name="Bravo Tenant")
        self.section_b = Section.objects.create(tenant=self.tenant_b, name="bravo-section", monitor_all_endpoints=True)
        make = Endpoint.objects.create
        self.alpha = make(section=self.section_a, address="alpha.example.net")
        self.beta = make(section=self.section_a, address="beta.example.net", port=443)
        self.gamma = make(section=self.section_a, address="https://gamma.example.net/health")
        self.delta = make(section=self.section_a, address="delta.example.net")
        self.bravo = make(section=self.section_b, address="bravo.example.net")
        self.one, self.two = Probe(self.section_a, "probe-one"), Probe(self.section_a, "probe-two")
        self.three = Probe(self.section_a, "probe-three")
        self.bravo_probe = Probe(self.section_b, "bravo-probe")
        self.unknown_a, self.unknown_b = uuid.uuid4(), uuid.uuid4()
        self._post()

    def _post(self) -> None:
        one, two = self.one, self.two
        items = [one.ping(self.alpha.pk, LATE + n * MINUTE, [10.0, 12.0, 14.0]) for n in range(30)]
        items.append(one.ping(self.alpha.pk, NOW - timedelta(days=3), [30.0, 30.0, 30.0]))
        items += [one.tcp(self.beta, LATE + (20 + n) * MINUTE, 5.0 if n % 2 else None) for n in range(10)]
        items += [one.http(self.gamma, LATE + (25 + n) * MINUTE, ok=False) for n in range(5)]
        one.send(items)
        one.post("results", {"results": [one.ping(self.unknown_a, NOW, [1.0])]}, 202)
        pings = [two.ping(self.alpha.pk, LATE + n * MINUTE, [20.0, 20.0, 20.0]) for n in range(8)]
        pings += [two.ping(self.alpha.pk, LATE + 8 * MINUTE, [20.0, 20.0], 1)]
        pings += [two.ping(self.alpha.pk, LATE + 9 * MINUTE, [], 3)]
        two.send(pings)
        Agent.objects.filter(pk=two.pk).update(last_seen_at=NOW - timedelta(hours=3))
        bravo = self.bravo_probe
        bravo.send([bravo.ping(self.bravo.pk, NOW - n * MINUTE, [], 3) for n in range(5)])
        bravo.post("results", {"results": [bravo.ping(self.unknown_b, NOW, [1.0])]}, 202)
        for n in range(12):  # every five minutes over the last hour
            one.heartbeat(NOW - timedelta(minutes=5 * n), cpu=10.0 + n, used=1000.0 + 10 * n)


@pytest.fixture
def fleet():
    return Fleet()


@pytest.fixture
def login(client):
    def as_user(user):
        client.force_login(user)
        return client

    return as_user


@pytest.fixture
def viewer(fleet):
    return staff_user("vera", fleet.tenant_a, Role.VIEWER)


@pytest.fixture
def bravo_operator(fleet):
    return staff_user("bravo-op", fleet.tenant_b, Role.OPERATOR)


def points_of(page: str, agent_id) -> int:
    """The ``<circle class="point">`` elements in the agent's series group(s) of the page."""
    groups = re.findall(rf'<g class="series" data-series="{agent_id}"[^>]*>(.*?)</g>', page, re.S)
    return sum(group.count('<circle class="point"') for group in groups)


def close(value: float, exact: float) -> bool:
    return math.isclose(value, exact, rel_tol=0.02)


# ---------------------------------------------------------------------------------------------
# The overview


def test_the_index_links_the_overview_first(login, viewer):
    page = html(login(viewer).get("/admin/"))

    assert page.index('id="results-overview-link"') < page.index('id="content-main"')
    assert f'href="{OVERVIEW}"' in page


def test_the_overview_sends_a_stranger_to_the_login_page(client, fleet):
    response = client.get(OVERVIEW)

    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


def test_a_staff_user_without_a_tenant_gets_no_overview(login, fleet):
    client = login(staff_user("nobody"))

    assert 'id="results-overview-link"' not in html(client.get("/admin/"))
    assert client.get(OVERVIEW).status_code == 403


def test_the_overview_counts_the_agents_and_endpoints_of_the_users_tenant(login, fleet, viewer):
    response = login(viewer).get(OVERVIEW)

    assert response.status_code == 200
    overview = response.context["overview"]
    assert overview["agents"] == {"online": 1, "offline": 1, "never_seen": 1, "revoked": 0}
    # Last 15 minutes: alpha only succeeded, beta half failed, gamma all failed, delta has nothing.
    assert overview["endpoints"] == {"reachable": 1, "degraded": 1, "unreachable": 1, "unknown": 1}
    page = html(response)
    assert re.search(r'<span class="value">1</span> never seen', page)
    assert re.search(r'<span class="value">1</span> unreachable', page)


def test_the_overview_lists_the_worst_endpoints_of_the_last_hour(login, fleet, viewer):
    worst = login(viewer).get(OVERVIEW).context["overview"]["worst"]

    assert [row["endpoint"] for row in worst] == [fleet.gamma, fleet.beta, fleet.alpha]
    assert [row["availability"] for row in worst] == [0.0, 50.0, 97.5]  # alpha: 39 of 40 pings
    assert [row["checks"] for row in worst] == [5, 10, 40]
    assert worst[2]["loss"] == round(4 / 120 * 100, 2)  # 120 packets, probe-two lost 1 + 3
    assert close(worst[2]["p95"], 20.0)


def test_the_overview_lists_recent_unknown_endpoint_ids(login, fleet, viewer):
    response = login(viewer).get(OVERVIEW)

    assert [u.endpoint_id for u in response.context["overview"]["unknown_endpoints"]] == [fleet.unknown_a]
    assert str(fleet.unknown_a) in html(response)


def test_the_overview_shows_nothing_of_another_tenant(login, fleet, viewer, bravo_operator):
    page = html(login(viewer).get(OVERVIEW))
    assert LEAK_MARKER not in page.lower()
    assert str(fleet.unknown_b) not in page

    bravo = login(bravo_operator).get(OVERVIEW).context["overview"]
    assert bravo["agents"] == {"online": 1, "offline": 0, "never_seen": 0, "revoked": 0}
    assert bravo["endpoints"] == {"reachable": 0, "degraded": 0, "unreachable": 1, "unknown": 0}
    assert [row["endpoint"] for row in bravo["worst"]] == [fleet.bravo]


# ---------------------------------------------------------------------------------------------
# The endpoint page


def endpoint_page(client, endpoint, **params):
    response = client.get(admin_url(Endpoint, "change", endpoint.pk), params)
    assert response.status_code == 200
    return response


@pytest.mark.parametrize(
    ("time_range", "aggregation", "one", "two"),
    [
        ("1h", "1m", 30, 9),  # a point per minute; probe-two's minute without samples has none
        ("24h", "5m", 7, 3),  # 12:04-12:33 in 5-minute buckets 12:00 ... 12:30; 12:04-12:13 in three
        ("7d", "1h", 2, 1),  # the 12:00 hour, and three days ago
        ("30d", "6h", 2, 1),  # the 12:00-18:00 quarter of the day, and three days ago
    ],
)
def test_the_endpoint_chart_draws_a_point_per_bucket_and_agent(login, fleet, viewer, time_range, aggregation, one, two):
    response = endpoint_page(login(viewer), fleet.alpha, range=time_range)

    charts = response.context["charts"]
    assert (charts["window"].key, charts["window"].aggregation, charts["check_type"]) == (
        time_range,
        aggregation,
        "ping",
    )
    page = html(response)
    assert points_of(page, fleet.one.pk) == one
    assert points_of(page, fleet.two.pk) == two
    assert f'data-series="{fleet.one.pk}" data-label="probe-one" data-points="{one}"' in page
    current = re.findall(r'<a href="([^"]*)" class="current" aria-current="page">([^<]*)</a>', page)
    assert ("?range=" + time_range, time_range) in current


def test_the_endpoint_chart_defaults_to_24_hours_and_marks_failures(login, fleet, viewer):
    page = html(endpoint_page(login(viewer), fleet.alpha, range="nonsense"))

    assert 'aria-current="page">24h</a>' in page
    two = re.search(rf'<g class="series" data-series="{fleet.two.pk}".*?</g>', page, re.S).group(0)
    assert two.count('class="status status-reachable"') == 2  # 12:00 and 12:05; 12:10 lost packets
    assert two.count('class="status status-degraded"') == 1
    assert 'class="outage"' not in two  # no 5-minute bucket without a success


def test_a_minute_without_a_success_is_shaded_and_has_no_point(login, fleet, viewer):
    page = html(endpoint_page(login(viewer), fleet.alpha, range="1h"))

    two = re.search(rf'<g class="series" data-series="{fleet.two.pk}".*?</g>', page, re.S).group(0)
    assert two.count('<rect class="outage"') == 1
    assert two.count('class="status status-degraded"') == 1
    assert two.count('class="status status-unreachable"') == 1
    assert two.count('class="status status-reachable"') == 8


def test_the_endpoint_table_gives_each_agents_figures(login, fleet, viewer):
    response = endpoint_page(login(viewer), fleet.alpha, range="1h")

    rows = {row["series"].label: row for row in response.context["charts"]["agents"]}
    one, two = rows["probe-one"]["figures"], rows["probe-two"]["figures"]
    assert (one["checks"], one["availability"], one["loss"]) == (30, 100.0, 0.0)
    assert close(one["p50"], 12.0) and close(one["p95"], 14.0) and close(one["p99"], 14.0)
    assert (two["checks"], two["availability"], two["loss"]) == (10, 90.0, round(4 / 30 * 100, 2))
    assert close(two["p50"], 20.0)
    assert rows["probe-one"]["last"].last_checked_at == LATE + 29 * MINUTE
    assert rows["probe-two"]["last"].last_success is False
    table = html(response).split('id="endpoint-agents"')[1].split("</table>")[0]
    assert "100.00 %" in table and "90.00 %" in table and "13.33 %" in table
    assert '<strong class="failed">failed</strong>' in table


def test_the_endpoint_page_offers_its_check_types(login, fleet, viewer):
    response = endpoint_page(login(viewer), fleet.beta, range="1h")

    charts = response.context["charts"]
    assert charts["check_type"] == "tcpconnect"
    page = html(response)
    assert points_of(page, fleet.one.pk) == 5  # the five connects that succeeded
    assert page.count('<rect class="outage"') == 5
    assert response.context["charts"]["agents"][0]["figures"]["availability"] == 50.0


def test_an_endpoint_without_results_says_so(login, fleet, viewer):
    page = html(endpoint_page(login(viewer), fleet.delta))

    assert "No results in this range." in page
    assert '<circle class="point"' not in page


def test_a_viewer_sees_the_chart_on_a_read_only_page(login, fleet, viewer):
    response = endpoint_page(login(viewer), fleet.alpha, range="1h")

    assert response.context["has_change_permission"] is False
    assert 'id="endpoint-chart"' in html(response)


@pytest.mark.parametrize("view", ["endpoint", "agent"])
def test_another_tenant_gets_no_page(login, fleet, bravo_operator, view):
    client = login(bravo_operator)
    url = (
        admin_url(Endpoint, "change", fleet.alpha.pk)
        if view == "endpoint"
        else admin_url(Agent, "change", fleet.one.pk)
    )

    response = client.get(url, {"range": "1h"})

    assert response.status_code in (302, 404)
    followed = html(client.get(response.url)) if response.status_code == 302 else html(response)
    assert "probe-one" not in followed and "alpha.example.net" not in followed


def test_names_are_escaped_in_the_chart_and_the_table(login, fleet, viewer):
    Agent.objects.filter(pk=fleet.two.pk).update(name='<img src=x onerror="alert(1)">')

    page = html(endpoint_page(login(viewer), fleet.alpha, range="1h"))

    assert "<img src=x" not in page
    assert 'data-label="&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"' in page
    assert '&lt;img src=x onerror=&quot;alert(1)&quot;&gt; <span class="quiet">(9 points)</span>' in page


def test_the_bravo_endpoint_chart_shows_only_bravo(login, fleet, bravo_operator):
    page = html(endpoint_page(login(bravo_operator), fleet.bravo, range="1h"))

    assert page.count('<rect class="outage"') == 5
    assert "probe-one" not in page


# ---------------------------------------------------------------------------------------------
# The agent page


def agent_page(client, probe, **params):
    response = client.get(admin_url(Agent, "change", probe.pk), params)
    assert response.status_code == 200
    return response


def test_the_agent_page_draws_a_chart_per_endpoint(login, fleet, viewer):
    response = agent_page(login(viewer), fleet.one, range="1h")

    multiples = {m["endpoint"].address: m for m in response.context["charts"]["multiples"]}
    assert list(multiples) == [fleet.alpha.address, fleet.beta.address, fleet.delta.address, fleet.gamma.address]
    assert {name: (m["check_type"], m["points"]) for name, m in multiples.items()} == {
        "alpha.example.net": ("ping", 30),
        "beta.example.net": ("tcpconnect", 5),
        "delta.example.net": (None, 0),
        "https://gamma.example.net/health": ("httpget", 0),
    }
    assert multiples["beta.example.net"]["figures"]["availability"] == 50.0
    page = html(response)
    charts = page.split('id="agent-charts"')[1].split("</fieldset>")[0]
    assert charts.count('<svg class="chart latency-chart"') == 3  # delta: "no results"
    assert charts.count('<circle class="point"') == 35
    assert charts.count('<rect class="outage"') == 10  # beta's five failed connects, gamma's five
    assert "no results in this range" in charts


def test_the_agent_page_keeps_what_it_showed(login, fleet, viewer):
    page = html(agent_page(login(viewer), fleet.one))

    for fieldset in ("agent-vitals", "agent-report", "agent-endpoints", "agent-unknown-endpoints"):
        assert f'id="{fieldset}"' in page
    assert str(fleet.unknown_a) in page


def test_the_agent_page_charts_cpu_and_memory(login, fleet, viewer):
    response = agent_page(login(viewer), fleet.one, range="1h")

    vitals = response.context["charts"]["vitals"]
    assert (vitals["heartbeats"], vitals["points"]) == (12, 12)
    page = html(response)
    cpu = page.split('id="agent-cpu"')[1].split("</figure>")[0]
    memory = page.split('id="agent-memory"')[1].split("</figure>")[0]
    assert cpu.count('<circle class="point"') == 12
    assert memory.count('<circle class="point"') == 12  # used; the total is a dashed line
    assert 'data-value="21.0"' in cpu  # the oldest heartbeat: 10 + 11
    assert 'class="line dashed"' in memory


@pytest.mark.parametrize(("time_range", "points"), [("1h", 30), ("24h", 7), ("7d", 2), ("30d", 2)])
def test_the_agent_page_follows_the_range(login, fleet, viewer, time_range, points):
    response = agent_page(login(viewer), fleet.one, range=time_range)

    alpha = next(m for m in response.context["charts"]["multiples"] if m["endpoint"] == fleet.alpha)
    assert alpha["points"] == points
    assert response.context["charts"]["window"].key == time_range


def test_an_agent_without_heartbeats_says_so(login, fleet, viewer):
    page = html(agent_page(login(viewer), fleet.three))

    assert "No heartbeats in this range." in page
    assert page.split('id="agent-charts"')[1].count('<circle class="point"') == 0
