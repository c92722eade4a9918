"""The admin on a 1,280 x 800 screen, in Debian's Chromium: every list keeps its key columns and
the Claim link inside the window, and no table overflows its box. Screenshots go to artifacts/.

The data is made in the test database, which the real server shares; names are as long as real
ones get (fully qualified hostnames, URLs, "tenant / section"), since those are what push columns out."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import pytest
from django.contrib import admin
from django.utils import timezone

from agents.models import Agent
from endpoints.models import Endpoint, MemberRole, Tag, TagScope, Topology, TopologyMember
from results.models import CheckResult, CheckType, UnknownEndpoint
from tenants.models import AuditEvent
from tests.browser import test_claim_in_browser as claim_test
from tests.browser.test_claim_in_browser import CHROMIUM_ARGS, chromium_executable, keep_artifacts
from tests.factories import PASSWORD, MembershipFactory, SectionFactory, SuperuserFactory, TenantFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.server]

live = claim_test.live  # the real server on the test database, as the claim test starts it

WIDTH, HEIGHT = 1280, 800
PENDING = "/admin/agents/agentregistration/"
AGENTS = "/admin/agents/agent/"
RESULTS = "/admin/results/checkresult/"
# The columns each list must keep inside the window (``.field-<name>`` cells, ``.column-<name>`` headers).
KEY_COLUMNS = {
    PENDING: ["hostname", "short_agent_id", "claim_link"],
    AGENTS: ["agent_name", "status_column", "section_name"],
    RESULTS: ["checked", "agent_name", "endpoint_address", "check_label", "ok", "latency", "http_status"],
}
LONG_URL = "https://status.northwind-logistics.example.com/health/ready?probe=edge"

# Where the table stands against its scrolling box and the window, measured in the page.
MEASURE = """() => {
  const table = document.querySelector('#result_list');
  if (!table) return null;
  const box = table.closest('.results') || table.parentElement;
  return {
    tableRight: table.getBoundingClientRect().right,
    boxRight: box.getBoundingClientRect().right,
    boxScroll: box.scrollWidth,
    boxClient: box.clientWidth,
    pageScroll: document.documentElement.scrollWidth,
  };
}"""


def register(server, hostname: str) -> uuid.UUID:
    agent_id = uuid.uuid4()
    body = {
        "agentId": str(agent_id),
        "claimTokenHash": hashlib.sha256(f"token-{agent_id}".encode()).hexdigest(),
        "hostname": hostname,
        "agentVersion": "0.4.2",
        "ipAddresses": [{"ip": "192.0.2.81", "iface": "eth0", "family": "ipv4", "recommended": True}],
    }
    response = server.request("POST", "/v1/agent/register", body)
    assert response.status == 201, response.body
    return agent_id


@pytest.fixture
def control_room(transactional_db):
    """A tenant with the four agent states, endpoints (one a long URL), results and an operator."""
    now = timezone.now()
    tenant = TenantFactory(name="Northwind Logistics", description="Parcel tracking, warehouses and the public API")
    section = SectionFactory(tenant=tenant, name="eu-central-edge-probes")
    agent_tag = Tag.objects.create(section=section, name="edge-probes", scope=TagScope.AGENT)
    web = Tag.objects.create(section=section, name="web-frontends", scope=TagScope.ENDPOINT)
    core = Tag.objects.create(section=section, name="core-services", scope=TagScope.GLOBAL)
    endpoints = [
        Endpoint.objects.create(section=section, address=LONG_URL, description="Status page"),
        Endpoint.objects.create(section=section, address="api.northwind-logistics.example.net", port=8443),
        Endpoint.objects.create(section=section, address="192.0.2.44"),
    ]
    for endpoint in endpoints:
        endpoint.tags.set([web, core])
    agents = [
        Agent.objects.create(
            id=uuid.uuid4(),
            section=section,
            name=name,
            hostname=f"{name}.northwind-logistics.example.net",
            agent_version="0.4.2",
            last_seen_at=last_seen,
            revoked_at=revoked,
        )
        for name, last_seen, revoked in [
            ("probe-fra1-edge-01", now - timedelta(seconds=12), None),
            ("probe-ams3-edge-07", now - timedelta(hours=3), None),
            ("probe-waw2-edge-02", None, None),
            ("probe-vie1-edge-04", now - timedelta(days=2), now - timedelta(days=1)),
        ]
    ]
    for agent in agents:
        agent.tags.set([agent_tag])
    topology = Topology.objects.create(section=section, name="edge-probes-to-web-frontends")
    TopologyMember.objects.create(topology=topology, tag=agent_tag, role=MemberRole.MONITOR)
    TopologyMember.objects.create(topology=topology, tag=web, role=MemberRole.TARGET)
    TopologyMember.objects.create(topology=topology, tag=core, role=MemberRole.TARGET)
    checks = [(CheckType.HTTP, 21.150000000000002, 200), (CheckType.TCP, 3.4, None), (CheckType.PING, None, None)]
    for index in range(12):
        check_type, latency, code = checks[index % 3]
        CheckResult.objects.create(
            id=uuid.uuid4(),
            agent=agents[index % 2],
            endpoint_id=endpoints[index % 3].pk,
            check_type=check_type,
            success=index % 4 != 3,
            checked_at=now - timedelta(minutes=index),
            received_at=now,
            latency_ms=latency,
            status_code=code if index % 4 != 3 else 503,
        )
    gone = uuid.uuid4()  # an endpoint deleted since: its results stay
    CheckResult.objects.create(
        id=uuid.uuid4(), agent=agents[0], endpoint_id=gone, check_type=CheckType.PING, success=False,
        checked_at=now - timedelta(minutes=30), received_at=now, latency_ms=1234.5678,
    )  # fmt: skip
    UnknownEndpoint.objects.create(
        agent=agents[0],
        endpoint_id=uuid.uuid4(),
        first_seen_at=now,
        last_seen_at=now,
        count=42,
        sample_address=LONG_URL,
    )
    AuditEvent.objects.create(
        actor_label="user:northwind-operator", action="endpoint.update", tenant=tenant, object_type="endpoint",
        object_id=str(endpoints[0].pk), object_repr=LONG_URL, source_address="2001:db8:1234:5678::42",
    )  # fmt: skip
    operator = UserFactory(username="northwind-operator", is_staff=True, email="operator@northwind.example.com")
    MembershipFactory(user=operator, tenant=tenant, role="operator")
    root = SuperuserFactory(username="root", email="root@smotra.example.com")
    return {
        "root": root,
        "operator": operator,
        "endpoint": endpoints[0],
        "agent": agents[1],
        "agent_tag": agent_tag.name,
    }


def changelist_urls() -> list[str]:
    """Every changelist of the Smotra apps (and the accounts one), as the admin registered them."""
    apps = {"agents", "endpoints", "results", "tenants"}
    return sorted(
        f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for model in admin.site._registry
        if model._meta.app_label in apps
    )


def fits(page, path: str) -> list[str]:
    """What sticks out on the page at ``path`` (empty: everything fits)."""
    found = page.evaluate(MEASURE)
    problems = []
    if found is None:
        return [f"{path}: no result table"]
    if found["pageScroll"] > WIDTH:
        problems.append(f"{path}: the page is {found['pageScroll']} px wide")
    if found["boxScroll"] > found["boxClient"] or found["tableRight"] > found["boxRight"] + 0.5:
        problems.append(f"{path}: the table is {found['boxScroll']} px wide in a {found['boxClient']} px box")
    for name in KEY_COLUMNS.get(path, []):
        for selector in (f"#result_list thead .column-{name}", f"#result_list tbody .field-{name}"):
            box = page.locator(selector).first.bounding_box()
            if box is None or box["x"] + box["width"] > WIDTH:
                problems.append(f"{path}: {selector} ends at {box and box['x'] + box['width']} px")
    return problems


def open_list(page, server, path: str, screenshot=None) -> list[str]:
    page.goto(server.url + path)
    assert page.locator("#result_list").count() == 1, (path, page.content()[:2000])
    if screenshot is not None:
        page.screenshot(path=str(screenshot), full_page=True)
    return fits(page, path)


def log_in(browser, server, username: str):
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-form input[type=submit]")
    page.wait_for_url(f"{server.url}/admin/")
    return page


def claim_link_box(page) -> dict:
    return page.locator("#result_list a.button", has_text="Claim").first.bounding_box()


def test_the_lists_and_the_endpoint_page_fit_1280_pixels(live, control_room, tmp_path):
    executable = chromium_executable()
    from playwright.sync_api import sync_playwright

    for hostname in ("probe-sin1-edge-11.northwind-logistics.example.net", "probe-gru1-edge-03.example.org"):
        register(live, hostname)
    endpoint_page = f"/admin/endpoints/endpoint/{control_room['endpoint'].pk}/change/"
    shots = {
        name: tmp_path / f"admin-{name}-1280.png" for name in ("pending", "agents", "results", "endpoint", "agent")
    }
    operator_shots = [tmp_path / "admin-agents-1280-operator.png", tmp_path / "admin-results-1280-operator.png"]
    problems = []

    # No database access in here: Playwright's event loop makes Django refuse synchronous queries.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            page = log_in(browser, live, "root")
            problems += open_list(page, live, PENDING, shots["pending"])
            claim = claim_link_box(page)
            problems += open_list(page, live, AGENTS, shots["agents"])
            statuses = page.locator("#result_list .agent-status").all_inner_texts()
            badge_boxes = [badge.bounding_box() for badge in page.locator(".agent-status").all()]
            problems += open_list(page, live, RESULTS, shots["results"])
            results_text = page.locator("#result_list").text_content()

            page.goto(live.url + endpoint_page)
            page.screenshot(path=str(shots["endpoint"]), full_page=True)
            endpoint_width = page.evaluate("() => document.documentElement.scrollWidth")
            tag_choices = page.locator("#id_tags_from option, #id_tags_to option").all_inner_texts()
            save_box = page.locator("input[name=_save]").bounding_box()

            page.goto(f"{live.url}{AGENTS}{control_room['agent'].pk}/change/")
            page.screenshot(path=str(shots["agent"]), full_page=True)
            agent_badge = page.locator(".agent-status").inner_text()
            agent_width = page.evaluate("() => document.documentElement.scrollWidth")

            operator = log_in(browser, live, "northwind-operator")
            problems += open_list(operator, live, AGENTS, operator_shots[0])
            problems += open_list(operator, live, RESULTS, operator_shots[1])
        finally:
            browser.close()

    keep_artifacts(*shots.values(), *operator_shots)
    assert problems == [], "\n".join(problems)
    assert claim is not None and claim["x"] + claim["width"] <= WIDTH and claim["y"] + claim["height"] <= HEIGHT
    assert sorted(status.split(" · ")[0] for status in statuses) == ["never seen", "offline", "online", "revoked"]
    assert "offline · 3 h ago" in statuses  # the online one's age grows while the test runs
    assert max(box["x"] + box["width"] for box in badge_boxes) <= WIDTH
    assert "21.15" in results_text and "21.150000000000002" not in results_text
    assert "api.northwind-logistics.exa…:8443" in results_text  # a long address is cut, never its port
    assert endpoint_width <= WIDTH
    assert agent_width <= WIDTH
    assert agent_badge == "offline · 3 h ago"
    assert save_box is not None and save_box["x"] + save_box["width"] <= WIDTH
    assert "web-frontends (endpoint)" in " ".join(tag_choices)
    assert control_room["agent_tag"] not in " ".join(tag_choices)
    for shot in shots.values():
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_changelist_fits_1280_pixels(live, control_room, tmp_path):
    executable = chromium_executable()
    from playwright.sync_api import sync_playwright

    register(live, "probe-sin1-edge-11.northwind-logistics.example.net")
    urls = changelist_urls()
    assert len(urls) >= 10, urls
    problems = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            page = log_in(browser, live, "root")
            for path in urls:
                shot = tmp_path / f"admin-list-{path.strip('/').replace('/', '-')}.png"
                found = open_list(page, live, path, shot)
                problems += found
                if found:  # the picture of what sticks out, for whoever reads the failure
                    keep_artifacts(shot)
        finally:
            browser.close()

    assert problems == [], "\n".join(problems)
