"""What the admin shows to whom: changelists, filters, pickers and change pages scoped to tenants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings

from agents.models import Agent
from endpoints.models import Endpoint, Tag, Topology
from tenants.models import AuditEvent, Membership, Role, Section, Tenant, User
from tests.admin import LEAK_MARKER, admin_url, db_snapshot, html, staff_user, table_row

# (model, what of tenant A the changelist shows): every changelist a member can open.
CHANGELISTS = [
    (Tag, "acme-web"),
    (Endpoint, "acme.example.net"),
    (Topology, "acme-mesh"),
    (Agent, "acme-agent"),
    (Section, "acme-section"),
    (Membership, "Acme Tenant"),
    (AuditEvent, "acme-audit-entry"),
    (Tenant, "Acme Tenant"),
]
SMOTRA_APPS = ["/admin/agents/", "/admin/endpoints/", "/admin/tenants/"]


def side_objects(side) -> list:
    return [side.tag, side.endpoint, side.topology, side.agent, side.section, side.audit, side.tenant]


def assert_no_leak(response, echoed: str = "") -> None:
    """Nothing of tenant B on the page (``echoed``: a search term the page repeats back)."""
    page = html(response).replace(echoed, "") if echoed else html(response)
    assert LEAK_MARKER not in page.lower()


# ---------------------------------------------------------------------------------------------
# Index and changelists


def test_it_lists_the_apps_on_the_index_for_a_member(login, oscar):
    response = login(oscar).get("/admin/")

    assert response.status_code == 200
    for app in SMOTRA_APPS:
        assert app in html(response)
    assert admin_url(User) not in html(response)  # accounts are superusers' business


@pytest.mark.parametrize(("model", "shown"), CHANGELISTS, ids=[model.__name__ for model, _ in CHANGELISTS])
def test_its_changelists_show_only_the_members_tenant(login, world, oscar, model, shown):
    staff_user("bravo-admin", world.b.tenant, Role.ADMIN)

    response = login(oscar).get(admin_url(model))

    assert response.status_code == 200
    assert shown in html(response)
    assert_no_leak(response)  # neither in the rows nor in the sidebar filters
    assert response.context["cl"].result_count >= 1


def test_its_agent_filters_offer_only_the_members_tags_and_sections(login, world, oscar):
    response = login(oscar).get(admin_url(Agent))

    page = html(response)
    for choice in ("acme-probe (agent)", "acme-web (global)", "annex-tag", "acme-section", "acme-annex"):
        assert choice in page
    for side_object in (world.b.tag, world.b.agent_tag, world.b.section, world.b.tenant):
        assert str(side_object.pk) not in page
    assert_no_leak(response)


@pytest.mark.parametrize(
    "query",
    ["q=bravo-host", "section__id__exact={section}", "tags__id__exact={tag}", "section__tenant__id__exact={tenant}"],
)
def test_its_filters_find_nothing_of_another_tenant_by_guessed_ids(login, world, oscar, query):
    b = world.b
    url = f"{admin_url(Agent)}?{query.format(section=b.section.pk, tag=b.agent_tag.pk, tenant=b.tenant.pk)}"

    response = login(oscar).get(url)

    assert response.status_code == 200
    # A filter with a single choice is hidden and its parameter ignored: the user's own rows remain.
    assert {agent.section.tenant_id for agent in response.context["cl"].result_list} <= {world.a.tenant.pk}
    assert_no_leak(response, echoed="bravo-host")


def test_its_autocomplete_offers_only_the_members_tags(login, world, oscar):
    params = {"app_label": "endpoints", "model_name": "endpoint", "field_name": "tags", "term": ""}

    response = login(oscar).get("/admin/autocomplete/", params)

    assert response.status_code == 200
    names = {result["text"] for result in response.json()["results"]}
    assert names == {"acme-web (global)", "acme-probe (agent)", "annex-tag (global)"}


def test_a_superuser_sees_both_tenants(login, world):
    root = User.objects.create(username="root", is_staff=True, is_superuser=True)

    client = login(root)

    for model, shown in CHANGELISTS:
        response = client.get(admin_url(model))
        assert response.status_code == 200, model.__name__
        assert shown in html(response)
        assert shown.lower().replace("acme", LEAK_MARKER) in html(response).lower()


# ---------------------------------------------------------------------------------------------
# Another tenant's objects by id


@pytest.mark.parametrize("view", ["change", "delete", "history"])
def test_it_renders_nothing_of_another_tenant_by_id(login, world, oscar, view):
    client = login(oscar)

    for obj in side_objects(world.b):
        response = client.get(admin_url(type(obj), view, obj.pk))
        # 403 where the role falls short anyway (deleting agents needs admin)
        assert response.status_code in (302, 403, 404), (type(obj).__name__, response.status_code)
        assert_no_leak(response)
        if response.status_code == 302:
            assert_no_leak(client.get(response.url))


def test_it_changes_nothing_of_another_tenant_on_post(login, world, oscar):
    client = login(oscar)
    b = world.b
    posts = [
        (b.tag, {"name": "stolen", "scope": "global"}),
        (b.endpoint, {"address": "stolen.example.net", "enabled": "on", "tags": [str(b.tag.pk)]}),
        (b.topology, {"name": "stolen", "type": "full-mesh", "enabled": "on"}),
        (b.agent, {"name": "stolen", "section": str(world.a.section.pk), "monitoring_overrides": "{}"}),
        (b.section, {"name": "stolen"}),
        (b.tenant, {"name": "stolen"}),
    ]
    before = db_snapshot()

    for obj, data in posts:
        response = client.post(admin_url(type(obj), "change", obj.pk), data)
        assert response.status_code in (302, 403, 404), type(obj).__name__
        response = client.post(admin_url(type(obj), "delete", obj.pk), {"post": "yes"})
        assert response.status_code in (302, 403, 404), type(obj).__name__
    ids = [str(obj.pk) for obj in (b.tag, b.endpoint)]
    client.post(admin_url(Tag), {"action": "delete_selected", "post": "yes", "_selected_action": ids})

    assert db_snapshot() == before


@pytest.mark.parametrize("action", ["revoke_keys", "rotate_keys"])
def test_its_key_actions_ignore_agents_of_another_tenant(login, world, action):
    bravo_admin = staff_user("bravo-admin", world.b.tenant, Role.ADMIN)
    before = db_snapshot()

    response = login(bravo_admin).post(
        admin_url(Agent), {"action": action, "_selected_action": [str(world.a.agent.pk)], "index": "0"}
    )

    assert response.status_code in (200, 302)
    assert "acme" not in html(response).lower()
    assert db_snapshot() == before


# ---------------------------------------------------------------------------------------------
# Roles: viewers read, people without a membership see nothing, non-staff cannot log in


def test_a_viewer_reads_changelists_and_change_pages(login, world, vera):
    client = login(vera)

    for model, shown in CHANGELISTS:
        response = client.get(admin_url(model))
        assert response.status_code == 200, model.__name__
        assert shown in html(response)
    for obj in side_objects(world.a):
        response = client.get(admin_url(type(obj), "change", obj.pk))
        assert response.status_code == 200, type(obj).__name__
        assert not response.context["has_change_permission"]


@pytest.mark.parametrize("model", [Tag, Endpoint, Topology, Section, Membership, Tenant, Agent, AuditEvent])
def test_a_viewer_cannot_open_add_pages(login, vera, model):
    assert login(vera).get(admin_url(model, "add")).status_code == 403


def test_a_viewer_cannot_change_or_delete(login, world, vera):
    client = login(vera)
    a = world.a
    posts = [
        (a.tag, {"name": "renamed", "scope": "global"}),
        (a.endpoint, {"address": "renamed.example.net", "enabled": "on", "tags": [str(a.tag.pk)]}),
        (a.topology, {"name": "renamed", "type": "one-way", "enabled": "on", "members-TOTAL_FORMS": "0"}),
        (a.agent, {"name": "renamed", "section": str(a.section.pk), "monitoring_overrides": "{}"}),
        (a.section, {"name": "renamed"}),
    ]
    before = db_snapshot()

    for obj, data in posts:
        assert client.post(admin_url(type(obj), "change", obj.pk), data).status_code == 403
        assert client.post(admin_url(type(obj), "delete", obj.pk), {"post": "yes"}).status_code == 403
    response = client.post(
        admin_url(Tag), {"action": "delete_selected", "post": "yes", "_selected_action": [str(a.tag.pk)]}
    )

    assert response.status_code in (200, 302, 403)
    assert db_snapshot() == before


def test_a_staff_user_without_membership_sees_no_smotra_app(login, world):
    nobody = staff_user("nobody")
    client = login(nobody)

    response = client.get("/admin/")

    assert response.status_code == 200
    for app in SMOTRA_APPS:
        assert app not in html(response)
    for model, _shown in CHANGELISTS:
        assert client.get(admin_url(model)).status_code == 403, model.__name__
    assert client.get(admin_url(Tag, "change", world.a.tag.pk)).status_code == 403


def test_a_member_without_staff_flag_is_sent_to_the_login_page(login, world):
    member = User.objects.create(username="walker")
    Membership.objects.create(user=member, tenant=world.a.tenant, role=Role.ADMIN)

    response = login(member).get(admin_url(Tag))

    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


# ---------------------------------------------------------------------------------------------
# The agent list's status column and filter

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def agents_by_status(world):
    """One agent of section A per status, relative to NOW and ``agent.offline_after``."""
    offline_after = timedelta(seconds=settings.SMOTRA.agent.offline_after)
    made = {}
    for name, last_seen, revoked in [
        ("agent-online", NOW - offline_after + timedelta(seconds=30), None),
        ("agent-offline", NOW - offline_after - timedelta(seconds=30), None),
        ("agent-never", None, None),
        ("agent-revoked", NOW - timedelta(seconds=5), NOW - timedelta(days=1)),
    ]:
        made[name] = Agent.objects.create(
            id=f"00000000-0000-4000-8000-{len(made):012d}",
            section=world.a.section,
            name=name,
            last_seen_at=last_seen,
            revoked_at=revoked,
        )
    return made


EXPECTED_STATUS = {
    "agent-online": "online",
    "agent-offline": "offline",
    "agent-never": "never seen",
    "agent-revoked": "revoked",
}


def test_its_agent_list_shows_each_status(login, oscar, agents_by_status):
    with time_machine.travel(NOW, tick=False):
        response = login(oscar).get(admin_url(Agent))

    assert response.status_code == 200
    for name, label in EXPECTED_STATUS.items():
        row = table_row(html(response), f">{name}<")
        css = f"agent-status-{label.replace(' ', '-')}"
        assert f'<td class="field-status_column"><span class="agent-status {css}"' in row
        assert f">{label}" in row  # the badge's text (with its age: tests/admin/test_admin_control_room.py)


@pytest.mark.parametrize(
    ("status", "expected"),
    [("online", {"agent-online"}), ("offline", {"agent-offline"}), ("never_seen", {"agent-never", "acme-agent"})],
)
def test_its_agent_list_filters_by_status(login, oscar, agents_by_status, status, expected):
    with time_machine.travel(NOW, tick=False):
        response = login(oscar).get(admin_url(Agent), {"status": status})

    assert response.status_code == 200
    assert {agent.name for agent in response.context["cl"].result_list} == expected
    assert_no_leak(response)


def test_its_revoked_filter_ignores_other_tenants(login, world, oscar, agents_by_status):
    Agent.objects.filter(pk=world.b.agent.pk).update(revoked_at=NOW)

    with time_machine.travel(NOW, tick=False):
        response = login(oscar).get(admin_url(Agent), {"status": "revoked"})

    assert [agent.name for agent in response.context["cl"].result_list] == ["agent-revoked"]
