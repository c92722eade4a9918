"""{prefix}/sections: tenant admins manage them, members read them, other tenants see nothing."""

from __future__ import annotations

import pytest

from agents.models import Agent
from endpoints.models import Endpoint, Tag
from tenants.models import AuditEvent, Section
from tests.api_cases import MISSING, ResourceAPICases
from tests.factories import AgentFactory, EndpointFactory, SectionFactory, TagFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/sections"


class TestSectionsAPI(ResourceAPICases):
    """401, cross-tenant, role, bad-input, pagination and verb cases (tests/api_cases.py)."""

    path = "/sections"
    items_key = "sections"
    model = Section
    write_role = "admin"
    create_in_other_tenant = (400, "validation_error", "tenant_id")
    bad_bodies = [
        ("no-tenant", {"tenant_id": MISSING}, "tenant_id"),
        ("bad-uuid", {"tenant_id": "not-a-uuid"}, "tenant_id"),
        ("unknown-tenant", {"tenant_id": "00000000-0000-0000-0000-000000000000"}, "tenant_id"),
        ("no-name", {"name": MISSING}, "name"),
        ("empty-name", {"name": ""}, "name"),
        ("long-name", {"name": "x" * 201}, "name"),
    ]
    bad_changes = [
        ("empty-name", {"name": ""}, "name"),
        ("long-name", {"name": "x" * 201}, "name"),
    ]

    @pytest.fixture
    def object_a(self, section_a):
        return section_a

    @pytest.fixture
    def object_b(self, section_b):
        return section_b

    @pytest.fixture
    def create_body(self, tenant_a):
        return {"tenant_id": str(tenant_a.pk), "name": "Mine"}

    @pytest.fixture
    def update_body(self):
        return {"name": "Mine"}


def test_members_list_the_sections_of_their_tenants(client_for, vera, bob, section_a, section_b):
    other = SectionFactory(tenant=section_a.tenant, name="Another")
    listed = client_for(vera).get(URL).json()["sections"]
    assert {s["id"] for s in listed} == {str(section_a.pk), str(other.pk)}
    assert [s["id"] for s in client_for(bob).get(URL).json()["sections"]] == [str(section_b.pk)]


def test_a_member_retrieves_a_section(client_for, vera, section_a):
    response = client_for(vera).get(f"{URL}/{section_a.pk}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "tenant_id", "name", "description", "monitor_all_endpoints", "created_at", "updated_at"}
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
