"""Each agent's computed status (online / offline / never_seen / revoked) from last seen and
``agent.offline_after``, the same in the model, the agents API filter, the admin and /metrics."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings as django_settings
from django.urls import reverse

from agents.models import Agent
from tests.factories import AgentFactory, MembershipFactory, UserFactory
from tests.results import KEY, agent_with_key, key_header

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
STATUSES = ["online", "offline", "never_seen", "revoked"]
LABELS = {"online": "Online", "offline": "Offline", "never_seen": "Never seen", "revoked": "Revoked"}


def offline_after() -> timedelta:
    return timedelta(seconds=django_settings.SMOTRA.agent.offline_after)


@pytest.fixture
def fleet(section_a, section_b) -> dict[str, str]:
    """Agents of tenant A named after the status they have at NOW (with the edges of the window),
    and one agent per status in tenant B that tenant A must never see."""
    window = offline_after()
    expected = {
        "fresh": ("online", NOW - timedelta(seconds=1), None),
        "at-the-edge": ("online", NOW - window, None),
        "just-gone": ("offline", NOW - window - timedelta(microseconds=1), None),
        "long-gone": ("offline", NOW - timedelta(days=30), None),
        "newborn": ("never_seen", None, None),
        "revoked-recently-seen": ("revoked", NOW - timedelta(seconds=1), NOW - timedelta(hours=1)),
        "revoked-never-seen": ("revoked", None, NOW - timedelta(hours=1)),
    }
    for name, (_status, last_seen, revoked) in expected.items():
        AgentFactory(section=section_a, name=name, last_seen_at=last_seen, revoked_at=revoked)
    for status, last_seen, revoked in [
        ("online", NOW, None),
        ("offline", NOW - timedelta(days=1), None),
        ("never_seen", None, None),
        ("revoked", NOW, NOW),
    ]:
        AgentFactory(section=section_b, name=f"bravo-{status}", last_seen_at=last_seen, revoked_at=revoked)
    return {name: status for name, (status, _seen, _revoked) in expected.items()}


def names_with(fleet: dict, status: str) -> set[str]:
    return {name for name, expected in fleet.items() if expected == status}


# ---------------------------------------------------------------------------------------------
# The model: one rule in Python and in SQL


def test_each_agent_has_its_expected_status(fleet, section_a):
    for agent in Agent.objects.filter(section=section_a):
        assert agent.status(now=NOW) == fleet[agent.name], agent.name


@pytest.mark.parametrize("status", STATUSES)
def test_the_sql_filter_agrees_with_the_computed_status(fleet, section_a, status):
    found = Agent.objects.filter(section=section_a).with_status(status, now=NOW)

    assert {agent.name for agent in found} == names_with(fleet, status)


def test_offline_after_is_read_from_the_configuration(fleet, section_a, settings):
    settings.SMOTRA = replace(settings.SMOTRA, agent=replace(settings.SMOTRA.agent, offline_after=0.5))

    online = Agent.objects.filter(section=section_a).with_status("online", now=NOW)

    assert {agent.name for agent in online} == set()
    assert Agent.objects.get(name="fresh").status(now=NOW) == "offline"


# ---------------------------------------------------------------------------------------------
# The agents API


def listed(client_for, user, **params) -> dict[str, str]:
    """Agent name -> status in the API's agent list, at NOW (the bearer token is issued then too)."""
    with time_machine.travel(NOW, tick=False):
        response = client_for(user).get("/api/v1/agents", {"page_size": 100, **params})
    assert response.status_code == 200, response.content
    return {agent["name"]: agent["status"] for agent in response.json()["agents"]}


def test_the_api_shows_each_agents_status(client_for, vera, fleet):
    assert listed(client_for, vera) == fleet


@pytest.mark.parametrize("status", STATUSES)
def test_the_api_filters_by_status(client_for, vera, fleet, status):
    shown = listed(client_for, vera, status=status)

    assert set(shown) == names_with(fleet, status)
    assert set(shown.values()) <= {status}


def test_the_api_refuses_an_unknown_status(client_for, vera, fleet, assert_error):
    with time_machine.travel(NOW, tick=False):
        response = client_for(vera).get("/api/v1/agents", {"status": "asleep"})

    assert_error(response, 400, "validation_error", "status")


def test_the_api_needs_authentication(client, fleet, assert_error):
    assert_error(client.get("/api/v1/agents", {"status": "online"}), 401, "unauthorized")


def test_another_tenant_sees_only_its_own_agents_statuses(client_for, bob, fleet):
    assert listed(client_for, bob) == {
        "bravo-online": "online",
        "bravo-offline": "offline",
        "bravo-never_seen": "never_seen",
        "bravo-revoked": "revoked",
    }
    assert listed(client_for, bob, status="offline") == {"bravo-offline": "offline"}


# ---------------------------------------------------------------------------------------------
# The admin


@pytest.fixture
def staff_viewer(tenant_a):
    user = UserFactory(username="staff-viewer", is_staff=True)
    MembershipFactory(user=user, tenant=tenant_a, role="viewer")
    return user


def admin_statuses(client, user, **params) -> dict[str, str]:
    """Agent name -> the Status column's text, from the admin's agent list."""
    client.force_login(user)
    with time_machine.travel(NOW, tick=False):
        response = client.get(reverse("admin:agents_agent_changelist"), params)
    assert response.status_code == 200
    page = response.content.decode()
    rows = re.findall(r"<tr.*?</tr>", page, flags=re.S)
    statuses = {}
    for row in rows:
        name = re.search(r'<th class="field-agent_name"><a [^>]*>(?:<span[^>]*>)?([^<]+)<', row)
        status = BADGE.search(row)
        if name and status:
            statuses[name.group(1)] = badge_label(status)
    return statuses


# The admin shows the status as a badge: its class names the status, its text starts with it.
BADGE = re.compile(r'<td class="field-status_column"><span class="agent-status agent-status-([a-z-]+)"[^>]*>([^<]+)<')


def badge_label(match) -> str:
    status = match.group(1).replace("-", "_")
    assert match.group(2).startswith(LABELS[status].lower()), match.group(0)
    return LABELS[status]


def test_the_admin_shows_the_same_status_column(client, staff_viewer, fleet):
    assert admin_statuses(client, staff_viewer) == {name: LABELS[status] for name, status in fleet.items()}


@pytest.mark.parametrize("status", STATUSES)
def test_the_admin_filter_agrees_with_the_api(client, client_for, staff_viewer, vera, fleet, status):
    in_admin = admin_statuses(client, staff_viewer, status=status)

    assert set(in_admin) == set(listed(client_for, vera, status=status)) == names_with(fleet, status)
    assert set(in_admin.values()) == {LABELS[status]}


# ---------------------------------------------------------------------------------------------
# Metrics


def test_the_metrics_gauge_counts_agents_per_status(client, fleet):
    with time_machine.travel(NOW, tick=False):
        text = client.get("/metrics").content.decode()

    counts = dict(re.findall(r'^smotra_agents\{status="(\w+)"\} (\d+)', text, flags=re.M))
    expected = {status: len(names_with(fleet, status)) + 1 for status in STATUSES}  # + tenant B's
    assert {status: int(count) for status, count in counts.items()} == expected


# ---------------------------------------------------------------------------------------------
# Through time: a heartbeat brings the agent online; silence longer than offline_after takes it off


def test_status_follows_heartbeats_and_silence(client, client_for, vera, staff_viewer, section_a):
    agent = agent_with_key(section_a, name="walker")

    def status_everywhere() -> tuple[str, str, str]:
        with time_machine.travel(moment, tick=False):
            model = Agent.objects.get(pk=agent.pk).status()
            [shown] = client_for(vera).get("/api/v1/agents", {"search": "walker"}).json()["agents"]
        client.force_login(staff_viewer)
        with time_machine.travel(moment, tick=False):
            page = client.get(reverse("admin:agents_agent_changelist"), {"q": "walker"}).content.decode()
        column = badge_label(BADGE.search(page))
        return model, shown["status"], column

    moment = NOW
    assert status_everywhere() == ("never_seen", "never_seen", "Never seen")

    with time_machine.travel(NOW, tick=False):
        heartbeat = client.post(
            f"/v1/agent/{agent.pk}/heartbeat", data={}, content_type="application/json", **key_header(KEY)
        )
    assert heartbeat.status_code == 204
    assert status_everywhere() == ("online", "online", "Online")

    moment = NOW + offline_after()
    assert status_everywhere() == ("online", "online", "Online")

    moment = NOW + offline_after() + timedelta(seconds=1)
    assert status_everywhere() == ("offline", "offline", "Offline")

    with time_machine.travel(moment, tick=False):
        client.post(f"/v1/agent/{agent.pk}/heartbeat", data={}, content_type="application/json", **key_header(KEY))
    assert status_everywhere() == ("online", "online", "Online")

    Agent.objects.filter(pk=agent.pk).update(revoked_at=moment)
    assert status_everywhere() == ("revoked", "revoked", "Revoked")
