"""The overview and the charts in a real browser (Debian's Chromium, 1,280 x 800): three agents post
a day of pings, connects and heartbeats to the real server over HTTP; a viewer of the tenant opens
the overview, an endpoint's page and an agent's page, the charts have drawn their points, a click
on an agent in the legend hides its series, and nothing sticks out of the window. Screenshots go
to artifacts/ (overview-1280.png, endpoint-chart-1280.png, agent-charts-1280.png)."""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from endpoints.models import Endpoint
from tenants.models import Role
from tests.admin import staff_user
from tests.browser import test_claim_in_browser as claim_test
from tests.browser.test_admin_at_1280 import HEIGHT, WIDTH, log_in
from tests.browser.test_claim_in_browser import CHROMIUM_ARGS, chromium_executable, keep_artifacts
from tests.factories import SectionFactory, TenantFactory, password_hash
from tests.results import agent_with_key, result_item

pytestmark = [pytest.mark.browser, pytest.mark.server]

live = claim_test.live  # the real server on the test database, as the claim test starts it

AGENTS = [("probe-fra1-edge-01", 11.0), ("probe-ams3-edge-07", 19.0), ("probe-waw2-edge-02", 34.0)]
STEP = timedelta(minutes=5)
DAY = 288  # the 24-hour chart's five-minute buckets
# One result per bucket but the first and the last: should a bucket boundary pass while the test
# runs, the window moves on by an empty bucket and the counts stay.
INDEXES = range(1, DAY - 1)
OUTAGE = range(200, 204)  # every agent: all five packets lost
LOSSY = range(272, 282)  # the first agent loses a packet or two
REFUSED = range(280, 283)  # every agent's connects fail


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def ping(agent_id, endpoint_id, moment, base: float, rng: random.Random, index: int) -> dict:
    """A ping of five packets around ``base`` ms: a daily swell, some jitter, spikes, a lossy
    stretch in the last hour (the first agent) and an outage of twenty minutes (every agent)."""
    swell = base * (1 + 0.25 * math.sin(index / DAY * 2 * math.pi))
    latencies = [round(max(rng.gauss(swell, base * 0.08), 0.3), 3) for _ in range(5)]
    if index % 97 == 0:
        latencies[-1] *= 4  # a spike: the band widens
    lost = 0
    if base == AGENTS[0][1] and index in LOSSY:
        lost = rng.choice([1, 1, 2])
    if index in OUTAGE:
        lost = 5
    result = {"resolved_ip": "192.0.2.44", "successes": 5 - lost, "failures": lost}
    result |= {"success_latencies": latencies[: 5 - lost], "error_details": None}
    return result_item(agent_id, endpoint_id, "ping", result, timestamp=rfc3339(moment))


def connect(agent_id, endpoint_id, moment, base: float, rng: random.Random, index: int) -> dict:
    ok = index not in REFUSED
    ms = round(max(rng.gauss(base * 0.6, base * 0.05), 0.2), 3) if ok else None
    result = {"resolved_ip": "192.0.2.45", "connected": ok, "connect_time_ms": ms, "error_details": None}
    return result_item(agent_id, endpoint_id, "tcpconnect", result, timestamp=rfc3339(moment))


def post(server, agent, key: str, route: str, body: dict, status: int) -> None:
    response = server.request("POST", f"/api/v1/agent/{agent.pk}/{route}", body, headers={"X-Agent-API-Key": key})
    assert response.status == status, response.body


@pytest.fixture
def day_of_results(live):
    """A tenant with three agents that post a day of results and heartbeats to the live server."""
    tenant = TenantFactory(name="Northwind Logistics")
    section = SectionFactory(tenant=tenant, name="eu-central-edge-probes", monitor_all_endpoints=True)
    web = Endpoint.objects.create(section=section, address="api.northwind-logistics.example.net", port=8443)
    core = Endpoint.objects.create(section=section, address="192.0.2.44", description="Core router")
    rng = random.Random(1280)
    now = datetime.now(UTC).replace(microsecond=0)
    first = datetime.fromtimestamp(now.timestamp() // 300 * 300, UTC) + STEP - timedelta(hours=24)  # the chart's
    agents = []
    for number, (name, base) in enumerate(AGENTS):
        key = f"smk_browser-{name}-{uuid.uuid4().hex}"
        agent = agent_with_key(section, key=key, name=name, hostname=f"{name}.northwind-logistics.example.net")
        moments = {index: first + STEP * index + timedelta(seconds=30 + 7 * number) for index in INDEXES}
        items = [ping(agent.pk, core.pk, moment, base, rng, index) for index, moment in moments.items()]
        items += [connect(agent.pk, web.pk, moment, base, rng, index) for index, moment in moments.items()]
        post(live, agent, key, "results", {"results": items[:500]}, 202)
        post(live, agent, key, "results", {"results": items[500:]}, 202)
        for index in INDEXES[::6]:  # a heartbeat every half hour
            cpu = round(8 + 6 * math.sin(index / 40) + rng.uniform(0, 4) + 10 * number, 2)
            used = round(380 + index * 0.4 + rng.uniform(-5, 5) + 120 * number, 1)
            heartbeat = {"timestamp": rfc3339(moments[index]), "status": "healthy", "cpu_usage_percent": cpu}
            heartbeat |= {"memory_usage_mb": used, "memory_total_mb": 2048}
            post(live, agent, key, "heartbeat", heartbeat, 204)
        agents.append((agent, key))
    unknown = result_item(agents[0][0].pk, uuid.uuid4(), "ping", timestamp=rfc3339(now))
    post(live, *agents[0], "results", {"results": [unknown]}, 202)  # remembered as an unknown endpoint id
    viewer = staff_user("northwind-viewer", tenant, Role.VIEWER, password=password_hash())
    return {"agents": [agent for agent, _key in agents], "core": core, "web": web, "viewer": viewer}
    viewer = staff_user("northwind-viewer", tenant, Role.VIEWER, password=password_hash())
    return {"agents": agents, "core": core, "web": web, "viewer": viewer}


MEASURE = """(selector) => ({
  points: document.querySelectorAll(selector + ' circle.point').length,
  pageWidth: document.documentElement.scrollWidth,
})"""


def test_the_overview_and_the_charts_draw_in_the_browser(live, day_of_results, tmp_path):
    executable = chromium_executable()
    from playwright.sync_api import sync_playwright

    agents, core = day_of_results["agents"], day_of_results["core"]
    endpoint_url = f"{live.url}/admin/endpoints/endpoint/{core.pk}/change/"
    agent_url = f"{live.url}/admin/agents/agent/{agents[0].pk}/change/"
    second = str(agents[1].pk)
    shots = {name: tmp_path / f"{name}-1280.png" for name in ("overview", "endpoint-chart", "agent-charts")}

    # No database access in here: Playwright's event loop makes Django refuse synchronous queries.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            page = log_in(browser, live, "northwind-viewer")
            overview_link = page.locator("#results-overview-link a").first.bounding_box()
            page.click("#results-overview-link a")
            page.wait_for_selector("#overview-worst")
            page.screenshot(path=str(shots["overview"]), full_page=True)
            agents_card = page.locator("#overview-agents").inner_text()
            worst = page.locator("#overview-worst tbody tr").all_inner_texts()
            overview = page.evaluate(MEASURE, "body")

            page.goto(endpoint_url)
            page.wait_for_selector("#endpoint-chart svg")
            endpoint = page.evaluate(MEASURE, "#endpoint-chart")
            per_agent = page.evaluate(
                """() => [...document.querySelectorAll('#endpoint-chart g.series')].map(
                     g => [g.dataset.label, g.querySelectorAll('circle.point').length])"""
            )
            group = page.locator(f'#endpoint-chart g.series[data-series="{second}"]')
            page.click(f'#endpoint-chart button.series-toggle[data-series="{second}"]')
            hidden = group.is_hidden()
            pressed = page.get_attribute(f'button.series-toggle[data-series="{second}"]', "aria-pressed")
            page.screenshot(path=str(shots["endpoint-chart"]), full_page=True)
            page.click(f'#endpoint-chart button.series-toggle[data-series="{second}"]')
            shown_again = group.is_visible()

            page.goto(agent_url)
            page.wait_for_selector("#agent-charts svg")
            page.screenshot(path=str(shots["agent-charts"]), full_page=True)
            multiples = page.evaluate(MEASURE, "#agent-charts")
            vitals = page.evaluate(MEASURE, "#agent-vitals-chart")
            svg_boxes = [box.bounding_box() for box in page.locator("svg.chart").all()]
        finally:
            browser.close()

    keep_artifacts(*shots.values())
    assert overview_link is not None and overview_link["y"] < HEIGHT / 2
    assert "3 online" in " ".join(agents_card.split())
    assert len(worst) == 2 and "api.northwind-logistics.example.net" in worst[0]  # refused connects first
    assert overview["pageWidth"] <= WIDTH
    drawn = len(INDEXES) - len(OUTAGE)  # a point per five minutes with an answer
    assert sorted(per_agent) == sorted([name, drawn] for name, _base in AGENTS)
    assert endpoint["points"] == 3 * drawn and endpoint["pageWidth"] <= WIDTH
    assert (hidden, pressed, shown_again) == (True, "false", True)
    assert multiples["points"] == drawn + len(INDEXES) - len(REFUSED)  # the pings and the connects
    assert vitals["points"] == 2 * len(INDEXES[::6])  # CPU, and memory used
    assert multiples["pageWidth"] <= WIDTH
    assert all(box and box["x"] + box["width"] <= WIDTH for box in svg_boxes)
    for shot in shots.values():
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
