"""Writes through the admin: add and change forms go through the services, pickers stay in the
user's tenants and in the object's section, roles limit who may write what."""

from __future__ import annotations

import json

import pytest

from agents.models import Agent
from endpoints.models import Endpoint, MemberRole, Tag, TagScope, Topology
from smotra.errors import Conflict
from tenants import services as tenant_services
from tenants.models import AuditEvent, Membership, Role, Section, Tenant, User
from tests.admin import admin_url, db_snapshot, form_errors, html, management_form


def version(agent) -> int:
    return Agent.objects.with_document_version().get(pk=agent.pk).document_version


def endpoint_data(section, address: str, *tags, **extra) -> dict:
    return {
        "section": str(section.pk),
        "address": address,
        "port": "8443",
        "enabled": "on",
        "description": "",
        "tags": [str(tag.pk) for tag in tags],
        **extra,
    }


def agent_data(agent, **changes) -> dict:
    """What the agent's change form posts when nothing is touched, with ``changes`` applied."""
    data = {
        "name": agent.name,
        "section": str(agent.section_id),
        "tags": [str(tag.pk) for tag in agent.tags.all()],
        "monitoring_overrides": json.dumps(agent.monitoring_overrides),
        "server_overrides": json.dumps(agent.server_overrides),
        "storage_overrides": json.dumps(agent.storage_overrides),
    }
    return {**data, **changes}


def topology_data(section, name: str, members: list[tuple]) -> dict:
    data = {"section": str(section.pk), "name": name, "type": "one-way", "enabled": "on"}
    data.update(management_form("members", total=len(members)))
    for index, (tag, role) in enumerate(members):
        data[f"members-{index}-tag"] = str(tag.pk)
        data[f"members-{index}-role"] = role
    return data


# ---------------------------------------------------------------------------------------------
# Endpoints


def test_an_operator_adds_an_endpoint_in_their_section(login, world, oscar):
    a = world.a
    before = version(a.agent)

    response = login(oscar).post(admin_url(Endpoint, "add"), endpoint_data(a.section, "new.example.net", a.tag))

    assert response.status_code == 302, form_errors(response)
    endpoint = Endpoint.objects.get(address="new.example.net")
    assert (endpoint.section, endpoint.port, list(endpoint.tags.all())) == (a.section, 8443, [a.tag])
    assert version(a.agent) == before + 1
    assert version(world.b.agent) == 1
    assert AuditEvent.objects.filter(action="endpoint.create", object_id=str(endpoint.pk), actor=oscar).exists()


@pytest.mark.parametrize(
    ("make", "field"),
    [
        pytest.param(lambda w: endpoint_data(w.b.section, "new.example.net"), "section", id="section of tenant B"),
        pytest.param(lambda w: endpoint_data(w.a.section, "new.example.net", w.b.tag), "tags", id="tag of tenant B"),
        pytest.param(
            lambda w: endpoint_data(w.a.section, "new.example.net", w.annex_tag), "tags", id="tag of another section"
        ),
    ],
)
def test_it_refuses_an_endpoint_outside_the_users_reach(login, world, oscar, make, field):
    before = db_snapshot()

    response = login(oscar).post(admin_url(Endpoint, "add"), make(world))

    assert response.status_code == 200
    assert field in form_errors(response)
    assert db_snapshot() == before


def test_its_endpoint_form_offers_only_tags_of_the_endpoints_section(login, world, oscar):
    a = world.a

    response = login(oscar).get(admin_url(Endpoint, "change", a.endpoint.pk))

    assert response.status_code == 200
    offered = set(response.context["adminform"].form.fields["tags"].queryset)
    assert offered == {a.tag}  # a.agent_tag is agent-scoped: not an endpoint's choice
    assert "annex-tag" not in html(response)
    assert "bravo" not in html(response).lower()


def test_an_operator_changes_an_endpoint(login, world, oscar):
    a = world.a
    frontends = Tag.objects.create(section=a.section, name="acme-frontends", scope=TagScope.ENDPOINT)
    before = version(a.agent)
    data = endpoint_data(a.section, "changed.example.net", frontends)

    response = login(oscar).post(admin_url(Endpoint, "change", a.endpoint.pk), data)

    assert response.status_code == 302, form_errors(response)
    a.endpoint.refresh_from_db()
    assert (a.endpoint.address, list(a.endpoint.tags.all())) == ("changed.example.net", [frontends])
    assert version(a.agent) == before + 1


@pytest.mark.parametrize("foreign", ["annex_tag", "bravo_tag"])
def test_it_refuses_endpoint_tags_of_another_section_on_change(login, world, oscar, foreign):
    a = world.a
    tag = world.annex_tag if foreign == "annex_tag" else world.b.tag
    before = db_snapshot()

    response = login(oscar).post(
        admin_url(Endpoint, "change", a.endpoint.pk), endpoint_data(a.section, "changed.example.net", tag)
    )

    assert response.status_code == 200
    assert "tags" in form_errors(response)
    assert db_snapshot() == before


def test_an_operator_deletes_an_endpoint(login, world, oscar):
    a = world.a
    before = version(a.agent)

    response = login(oscar).post(admin_url(Endpoint, "delete", a.endpoint.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Endpoint.objects.filter(pk=a.endpoint.pk).exists()
    assert version(a.agent) == before + 1


# ---------------------------------------------------------------------------------------------
# Tags and topologies


def test_an_operator_adds_a_tag_but_not_in_tenant_b(login, world, oscar):
    client = login(oscar)

    response = client.post(
        admin_url(Tag, "add"), {"section": str(world.a.section.pk), "name": "fresh", "scope": "agent"}
    )
    assert response.status_code == 302, form_errors(response)
    assert Tag.objects.filter(section=world.a.section, name="fresh").exists()

    response = client.post(
        admin_url(Tag, "add"), {"section": str(world.b.section.pk), "name": "sneaky", "scope": "agent"}
    )
    assert response.status_code == 200
    assert "section" in form_errors(response)
    assert not Tag.objects.filter(name="sneaky").exists()


def test_it_refuses_a_duplicate_tag_name_on_the_form(login, world, oscar):
    before = db_snapshot()

    response = login(oscar).post(
        admin_url(Tag, "add"), {"section": str(world.a.section.pk), "name": world.a.tag.name, "scope": "global"}
    )

    assert response.status_code == 200
    assert form_errors(response)
    assert db_snapshot() == before


def test_an_operator_adds_a_topology_with_inline_members(login, world, oscar):
    a = world.a
    before = version(a.agent)
    data = topology_data(a.section, "new-mesh", [(a.agent_tag, MemberRole.MONITOR), (a.tag, MemberRole.TARGET)])

    response = login(oscar).post(admin_url(Topology, "add"), data)

    assert response.status_code == 302, form_errors(response)
    topology = Topology.objects.get(name="new-mesh")
    members = {(member.tag, member.role) for member in topology.members.all()}
    assert members == {(a.agent_tag, MemberRole.MONITOR), (a.tag, MemberRole.TARGET)}
    assert topology.section == a.section
    assert version(a.agent) > before
    assert version(world.b.agent) == 1


def test_it_refuses_a_topology_member_of_tenant_b(login, world, oscar):
    a = world.a
    data = topology_data(a.section, "new-mesh", [(a.agent_tag, MemberRole.MONITOR), (world.b.tag, MemberRole.TARGET)])
    before = db_snapshot()

    response = login(oscar).post(admin_url(Topology, "add"), data)

    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][0].formset.errors[1]["tag"]
    assert db_snapshot() == before


def test_it_refuses_a_topology_member_of_another_section(login, world, oscar):
    a = world.a
    data = topology_data(a.section, "new-mesh", [(world.annex_tag, MemberRole.TARGET)])
    before = db_snapshot()

    response = login(oscar).post(admin_url(Topology, "add"), data, follow=True)

    assert "another section" in html(response)
    assert db_snapshot() == before


def test_its_topology_change_form_offers_only_tags_of_the_section(login, world, oscar):
    response = login(oscar).get(admin_url(Topology, "change", world.a.topology.pk))

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert set(formset.form.base_fields["tag"].queryset) == {world.a.tag, world.a.agent_tag}


def test_an_operator_removes_a_topology_member_inline(login, world, oscar):
    a = world.a
    member = a.topology.members.get()
    before = version(a.agent)
    data = {"name": a.topology.name, "type": a.topology.type, "enabled": "on"}
    data.update(management_form("members", total=1, initial=1))
    data.update({"members-0-id": str(member.pk), "members-0-topology": str(a.topology.pk)})
    data.update({"members-0-tag": str(member.tag_id), "members-0-role": member.role, "members-0-DELETE": "on"})

    response = login(oscar).post(admin_url(Topology, "change", a.topology.pk), data)

    assert response.status_code == 302, form_errors(response)
    assert not a.topology.members.exists()
    assert version(a.agent) > before


# ---------------------------------------------------------------------------------------------
# Agents


def test_an_operator_renames_and_retags_an_agent(login, world, oscar):
    a = world.a
    before = version(a.agent)

    response = login(oscar).post(
        admin_url(Agent, "change", a.agent.pk), agent_data(a.agent, name="renamed", tags=[str(a.tag.pk)])
    )

    assert response.status_code == 302, form_errors(response)
    a.agent.refresh_from_db()
    assert (a.agent.name, list(a.agent.tags.all())) == ("renamed", [a.tag])
    assert version(a.agent) == before + 1
    assert AuditEvent.objects.filter(action="agent.update", object_id=str(a.agent.pk)).exists()


def test_its_agent_form_offers_only_tags_of_the_agents_section(login, world, oscar):
    response = login(oscar).get(admin_url(Agent, "change", world.a.agent.pk))

    assert response.status_code == 200
    assert set(response.context["adminform"].form.fields["tags"].queryset) == {world.a.tag, world.a.agent_tag}
    assert set(response.context["adminform"].form.fields["section"].queryset) == {world.a.section, world.annex}


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda w: {"tags": [str(w.annex_tag.pk)]}, id="tag of another section"),
        pytest.param(lambda w: {"tags": [str(w.b.tag.pk)]}, id="tag of tenant B"),
        pytest.param(lambda w: {"section": str(w.b.section.pk)}, id="section of tenant B"),
        pytest.param(lambda w: {"monitoring_overrides": '{"interval_secs": 0}'}, id="zero interval"),
        pytest.param(lambda w: {"monitoring_overrides": '{"unknown_key": 1}'}, id="unknown key"),
        pytest.param(lambda w: {"server_overrides": '{"api_key": "x"}'}, id="api key"),
        pytest.param(lambda w: {"storage_overrides": "[1, 2]"}, id="not an object"),
        pytest.param(lambda w: {"monitoring_overrides": "{not json"}, id="not json"),
        pytest.param(lambda w: {"name": ""}, id="empty name"),
    ],
)
def test_it_refuses_bad_agent_changes(login, world, oscar, make):
    changes = make(world)
    before = db_snapshot()

    response = login(oscar).post(admin_url(Agent, "change", world.a.agent.pk), agent_data(world.a.agent, **changes))

    assert response.status_code == 200
    assert set(form_errors(response)) == set(changes)  # the error is on the field that was wrong
    assert db_snapshot() == before


def test_an_operator_sets_valid_overrides(login, world, oscar):
    a = world.a
    before = version(a.agent)
    overrides = {"interval_secs": 30, "traceroute_on_failure": True}

    response = login(oscar).post(
        admin_url(Agent, "change", a.agent.pk), agent_data(a.agent, monitoring_overrides=json.dumps(overrides))
    )

    assert response.status_code == 302, form_errors(response)
    a.agent.refresh_from_db()
    assert a.agent.monitoring_overrides == overrides
    assert version(a.agent) == before + 1


def test_agents_cannot_be_added_from_the_admin(login, root, world, oscar):
    assert login(oscar).get(admin_url(Agent, "add")).status_code == 403
    assert login(root).get(admin_url(Agent, "add")).status_code == 403


def test_an_operator_cannot_delete_an_agent(login, world, oscar):
    before = db_snapshot()

    response = login(oscar).post(admin_url(Agent, "delete", world.a.agent.pk), {"post": "yes"})

    assert response.status_code == 403
    assert db_snapshot() == before


# ---------------------------------------------------------------------------------------------
# Sections, memberships and tenants: admins and superusers


@pytest.mark.parametrize("model", [Section, Membership, Tenant])
def test_an_operator_cannot_add_sections_memberships_or_tenants(login, world, oscar, model):
    client = login(oscar)
    before = db_snapshot()

    assert client.get(admin_url(model, "add")).status_code == 403
    data = {"tenant": str(world.a.tenant.pk), "name": "sneaky", "username": "oscar", "role": "admin"}
    assert client.post(admin_url(model, "add"), data).status_code == 403
    assert db_snapshot() == before


def test_an_admin_adds_a_section_in_their_tenant_only(login, world, alice):
    client = login(alice)

    response = client.post(admin_url(Section, "add"), {"tenant": str(world.a.tenant.pk), "name": "acme-new"})
    assert response.status_code == 302, form_errors(response)
    assert Section.objects.filter(tenant=world.a.tenant, name="acme-new").exists()

    response = client.post(admin_url(Section, "add"), {"tenant": str(world.b.tenant.pk), "name": "sneaky"})
    assert response.status_code == 200
    assert "tenant" in form_errors(response)
    assert not Section.objects.filter(name="sneaky").exists()


def test_an_admin_adds_a_membership_by_username(login, world, alice):
    newcomer = User.objects.create(username="newcomer")

    response = login(alice).post(
        admin_url(Membership, "add"), {"tenant": str(world.a.tenant.pk), "username": "newcomer", "role": "operator"}
    )

    assert response.status_code == 302, form_errors(response)
    membership = Membership.objects.get(user=newcomer)
    assert (membership.tenant, membership.role) == (world.a.tenant, Role.OPERATOR)
    event = AuditEvent.objects.get(action="membership.create")
    assert (event.actor, event.tenant, event.object_id) == (alice, world.a.tenant, str(membership.pk))
    assert event.details == {"username": "newcomer", "role": "operator"}


@pytest.mark.parametrize(
    ("username", "tenant", "field"),
    [("ghost", "a", "username"), ("alice", "a", "__all__"), ("newcomer", "b", "tenant")],
    ids=["unknown user", "already a member", "tenant B"],
)
def test_it_refuses_bad_memberships(login, world, alice, username, tenant, field):
    User.objects.create(username="newcomer")
    tenant_id = (world.a if tenant == "a" else world.b).tenant.pk
    before = db_snapshot()

    response = login(alice).post(
        admin_url(Membership, "add"), {"tenant": str(tenant_id), "username": username, "role": "viewer"}
    )

    assert response.status_code == 200
    assert field in form_errors(response)
    assert db_snapshot() == before


def test_an_admin_changes_their_tenant_but_cannot_add_or_delete_tenants(login, world, alice):
    client = login(alice)
    data = {"name": "Acme Renamed", "description": "", **management_form("memberships", total=0, initial=0)}

    response = client.post(admin_url(Tenant, "change", world.a.tenant.pk), data)

    assert response.status_code == 302, form_errors(response)
    assert Tenant.objects.filter(name="Acme Renamed").exists()
    assert client.get(admin_url(Tenant, "add")).status_code == 403
    assert client.post(admin_url(Tenant, "delete", world.a.tenant.pk), {"post": "yes"}).status_code == 403
    assert Tenant.objects.count() == 2


def test_a_superuser_adds_a_tenant(login, root, db):
    data = {"name": "Charlie Tenant", "description": "third", **management_form("memberships", total=0)}

    response = login(root).post(admin_url(Tenant, "add"), data)

    assert response.status_code == 302, form_errors(response)
    tenant = Tenant.objects.get(name="Charlie Tenant")
    assert AuditEvent.objects.filter(action="tenant.create", tenant=tenant, actor=root).exists()


def test_it_refuses_to_delete_a_section_that_still_has_agents(login, root, world):
    section = world.a.section
    client = login(root)

    response = client.post(admin_url(Section, "delete", section.pk), {"post": "yes"})

    assert response.status_code == 200
    assert "would require deleting the following protected related objects" in html(response)
    assert "acme-agent" in html(response)
    assert Section.objects.filter(pk=section.pk).exists()
    assert not AuditEvent.objects.filter(action="section.delete").exists()


def test_it_refuses_to_bulk_delete_a_section_that_still_has_agents(login, root, world):
    ids = [str(world.a.section.pk), str(world.annex.pk)]

    response = login(root).post(
        admin_url(Section), {"action": "delete_selected", "post": "yes", "_selected_action": ids}
    )

    assert response.status_code == 200
    assert "protected related objects" in html(response)
    assert Section.objects.filter(pk__in=ids).count() == 2


def test_a_superuser_deletes_an_empty_section(login, root, world):
    response = login(root).post(admin_url(Section, "delete", world.annex.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Section.objects.filter(pk=world.annex.pk).exists()
    assert AuditEvent.objects.filter(action="section.delete", object_id=str(world.annex.pk)).exists()


def test_a_deletion_the_service_refuses_is_rolled_back_with_its_reason(login, root, world, monkeypatch):
    """A refusal the delete page could not foresee (an agent claimed meanwhile): no "deleted" message."""

    def refuse(*, actor, section):
        raise Conflict(f"Section {section.name!r} still has 1 agent(s); move or delete them first.")

    monkeypatch.setattr(tenant_services, "section_delete", refuse)
    before = db_snapshot()

    response = login(root).post(admin_url(Section, "delete", world.annex.pk), {"post": "yes"}, follow=True)

    assert response.status_code == 200
    shown = [str(message) for message in response.context["messages"]]
    assert shown == ["Section 'acme-annex' still has 1 agent(s); move or delete them first."]
    assert db_snapshot() == before  # the admin's own deletion log entry included
