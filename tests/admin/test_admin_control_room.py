"""The admin as a control room: results by address with rounded latencies and scoped filters, agent
status badges, tag choices that follow the tag's scope, the admin's own log ("Recent actions") for
every write made through it, and "View site" leading to the admin."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import Agent, AgentRegistration
from endpoints.models import Endpoint, Tag, TagScope
from results.models import CheckResult, CheckType, UnknownEndpoint
from smotra.admin import short_duration, time_ago
from smotra.errors import Conflict
from tenants import services as tenant_services
from tenants.models import Section
from tests.admin import LEAK_MARKER, admin_url, form_errors, html, table_row

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
TOKEN = "Ct7rLr0om" * 7 + "x"


def result(agent, endpoint_id, *, check_type=CheckType.HTTP, success=True, latency=None, code=None, minutes=0):
    return CheckResult.objects.create(
        id=uuid.uuid4(),
        agent=agent,
        endpoint_id=endpoint_id,
        check_type=check_type,
        success=success,
        checked_at=NOW - timedelta(minutes=minutes),
        received_at=NOW,
        latency_ms=latency,
        status_code=code,
    )


@pytest.fixture
def results(world):
    """Tenant A: two agents, two endpoints, an HTTP, a ping and a failed TCP result; tenant B: one."""
    a = world.a
    api = Endpoint.objects.create(section=a.section, address="api.acme.example.net")
    second = Agent.objects.create(id=uuid.uuid4(), section=a.section, name="acme-second", hostname="acme-2")
    made = {
        "http": result(a.agent, a.endpoint.pk, latency=21.150000000000002, code=200),
        "ping": result(a.agent, api.pk, check_type=CheckType.PING, latency=3.0, minutes=1),
        "tcp": result(second, a.endpoint.pk, check_type=CheckType.TCP, success=False, minutes=2),
        "bravo": result(world.b.agent, world.b.endpoint.pk, latency=9.99, code=503),
    }
    return {**made, "api": api, "second": second}


def listed(response) -> set:
    return {row.pk for row in response.context["cl"].result_list}


def assert_no_leak(response, echoed: str = "") -> None:
    page = html(response).replace(echoed, "") if echoed else html(response)
    assert LEAK_MARKER not in page.lower()


# ---------------------------------------------------------------------------------------------
# The results list: addresses, rounded latencies, search and filters


def test_the_results_list_shows_the_address_and_a_rounded_latency(login, world, oscar, results):
    response = login(oscar).get(admin_url(CheckResult))

    assert response.status_code == 200
    page = html(response).replace("<wbr>", "")  # the address may wrap after its dots
    row = table_row(page, "21.15 ms")
    assert "acme.example.net:443" in row
    assert str(world.a.endpoint.pk) not in row
    assert "21.150000000000002" not in page
    assert "api.acme.example.net<" in table_row(page, "3.00 ms")  # no port: no colon
    assert_no_leak(response)


def test_a_result_whose_endpoint_was_deleted_shows_the_endpoint_id(login, world, oscar, results):
    gone = uuid.uuid4()
    result(world.a.agent, gone, check_type=CheckType.PING, minutes=5)

    response = login(oscar).get(admin_url(CheckResult))

    assert len(response.context["cl"].result_list) == 4  # no join drops the row of a deleted endpoint
    row = table_row(html(response), str(gone)[:8])
    assert f'title="{gone} (endpoint deleted)"' in row


def test_the_results_search_finds_an_address_of_the_users_tenant_only(login, world, oscar, results):
    client = login(oscar)

    found = client.get(admin_url(CheckResult), {"q": "api.acme"})
    assert listed(found) == {results["ping"].pk}
    everything = client.get(admin_url(CheckResult), {"q": "example.net"})
    assert listed(everything) == {results[name].pk for name in ("http", "ping", "tcp")}
    foreign = client.get(admin_url(CheckResult), {"q": "bravo.example.net"})
    assert listed(foreign) == set()
    assert_no_leak(foreign, echoed="bravo.example.net")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (lambda w, r: {"endpoint__id__exact": str(r["api"].pk)}, {"ping"}),
        (lambda w, r: {"agent__id__exact": str(r["second"].pk)}, {"tcp"}),
        (lambda w, r: {"check_type__exact": CheckType.PING}, {"ping"}),
        (lambda w, r: {"success__exact": "0"}, {"tcp"}),
        (
            lambda w, r: {"checked_at__year": "2025", "checked_at__month": "6", "checked_at__day": "1"},
            {"http", "ping", "tcp"},
        ),
    ],
    ids=["endpoint", "agent", "check type", "success", "day"],
)
def test_the_results_filters_work(login, world, oscar, results, query, expected):
    response = login(oscar).get(admin_url(CheckResult), query(world, results))

    assert response.status_code == 200
    assert listed(response) == {results[name].pk for name in expected}
    assert_no_leak(response)


def test_the_results_filters_offer_only_the_users_agents_and_endpoints(login, world, oscar, results):
    response = login(oscar).get(admin_url(CheckResult))

    specs = {spec.field_path: spec for spec in response.context["cl"].filter_specs if hasattr(spec, "field_path")}
    endpoints = {label for _pk, label in specs["endpoint"].lookup_choices}
    agents = {label for _pk, label in specs["agent"].lookup_choices}
    assert endpoints == {"acme.example.net:443", "api.acme.example.net"}
    assert agents == {"acme-agent", "acme-second"}
    assert {"check_type", "success"} <= set(specs)
    assert str(world.b.endpoint.pk) not in html(response)
    assert_no_leak(response)


@pytest.mark.parametrize("parameter", ["endpoint__id__exact", "agent__id__exact"])
def test_a_guessed_id_of_another_tenant_filters_to_nothing(login, world, oscar, results, parameter):
    guessed = world.b.endpoint.pk if parameter.startswith("endpoint") else world.b.agent.pk

    response = login(oscar).get(admin_url(CheckResult), {parameter: str(guessed)})

    assert response.status_code == 200
    assert listed(response) == set()
    assert_no_leak(response)


@pytest.mark.parametrize("lookup", ["endpoint__address__startswith", "details__icontains", "resolved_ip"])
def test_the_results_list_refuses_undeclared_lookups(login, oscar, results, lookup):
    assert login(oscar).get(admin_url(CheckResult), {lookup: "a"}).status_code == 400


def test_the_results_list_costs_as_many_queries_for_many_rows_as_for_one(login, world, oscar, results):
    client = login(oscar)
    client.get(admin_url(CheckResult))  # sessions, content types: warm

    with CaptureQueriesContext(connection) as few:
        client.get(admin_url(CheckResult))
    for minutes in range(10, 30):
        result(results["second"], results["api"].pk, latency=minutes / 3, minutes=minutes)
    with CaptureQueriesContext(connection) as many:
        response = client.get(admin_url(CheckResult))

    assert len(response.context["cl"].result_list) == 23
    assert len(many.captured_queries) == len(few.captured_queries)


# ---------------------------------------------------------------------------------------------
# Agent status badges

BADGES = {
    # name: (last seen before NOW, revoked, css class, text)
    "agent-online": (timedelta(seconds=12), False, "agent-status-online", "online · 12 s ago"),
    "agent-offline": (timedelta(hours=3, minutes=20), False, "agent-status-offline", "offline · 3 h ago"),
    "agent-never": (None, False, "agent-status-never-seen", "never seen"),
    "agent-revoked": (timedelta(seconds=5), True, "agent-status-revoked", "revoked"),
}


@pytest.fixture
def agents_by_status(world):
    return {
        name: Agent.objects.create(
            id=uuid.uuid4(),
            section=world.a.section,
            name=name,
            last_seen_at=None if ago is None else NOW - ago,
            revoked_at=NOW - timedelta(days=1) if revoked else None,
        )
        for name, (ago, revoked, _css, _text) in BADGES.items()
    }


def test_the_agents_list_shows_a_badge_with_the_age_for_each_status(login, oscar, agents_by_status):
    with time_machine.travel(NOW, tick=False):
        response = login(oscar).get(admin_url(Agent))

    page = html(response)
    assert "agents/admin.css" in page
    for name, (_ago, _revoked, css, text) in BADGES.items():
        cell = table_row(page, f">{name}<").split('class="field-status_column">')[1].split("</td>")[0]
        assert f'class="agent-status {css}"' in cell, name
        assert f">{text}</span>" in cell, name


@pytest.mark.parametrize("name", list(BADGES))
def test_the_agent_page_shows_the_same_badge(login, oscar, agents_by_status, name):
    _ago, _revoked, css, text = BADGES[name]

    with time_machine.travel(NOW, tick=False):
        response = login(oscar).get(admin_url(Agent, "change", agents_by_status[name].pk))

    assert response.status_code == 200
    assert f'class="agent-status {css}"' in html(response)
    assert f">{text}</span>" in html(response)
    assert "agents/admin.css" in html(response)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59, "59 s"), (60, "1 min"), (3599, "59 min"), (3600, "1 h"), (47 * 3600, "47 h"), (49 * 3600, "2 d")],
)
def test_ages_are_short(seconds, text):
    assert short_duration(seconds) == text
    assert time_ago(NOW - timedelta(seconds=seconds), NOW) == f"{text} ago"


def test_a_last_seen_in_the_future_is_now():
    assert time_ago(NOW + timedelta(seconds=30), NOW) == "0 s ago"  # the agent's clock runs ahead


# ---------------------------------------------------------------------------------------------
# Tag choices follow the tag's scope and the object's section


@pytest.fixture
def endpoint_tag(world):
    return Tag.objects.create(section=world.a.section, name="acme-frontends", scope=TagScope.ENDPOINT)


def offered_tags(response) -> set:
    return set(response.context["adminform"].form.fields["tags"].queryset)


def test_the_endpoint_form_offers_endpoint_and_global_tags_of_its_section(login, world, oscar, endpoint_tag):
    response = login(oscar).get(admin_url(Endpoint, "change", world.a.endpoint.pk))

    assert offered_tags(response) == {world.a.tag, endpoint_tag}
    assert "acme-probe" not in html(response)  # the agent-scoped tag
    assert "annex-tag" not in html(response)


def test_the_endpoint_add_form_offers_no_agent_tags(login, world, oscar, endpoint_tag):
    response = login(oscar).get(admin_url(Endpoint, "add"))

    assert offered_tags(response) == {world.a.tag, endpoint_tag, world.annex_tag}
    assert_no_leak(response)


def test_an_agent_tag_posted_to_an_endpoint_is_refused(login, world, oscar):
    a = world.a
    data = {"address": "acme.example.net", "port": "443", "enabled": "on", "tags": [str(a.agent_tag.pk)]}

    response = login(oscar).post(admin_url(Endpoint, "change", a.endpoint.pk), data)

    assert response.status_code == 200
    assert "tags" in form_errors(response)
    assert list(a.endpoint.tags.all()) == [a.tag]


def test_the_agent_form_offers_agent_and_global_tags_of_its_section(login, world, oscar, endpoint_tag):
    response = login(oscar).get(admin_url(Agent, "change", world.a.agent.pk))

    assert offered_tags(response) == {world.a.tag, world.a.agent_tag}


# ---------------------------------------------------------------------------------------------
# The admin's log: every write through the admin is in "Recent actions"


def entries(user, flag=None) -> list[LogEntry]:
    found = LogEntry.objects.filter(user=user).order_by("action_time", "pk")
    return list(found if flag is None else found.filter(action_flag=flag))


def register(api_client, hostname: str = "fresh-probe") -> uuid.UUID:
    agent_id = uuid.uuid4()
    body = {
        "agentId": str(agent_id),
        "claimTokenHash": hashlib.sha256(TOKEN.encode()).hexdigest(),
        "hostname": hostname,
        "agentVersion": "0.4.2",
        "ipAddresses": [{"ip": "192.0.2.10", "iface": "eth0", "family": "ipv4", "recommended": True}],
    }
    assert api_client.post("/v1/agent/register", body, format="json").status_code == 201
    return agent_id


def claim_page(agent_id) -> str:
    return admin_url(AgentRegistration, "claim", agent_id)


def test_a_claim_is_an_addition_of_the_agent_in_recent_actions(login, api_client, world, oscar):
    agent_id = register(api_client)
    client = login(oscar)

    response = client.post(claim_page(agent_id), {"claim_token": TOKEN, "section": str(world.a.section.pk)})

    assert response.status_code == 302
    (entry,) = entries(oscar)
    assert (entry.action_flag, entry.object_id, entry.content_type.model) == (ADDITION, str(agent_id), "agent")
    assert entry.get_change_message() == "Claimed into Acme Tenant / acme-section."
    index = html(client.get("/admin/"))
    assert f'href="{admin_url(Agent, "change", agent_id)}"' in index.split('id="recent-actions-module"')[1]


def test_a_refused_claim_logs_nothing(login, api_client, world, oscar):
    agent_id = register(api_client)

    response = login(oscar).post(claim_page(agent_id), {"claim_token": "Z" * 64, "section": str(world.a.section.pk)})

    assert response.status_code == 200
    assert entries(oscar) == []


def test_a_discard_on_the_claim_page_is_a_deletion(login, api_client, world, oscar):
    agent_id = register(api_client, hostname="unwanted-probe")
    data = {"claim_token": TOKEN, "section": str(world.a.section.pk), "_discard": "1"}

    assert login(oscar).post(claim_page(agent_id), data).status_code == 302

    (entry,) = entries(oscar)
    assert (entry.action_flag, entry.object_id) == (DELETION, str(agent_id))
    assert entry.object_repr.startswith("unwanted-probe")


def test_the_discard_action_is_a_deletion(login, api_client, root):
    agent_id = register(api_client, hostname="squatter")

    response = login(root).post(
        admin_url(AgentRegistration), {"action": "discard_selected", "_selected_action": [str(agent_id)]}
    )

    assert response.status_code == 302
    assert [(entry.action_flag, entry.object_id) for entry in entries(root)] == [(DELETION, str(agent_id))]


@pytest.mark.parametrize(("action", "message"), [("revoke_keys", "Revoked"), ("rotate_keys", "Rotated")])
def test_the_key_actions_are_changes_of_the_agent(login, world, alice, action, message):
    agent = world.a.agent

    response = login(alice).post(admin_url(Agent), {"action": action, "_selected_action": [str(agent.pk)]})

    assert response.status_code in (200, 302)
    (entry,) = entries(alice)
    assert (entry.action_flag, entry.object_id) == (CHANGE, str(agent.pk))
    assert entry.get_change_message() == f"{message} the API key."


def test_a_refused_key_action_logs_nothing(login, world, alice):
    Agent.objects.filter(pk=world.a.agent.pk).update(revoked_at=NOW)

    login(alice).post(admin_url(Agent), {"action": "revoke_keys", "_selected_action": [str(world.a.agent.pk)]})

    assert entries(alice) == []


def test_adopting_an_unknown_endpoint_is_an_addition_of_the_endpoint(login, world, oscar):
    endpoint_id = uuid.uuid4()
    unknown = UnknownEndpoint.objects.create(
        agent=world.a.agent, endpoint_id=endpoint_id, first_seen_at=NOW, last_seen_at=NOW, sample_address="new.acme.net"
    )

    response = login(oscar).post(admin_url(UnknownEndpoint), {"action": "adopt", "_selected_action": [str(unknown.pk)]})

    assert response.status_code == 302
    (entry,) = entries(oscar)
    assert (entry.action_flag, entry.object_id, entry.content_type.model) == (ADDITION, str(endpoint_id), "endpoint")
    assert entry.get_admin_url() == admin_url(Endpoint, "change", endpoint_id)


def test_edits_through_the_services_are_logged_as_django_does(login, world, oscar):
    a = world.a
    client = login(oscar)
    agent_data = {
        "name": "renamed-agent",
        "section": str(a.section.pk),
        "tags": [str(a.agent_tag.pk)],
        **{f"{block}_overrides": json.dumps({}) for block in ("monitoring", "server", "storage")},
    }

    assert client.post(admin_url(Agent, "change", a.agent.pk), agent_data).status_code == 302
    added = client.post(
        admin_url(Endpoint, "add"), {"section": str(a.section.pk), "address": "added.acme.net", "enabled": "on"}
    )
    assert added.status_code == 302, form_errors(added)
    assert client.post(admin_url(Endpoint, "delete", a.endpoint.pk), {"post": "yes"}).status_code == 302

    logged = [(entry.action_flag, entry.object_repr) for entry in entries(oscar)]
    assert logged == [(CHANGE, "renamed-agent"), (ADDITION, "added.acme.net"), (DELETION, "acme.example.net:443")]
    recent = html(client.get("/admin/")).split('id="recent-actions-module"')[1]
    for text in ("renamed-agent", "added.acme.net", "acme.example.net:443"):
        assert text in recent


def recent_actions(client) -> list[tuple[str, str]]:
    """(kind, text) of each item of the index's "Recent actions", newest first."""
    module = html(client.get("/admin/")).split('id="recent-actions-module"')[1].split("</ul>")[0]
    items = module.split("<li class=")[1:]
    return [(item.split('"')[1], item.split("</span>")[1].split("<br>")[0].strip()) for item in items]


def test_recent_actions_lists_claims_key_actions_adoptions_and_discards(login, api_client, world, alice):
    a = world.a
    claimed, unwanted = register(api_client, "claimed-probe"), register(api_client, "unwanted-probe")
    unknown = UnknownEndpoint.objects.create(
        agent=a.agent, endpoint_id=uuid.uuid4(), first_seen_at=NOW, last_seen_at=NOW, sample_address="adopted.acme.net"
    )
    spare = Agent.objects.create(id=uuid.uuid4(), section=a.section, name="acme-spare")
    client = login(alice)
    section = str(a.section.pk)

    client.post(claim_page(claimed), {"claim_token": TOKEN, "section": section, "name": "claimed-probe"})
    client.post(admin_url(Agent), {"action": "revoke_keys", "_selected_action": [str(a.agent.pk)]})
    client.post(admin_url(Agent), {"action": "rotate_keys", "_selected_action": [str(spare.pk)]})
    client.post(admin_url(UnknownEndpoint), {"action": "adopt", "_selected_action": [str(unknown.pk)]})
    client.post(claim_page(unwanted), {"claim_token": TOKEN, "section": section, "_discard": "1"})

    shown = recent_actions(client)
    assert [kind for kind, _ in shown] == ["deletelink", "addlink", "changelink", "changelink", "addlink"]
    assert shown[0][1].startswith(f"unwanted-probe ({unwanted})")
    assert shown[1][1] == f'<a href="{admin_url(Endpoint, "change", unknown.endpoint_id)}">adopted.acme.net</a>'
    assert shown[2][1] == f'<a href="{admin_url(Agent, "change", spare.pk)}">acme-spare</a>'
    assert shown[3][1] == f'<a href="{admin_url(Agent, "change", a.agent.pk)}">acme-agent</a>'
    assert shown[4][1] == f'<a href="{admin_url(Agent, "change", claimed)}">claimed-probe</a>'


def test_a_bulk_deletion_the_service_refuses_leaves_no_deletion_in_the_log(login, root, world, monkeypatch):
    def refuse(*, actor, section):
        raise Conflict(f"Section {section.name!r} still has 1 agent(s); move or delete them first.")

    monkeypatch.setattr(tenant_services, "section_delete", refuse)

    response = login(root).post(
        admin_url(Section), {"action": "delete_selected", "post": "yes", "_selected_action": [str(world.annex.pk)]}
    )

    assert response.status_code == 302
    assert Section.objects.filter(pk=world.annex.pk).exists()
    assert entries(root, DELETION) == []


# ---------------------------------------------------------------------------------------------
# "View site"


def test_view_site_leads_to_the_admin(login, oscar):
    page = html(login(oscar).get("/admin/"))

    assert '<a href="/admin/">View site</a>' in page


def test_the_agent_page_shows_the_version_agents_see(login, alice, world):
    from endpoints.services import endpoint_create
    from tenants.services import Actor

    endpoint_create(actor=Actor.cli(), section=world.a.section, address="192.0.2.77")  # bumps the section
    agent = world.a.agent
    agent.refresh_from_db()
    page = login(alice).get(f"/admin/agents/agent/{agent.pk}/change/").content.decode()
    expected = Agent.objects.with_document_version().get(pk=agent.pk).document_version
    assert expected == agent.config_version + 1
    assert f'<div class="readonly">{expected}</div>' in page
