"""{prefix}/sections: tenant admins manage them, members read them, other tenants see nothing."""

from __future__ import annotations

import pytest

from agents.models import Agent
from endpoints.models import Endpoint, Tag
from tenants.models import AuditEvent, Section
from tests.factories import AgentFactory, EndpointFactory, SectionFactory, TagFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/sections"


def test_it_answers_401_without_credentials(api_client, tenant_a, section_a, db_state, assert_error):
    before = db_state()
    assert_error(api_client.get(URL), 401, "unauthorized")
    assert_error(api_client.get(f"{URL}/{section_a.pk}"), 401, "unauthorized")
    body = {"tenant_id": str(tenant_a.pk), "name": "x"}
    assert_error(api_client.post(URL, body, format="json"), 401, "unauthorized")
    assert_error(api_client.delete(f"{URL}/{section_a.pk}"), 401, "unauthorized")
    assert db_state() == before


def test_members_list_the_sections_of_their_tenants(client_for, vera, bob, section_a, section_b):
    other = SectionFactory(tenant=section_a.tenant, name="Another")
    listed = client_for(vera).get(URL).json()["sections"]
    assert {s["id"] for s in listed} == {str(section_a.pk), str(other.pk)}
    assert [s["id"] for s in client_for(bob).get(URL).json()["sections"]] == [str(section_b.pk)]


def test_a_member_retrieves_a_section(client_for, vera, section_a):
    response = client_for(vera).get(f"{URL}/{section_a.pk}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "tenant_id", "name", "description", "created_at", "updated_at"}
    assert (body["id"], body["tenant_id"], body["name"]) == (str(section_a.pk), str(section_a.tenant_id), "Section A")


@pytest.mark.parametrize("prefix", ["/v1", ""])
def test_it_serves_sections_under_the_other_prefixes(client_for, alice, section_a, prefix):
    client = client_for(alice)
    assert [s["id"] for s in client.get(f"{prefix}/sections").json()["sections"]] == [str(section_a.pk)]
    response = client.post(f"{prefix}/sections", {"tenant_id": str(section_a.tenant_id), "name": "P"}, format="json")
    assert response.status_code == 201


def test_a_tenant_admin_creates_a_section(client_for, alice, tenant_a):
    response = client_for(alice).post(
        URL, {"tenant_id": str(tenant_a.pk), "name": "Berlin", "description": "DC 1"}, format="json"
    )
    assert response.status_code == 201, response.content
    section = Section.objects.get(tenant=tenant_a, name="Berlin")
    assert response.json()["id"] == str(section.pk)
    assert response.json()["tenant_id"] == str(tenant_a.pk)
    assert section.description == "DC 1"
    assert AuditEvent.objects.filter(action="section.create", actor=alice, object_id=str(section.pk)).exists()


@pytest.mark.parametrize("who", ["oscar", "vera"])
def test_it_refuses_section_creation_below_admin(request, client_for, tenant_a, db_state, assert_error, who):
    client = client_for(request.getfixturevalue(who))
    before = db_state()
    response = client.post(URL, {"tenant_id": str(tenant_a.pk), "name": "Mine"}, format="json")
    assert_error(response, 403, "forbidden")
    assert db_state() == before


def test_it_refuses_creating_in_another_tenant(client_for, bob, tenant_a, db_state, assert_error):
    before = db_state()
    response = client_for(bob).post(URL, {"tenant_id": str(tenant_a.pk), "name": "Mine"}, format="json")
    assert_error(response, 400, "validation_error", field="tenant_id")
    assert db_state() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x"}, "tenant_id"),
        ({"tenant_id": "not-a-uuid", "name": "x"}, "tenant_id"),
        ({"tenant_id": "00000000-0000-0000-0000-000000000000", "name": "x"}, "tenant_id"),
        ({"tenant_id": "TENANT"}, "name"),
        ({"tenant_id": "TENANT", "name": ""}, "name"),
        ({"tenant_id": "TENANT", "name": "x" * 201}, "name"),
    ],
    ids=["no-tenant", "bad-uuid", "unknown-tenant", "no-name", "empty-name", "long-name"],
)
def test_it_rejects_bad_section_bodies(client_for, alice, tenant_a, db_state, assert_error, body, field):
    body = {key: str(tenant_a.pk) if value == "TENANT" else value for key, value in body.items()}
    before = db_state()
    assert_error(client_for(alice).post(URL, body, format="json"), 400, "validation_error", field=field)
    assert db_state() == before


def test_it_refuses_a_duplicate_section_name(client_for, alice, section_a, db_state, assert_error):
    before = db_state()
    response = client_for(alice).post(URL, {"tenant_id": str(section_a.tenant_id), "name": "Section A"}, format="json")
    assert_error(response, 409, "already_exists", field="name")
    assert db_state() == before


def test_a_tenant_admin_renames_a_section(client_for, alice, section_a, tenant_b):
    response = client_for(alice).patch(
        f"{URL}/{section_a.pk}", {"name": "Renamed", "tenant_id": str(tenant_b.pk)}, format="json"
    )
    assert response.status_code == 200, response.content
    section_a.refresh_from_db()
    assert section_a.name == "Renamed"
    assert section_a.tenant.name == "Tenant A"  # the tenant is not changeable
    assert AuditEvent.objects.filter(action="section.update", actor=alice).exists()


def test_it_refuses_renaming_to_a_taken_name(client_for, alice, section_a, db_state, assert_error):
    SectionFactory(tenant=section_a.tenant, name="Taken")
    before = db_state()
    response = client_for(alice).patch(f"{URL}/{section_a.pk}", {"name": "Taken"}, format="json")
    assert_error(response, 409, "already_exists", field="name")
    assert db_state() == before


@pytest.mark.parametrize("who", ["oscar", "vera"])
def test_it_refuses_section_changes_below_admin(request, client_for, section_a, db_state, assert_error, who):
    client = client_for(request.getfixturevalue(who))
    before = db_state()
    assert_error(client.patch(f"{URL}/{section_a.pk}", {"name": "Mine"}, format="json"), 403, "forbidden")
    assert_error(client.delete(f"{URL}/{section_a.pk}"), 403, "forbidden")
    assert db_state() == before


def test_another_tenant_is_invisible(client_for, bob, alice, section_a, section_b, db_state, assert_error):
    client = client_for(bob)
    before = db_state()
    assert str(section_a.pk) not in [s["id"] for s in client.get(URL).json()["sections"]]
    assert_error(client.get(f"{URL}/{section_a.pk}"), 404, "not_found")
    assert_error(client.patch(f"{URL}/{section_a.pk}", {"name": "Mine"}, format="json"), 404, "not_found")
    assert_error(client.delete(f"{URL}/{section_a.pk}"), 404, "not_found")
    assert db_state() == before


def test_a_tenant_admin_deletes_an_empty_section(client_for, alice, section_a):
    tag = TagFactory(section=section_a)
    endpoint = EndpointFactory(section=section_a, tags=[tag])
    response = client_for(alice).delete(f"{URL}/{section_a.pk}")
    assert response.status_code == 204
    assert not Section.objects.filter(pk=section_a.pk).exists()
    assert not Tag.objects.filter(pk=tag.pk).exists()
    assert not Endpoint.objects.filter(pk=endpoint.pk).exists()
    assert AuditEvent.objects.filter(action="section.delete", actor=alice, object_id=str(section_a.pk)).exists()


def test_it_refuses_deleting_a_section_with_agents(client_for, alice, section_a, db_state, assert_error):
    agent = AgentFactory(section=section_a)
    EndpointFactory(section=section_a)
    before = db_state()
    body = assert_error(client_for(alice).delete(f"{URL}/{section_a.pk}"), 409, "has_agents")
    assert "agent" in body["message"]
    assert db_state() == before
    assert Agent.objects.filter(pk=agent.pk).exists()


def test_it_has_no_put(client_for, alice, section_a, db_state, assert_error):
    before = db_state()
    assert_error(
        client_for(alice).put(f"{URL}/{section_a.pk}", {"name": "x"}, format="json"), 405, "method_not_allowed"
    )
    assert db_state() == before


def test_it_paginates_sections(client_for, alice, tenant_a):
    SectionFactory.create_batch(25, tenant=tenant_a)
    client = client_for(alice)
    page = client.get(URL, {"page": 2, "page_size": 10}).json()
    assert len(page["sections"]) == 10
    assert page["pagination"]["total_items"] == 25
    assert page["pagination"]["total_pages"] == 3
    beyond = client.get(URL, {"page": 9, "page_size": 10}).json()
    assert beyond["sections"] == []
    assert beyond["pagination"]["has_next"] is False


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"page": 0}, "page"),
        ({"page": "abc"}, "page"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 101}, "page_size"),
    ],
)
def test_it_rejects_bad_pagination(client_for, alice, assert_error, query, field):
    assert_error(client_for(alice).get(URL, query), 400, "validation_error", field=field)
