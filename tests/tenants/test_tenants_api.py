"""{prefix}/tenants: superusers create and delete, members read, tenant admins rename."""

from __future__ import annotations

import pytest

from agents.models import Agent
from tenants.models import AuditEvent, Section, Tenant
from tests.api_cases import MISSING, ResourceAPICases
from tests.factories import AgentFactory, SectionFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/tenants"


class TestTenantsAPI(ResourceAPICases):
    """401, cross-tenant, role, bad-input, pagination and verb cases (tests/api_cases.py)."""

    path = "/tenants"
    items_key = "tenants"
    model = Tenant
    write_role = {"create": "superuser", "update": "admin", "delete": "superuser"}
    # A tenant has no parent to aim at: bob, an admin of another tenant, is simply not a superuser.
    create_in_other_tenant = (403, "forbidden", None)
    bad_bodies = [
        ("missing", {"name": MISSING}, "name"),
        ("empty", {"name": ""}, "name"),
        ("too-long", {"name": "x" * 201}, "name"),
        ("null", {"name": None}, "name"),
        ("description-not-a-string", {"description": 5 * [1]}, "description"),
    ]
    bad_changes = [
        ("empty-name", {"name": ""}, "name"),
        ("long-name", {"name": "x" * 201}, "name"),
    ]

    @pytest.fixture
    def object_a(self, tenant_a):
        return tenant_a

    @pytest.fixture
    def object_b(self, tenant_b):
        return tenant_b

    @pytest.fixture
    def create_body(self):
        return {"name": "Mine"}

    @pytest.fixture
    def update_body(self):
        return {"name": "Hijacked"}


def test_members_list_only_their_tenants(client_for, alice, bob, superuser):
    TenantFactory(name="Tenant C")
    assert [t["name"] for t in client_for(alice).get(URL).json()["tenants"]] == ["Tenant A"]
    assert [t["name"] for t in client_for(bob).get(URL).json()["tenants"]] == ["Tenant B"]
    assert [t["name"] for t in client_for(superuser).get(URL).json()["tenants"]] == [
        "Tenant A",
        "Tenant B",
        "Tenant C",
    ]
    loner = UserFactory(username="loner")
    assert client_for(loner).get(URL).json()["tenants"] == []


def test_a_member_retrieves_their_tenant(client_for, vera, tenant_a):
    response = client_for(vera).get(f"{URL}/{tenant_a.pk}")
    assert response.status_code == 200
    assert response.json() == {
        "id": str(tenant_a.pk),
        "name": "Tenant A",
        "description": "",
        "created_at": response.json()["created_at"],
        "updated_at": response.json()["updated_at"],
    }


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
def test_it_serves_tenants_under_every_prefix(client_for, alice, tenant_a, prefix):
    client = client_for(alice)
    assert [t["id"] for t in client.get(f"{prefix}/tenants").json()["tenants"]] == [str(tenant_a.pk)]
    assert client.get(f"{prefix}/tenants/{tenant_a.pk}").json()["name"] == "Tenant A"


def test_a_superuser_creates_a_tenant(client_for, superuser):
    response = client_for(superuser).post(URL, {"name": "Acme", "description": "HQ"}, format="json")
    assert response.status_code == 201, response.content
    tenant = Tenant.objects.get(name="Acme")
    assert response.json()["id"] == str(tenant.pk)
    assert tenant.description == "HQ"
    event = AuditEvent.objects.get(action="tenant.create")
    assert (event.actor, event.tenant, event.object_id) == (superuser, tenant, str(tenant.pk))


def test_it_refuses_a_duplicate_tenant_name(client_for, superuser, tenant_a, db_state, assert_error):
    before = db_state()
    body = assert_error(client_for(superuser).post(URL, {"name": "Tenant A"}, format="json"), 409, "already_exists")
    assert body["details"] == [{"field": "name", "issue": "A tenant with this name already exists."}]
    assert db_state() == before


def test_a_tenant_admin_renames_their_tenant(client_for, alice, tenant_a):
    response = client_for(alice).patch(f"{URL}/{tenant_a.pk}", {"name": "Tenant A2"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Tenant A2"
    tenant_a.refresh_from_db()
    assert tenant_a.name == "Tenant A2"
    assert AuditEvent.objects.filter(action="tenant.update", actor=alice, tenant=tenant_a).exists()


def test_it_refuses_renaming_to_an_existing_name(client_for, superuser, tenant_a, tenant_b, db_state, assert_error):
    before = db_state()
    response = client_for(superuser).patch(f"{URL}/{tenant_a.pk}", {"name": "Tenant B"}, format="json")
    assert_error(response, 409, "already_exists", field="name")
    assert db_state() == before


def test_a_superuser_deletes_an_empty_tenant(client_for, superuser, tenant_a, section_a):
    response = client_for(superuser).delete(f"{URL}/{tenant_a.pk}")
    assert response.status_code == 204
    assert not Tenant.objects.filter(pk=tenant_a.pk).exists()
    assert not Section.objects.filter(pk=section_a.pk).exists()
    assert AuditEvent.objects.filter(action="tenant.delete", actor=superuser).exists()


def test_it_refuses_deleting_a_tenant_with_agents(client_for, superuser, tenant_a, db_state, assert_error):
    agent = AgentFactory(section=SectionFactory(tenant=tenant_a))
    before = db_state()
    body = assert_error(client_for(superuser).delete(f"{URL}/{tenant_a.pk}"), 409, "has_agents")
    assert "agent" in body["message"]
    assert db_state() == before
    assert Agent.objects.filter(pk=agent.pk).exists()


def test_it_paginates_tenants(client_for, superuser):
    TenantFactory.create_batch(25)
    client = client_for(superuser)
    first = client.get(URL, {"page_size": 10}).json()
    assert len(first["tenants"]) == 10
    assert first["pagination"] == {
        "page": 1,
        "page_size": 10,
        "total_items": 25,
        "total_pages": 3,
        "has_next": True,
        "has_previous": False,
    }
    last = client.get(URL, {"page": 3, "page_size": 10}).json()
    assert len(last["tenants"]) == 5
    assert (last["pagination"]["has_next"], last["pagination"]["has_previous"]) == (False, True)
    beyond = client.get(URL, {"page": 4, "page_size": 10}).json()
    assert beyond["tenants"] == []
    assert beyond["pagination"]["has_next"] is False
    assert beyond["pagination"]["total_items"] == 25
    default = client.get(URL).json()
    assert (len(default["tenants"]), default["pagination"]["page_size"]) == (20, 20)
    ids = [t["id"] for page in (1, 2, 3) for t in client.get(URL, {"page": page, "page_size": 10}).json()["tenants"]]
    assert len(set(ids)) == 25


def test_it_accepts_the_largest_page_size(client_for, alice):
    assert client_for(alice).get(URL, {"page_size": 100}).json()["pagination"]["page_size"] == 100
