"""The alerting admin in a real browser (Debian's Chromium, 1,280 x 800), on the real server: an
operator opens the overview with open incidents (listed first), an incident's page with its history
and notifications, acknowledges it there, and the alerting lists, a rule's page (with what it would
match now) and a channel's page fit the window. Screenshots go to artifacts/ (alerting-overview.png,
alerting-incident.png, and the lists and pages as alerting-*.png).

Names are as long as real ones get: they are what push columns out."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent
from alerting.models import (
    AlertRule,
    Channel,
    DeliveryAttempt,
    Incident,
    IncidentEvent,
    MaintenanceWindow,
    Notification,
)
from endpoints.models import Endpoint
from results.models import CheckResult
from results.rollups import rollups_add
from tenants.models import Role
from tests.admin import staff_user
from tests.browser import test_claim_in_browser as claim_test
from tests.browser.test_admin_at_1280 import HEIGHT, WIDTH, fits, log_in
from tests.browser.test_claim_in_browser import CHROMIUM_ARGS, chromium_executable, keep_artifacts
from tests.factories import SectionFactory, TenantFactory, password_hash

pytestmark = [pytest.mark.browser, pytest.mark.server]

live = claim_test.live  # the real server on the test database, as the claim test starts it

LONG_URL = "https://status.northwind-logistics.example.com/health/ready?probe=edge"
LISTS = ["incident", "alertrule", "channel", "maintenancewindow"]


def failing_ping(agent, endpoint, at) -> CheckResult:
    """A ping whose five packets were all lost (for the rollups a rule's preview reads)."""
    return CheckResult(
        id=uuid.uuid4(),
        agent=agent,
        endpoint_id=endpoint.pk,
        check_type="ping",
        success=False,
        checked_at=at,
        received_at=at,
        packets_sent=5,
        packets_received=0,
        details={"success_latencies": [], "successes": 0, "failures": 5},
    )


@pytest.fixture
def incidents(transactional_db):
    """Northwind's rules, channels, a maintenance window and three open incidents (critical, warning
    acknowledged, info in maintenance) with history and deliveries; an operator with a password."""
    now = timezone.now().replace(microsecond=0)
    tenant = TenantFactory(name="Northwind Logistics")
    section = SectionFactory(tenant=tenant, name="eu-central-edge-probes")
    api = Endpoint.objects.create(section=section, address="api.northwind-logistics.example.net", port=8443)
    status = Endpoint.objects.create(section=section, address=LONG_URL)
    agents = [
        Agent.objects.create(
            id=uuid.uuid4(), section=section, name=name, last_seen_at=now, hostname=f"{name}.example.net"
        )
        for name in ("probe-fra1-edge-01", "probe-ams3-edge-07", "probe-waw2-edge-02")
    ]
    for agent in agents[:2]:
        rollups_add([failing_ping(agent, api, now - timedelta(minutes=minute)) for minute in range(3)])
    hook = Channel.objects.create(
        tenant=tenant, name="ops-webhook-eu-central", type="webhook",
        configuration={"url": "https://hooks.northwind.example.com/T0KEN-browser-secret", "secret": "s3cret-browser"},
    )  # fmt: skip
    pager = Channel.objects.create(
        tenant=tenant, name="on-call PagerDuty", type="pagerduty", configuration={"routing_key": "R0UTE-browser-key"}
    )
    down = AlertRule.objects.create(
        tenant=tenant, name="Public API unreachable from two or more probes", metric="status", severity="critical",
        quorum_min_agents=2, quorum_min_percent=50, duration_seconds=120,
    )  # fmt: skip
    down.channels.set([hook, pager])
    slow = AlertRule.objects.create(
        tenant=tenant, name="Status page p95 slower than 800 ms", metric="response_time_ms", aggregation="p95",
        operator="greater_than", threshold=800, severity="warning", window_seconds=900,
    )  # fmt: skip
    slow.channels.set([hook])
    MaintenanceWindow.objects.create(
        tenant=tenant, name="Core router firmware upgrade (Frankfurt)", starts_at=now - timedelta(minutes=30),
        ends_at=now + timedelta(hours=2), agent_ids=[str(agents[2].pk)],
    )  # fmt: skip
    failing, ok = [str(agent.pk) for agent in agents[:2]], [str(agents[2].pk)]
    critical = Incident.objects.create(
        tenant=tenant, rule=down, kind="endpoint", severity="critical", title=f"{api} is unreachable",
        description=f"{down.name}: 2 of 3 agents breach (quorum 2).", endpoint=api, target=str(api),
        failing_agents=failing, ok_agents=ok, metric_type="status", current_value=0,
        created_at=now - timedelta(minutes=14), last_notified_at=now - timedelta(minutes=14),
    )  # fmt: skip
    opened = now - timedelta(minutes=14)
    IncidentEvent.objects.create(
        incident=critical, at=opened, kind="opened", data={"failing_agents": failing[:1], "ok_agents": ok, "value": 0}
    )
    IncidentEvent.objects.create(
        incident=critical,
        at=opened,
        kind="notified",
        data={"event": "alert.opened", "channels": [str(hook.pk), str(pager.pk)]},
    )
    IncidentEvent.objects.create(
        incident=critical,
        at=now - timedelta(minutes=9),
        kind="updated",
        data={"failing_agents": failing, "ok_agents": ok, "value": 0},
    )
    for channel, code, error in ((hook, 200, ""), (pager, 503, "HTTP 503.")):
        notification = Notification.objects.create(
            tenant=tenant, incident=critical, channel=channel, event="alert.opened", payload={},
            status="delivered" if code == 200 else "pending", attempts=0 if code == 200 else 1,
            next_attempt_at=opened + timedelta(seconds=10), created_at=opened,
        )  # fmt: skip
        DeliveryAttempt.objects.create(
            notification=notification, at=opened, duration_ms=84.2, status_code=code,
            outcome="delivered" if code == 200 else "failed", error=error,
        )  # fmt: skip
    operator = staff_user("northwind-operator", tenant, Role.OPERATOR, password=password_hash())
    staff_user("northwind-admin", tenant, Role.ADMIN, password=password_hash())
    Incident.objects.create(
        tenant=tenant, rule=slow, kind="endpoint", severity="warning", status="acknowledged",
        title=f"{LONG_URL}: p95 response time > 800", endpoint=status, target=LONG_URL,
        metric_type="response_time_ms", threshold_value=800, current_value=1312.5, created_at=now - timedelta(hours=3),
        acknowledged_at=now - timedelta(hours=2), acknowledged_by=operator,
    )  # fmt: skip
    offline = AlertRule.objects.get(tenant=tenant, builtin="agent_offline")
    Incident.objects.create(
        tenant=tenant, rule=offline, kind="agent_offline", severity="info", title="Agent probe-waw2-edge-02 is offline",
        agent=agents[2], metric_type="agent_offline", current_value=930, in_maintenance=True,
        created_at=now - timedelta(minutes=40),
    )  # fmt: skip
    return {"critical": critical, "down": down, "hook": hook}


def test_open_incidents_come_first_and_an_operator_acknowledges_one(live, incidents, tmp_path):
    executable = chromium_executable()
    from playwright.sync_api import sync_playwright

    critical = incidents["critical"]
    incident_url = f"{live.url}/admin/alerting/incident/{critical.pk}/change/"
    pages = ("index", "overview", "incident", "acknowledged", "rule", "channel", "channel-add", "window-add")
    shots = {name: tmp_path / f"alerting-{name}.png" for name in pages}
    list_shots = {name: tmp_path / f"alerting-list-{name}.png" for name in LISTS}
    problems = []

    # No database access in here: Playwright's event loop makes Django refuse synchronous queries.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            page = log_in(browser, live, "northwind-operator")
            page.screenshot(path=str(shots["index"]), full_page=True)
            index_rows = page.locator("#overview-incidents tbody tr").all_inner_texts()
            index_box = page.evaluate(
                """() => [document.querySelector('#overview-incidents h2').getBoundingClientRect().right,
                          document.querySelector('#overview-incidents table').getBoundingClientRect().right]"""
            )
            page.click("#results-overview-link a")
            page.wait_for_selector("#overview-incidents")
            page.screenshot(path=str(shots["overview"]), full_page=True)
            first_section = page.evaluate("() => document.querySelector('#content-main section.module').id")
            rows = page.locator("#overview-incidents tbody tr").all_inner_texts()
            overview_width = page.evaluate("() => document.documentElement.scrollWidth")

            page.click(f"#overview-incidents a[href='/admin/alerting/incident/{critical.pk}/change/']")
            page.wait_for_selector("#incident-history")
            page.screenshot(path=str(shots["incident"]), full_page=True)
            history = page.locator("#incident-history tbody tr").all_inner_texts()
            deliveries = page.locator("#incident-notifications tbody tr").all_inner_texts()
            failing = page.locator(".field-failing_agent_names .readonly").inner_text()
            incident_width = page.evaluate("() => document.documentElement.scrollWidth")
            button = page.locator("#incident-acknowledge input[type=submit]").bounding_box()

            page.fill("#acknowledge-note", "Rerouting through AMS while FRA is looked at")
            page.click("#incident-acknowledge input[type=submit]")
            page.wait_for_selector("ul.messagelist")
            page.screenshot(path=str(shots["acknowledged"]), full_page=True)
            message = page.locator("ul.messagelist").inner_text()
            events_after = page.locator("#incident-history tbody tr").all_inner_texts()
            assert page.url == incident_url

            for name in LISTS:
                path = f"/admin/alerting/{name}/"
                page.goto(live.url + path)
                page.screenshot(path=str(list_shots[name]), full_page=True)
                problems += fits(page, path)
            page.goto(f"{live.url}/admin/alerting/alertrule/{incidents['down'].pk}/change/")
            page.screenshot(path=str(shots["rule"]), full_page=True)
            findings = page.locator("#rule-preview tbody tr").all_inner_texts()
            rule_width = page.evaluate("() => document.documentElement.scrollWidth")
            admin_page = log_in(browser, live, "northwind-admin")  # channels are the tenant admin's
            admin_page.goto(f"{live.url}/admin/alerting/channel/{incidents['hook'].pk}/change/")
            admin_page.screenshot(path=str(shots["channel"]), full_page=True)
            channel_page = admin_page.content()
            send_test = admin_page.locator("#channel-send-test input[type=submit]").bounding_box()
            widths = [page.evaluate("() => document.documentElement.scrollWidth")]
            for name, url in (
                ("channel-add", "/admin/alerting/channel/add/"),
                ("window-add", "/admin/alerting/maintenancewindow/add/"),
            ):
                admin_page.goto(live.url + url)
                admin_page.screenshot(path=str(shots[name]), full_page=True)
                widths.append(admin_page.evaluate("() => document.documentElement.scrollWidth"))
        finally:
            browser.close()

    keep_artifacts(*shots.values(), *list_shots.values())
    assert len(index_rows) == 3 and "is unreachable" in index_rows[0]
    assert index_box[1] <= index_box[0] + 0.5, index_box  # the table stays in its box on the index
    assert first_section == "overview-incidents"
    assert [row.split("\t")[0].strip() for row in rows] == ["Critical", "Warning", "Info"]
    assert "api.northwind-logistics.example.net:8443 is unreachable" in rows[0] and "14 min ago" in rows[0]
    assert "Acknowledged" in rows[1] and "maintenance" in rows[2]
    assert overview_width <= WIDTH and incident_width <= WIDTH and rule_width <= WIDTH
    assert [row.split("\t")[1] for row in history] == ["opened", "notified", "updated"]
    assert "failing: probe-fra1-edge-01, probe-ams3-edge-07; ok: probe-waw2-edge-02" in history[2]
    assert (
        "alert.opened to ops-webhook-eu-central, on-call PagerDuty" in history[1]
        or "on-call PagerDuty, ops" in history[1]
    )
    assert any("HTTP 503" in row for row in deliveries) and any("HTTP 200" in row for row in deliveries)
    assert failing == "probe-fra1-edge-01, probe-ams3-edge-07"
    assert button is not None and button["x"] + button["width"] <= WIDTH and button["y"] + button["height"] <= HEIGHT
    assert "Incident acknowledged." in message
    acknowledged = [row for row in events_after if row.split("\t")[1] == "acknowledged"]
    assert len(acknowledged) == 1 and "northwind-operator" in acknowledged[0]
    assert "Rerouting through AMS" in acknowledged[0] and "alert.acknowledged to" in events_after[-1]
    assert problems == [], "\n".join(problems)
    assert len(findings) == 1 and "api.northwind-logistics.example.net:8443" in findings[0]
    assert send_test is not None and send_test["x"] + send_test["width"] <= WIDTH
    assert max(widths) <= WIDTH, widths
    assert "T0KEN-browser-secret" not in channel_page and "s3cret-browser" not in channel_page
    for shot in shots.values():
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
