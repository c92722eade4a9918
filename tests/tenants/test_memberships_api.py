"""{prefix}/memberships: tenant admins manage their tenant's members; every change is audited."""

from __future__ import annotations

import pytest

from tenants import services
from tenants.models import AuditEvent, Membership
from tenants.services import Actor
from tests.api_cases import MISSING, ResourceAPICases
from tests.factories import MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/memberships"


@pytest.fixture
def carol(db):
    """A user without any membership."""
    return UserFactory(username="carol")


class TestMembershipsAPI(ResourceAPICases):
    """401, cross-tenant, role, bad-input, pagination and verb cases (tests/api_cases.py)."""

    path = "/memberships"
    items_key = "memberships"
    model = Membership
    write_role = "admin"
    create_in_other_tenant = (400, "validation_error", "tenant_id")
    bad_bodies = [
        ("unknown-user", {"username": "nobody"}, "username"),
        ("bad-role", {"role": "owner"}, "role"),
        ("empty-role", {"role": ""}, "role"),
        ("no-role", {"role": MISSING}, "role"),
        ("no-username", {"username": MISSING}, "username"),
    ]
    bad_changes = [
        ("bad-role", {"role": "root"}, "role"),
    ]

    @pytest.fixture
    def object_a(self, alice):
        return Membership.objects.get(user=alice)

    @pytest.fixture
    def object_b(self, bob):
        return Membership.objects.get(user=bob)

    @pytest.fixture
    def create_body(self, tenant_a, carol):
        return {"tenant_id": str(tenant_a.pk), "username": "carol", "role": "admin"}

    @pytest.fixture
    def update_body(self):
        return {"role": "viewer"}


def test_members_list_the_memberships_of_their_tenants(client_for, alice, oscar, vera, bob):
    listed = client_for(vera).get(URL).json()["memberships"]
    assert sorted((m["username"], m["role"]) for m in listed) == [
        ("alice", "admin"),
        ("oscar", "operator"),
        ("vera", "viewer"),
    ]
    assert set(listed[0]) == {"id", "tenant_id", "username", "role", "created_at"}
    assert [m["username"] for m in client_for(bob).get(URL).json()["memberships"]] == ["bob"]


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
def test_a_tenant_admin_adds_a_member(client_for, alice, tenant_a, carol, prefix):
    body = {"tenant_id": str(tenant_a.pk), "username": "carol", "role": "operator"}
    response = client_for(alice).post(f"{prefix}/memberships", body, format="json")
    assert response.status_code == 201, response.content
    membership = Membership.objects.get(user=carol, tenant=tenant_a)
    assert membership.role == "operator"
    assert response.json()["id"] == str(membership.pk)
    assert response.json()["username"] == "carol"


def test_adding_a_member_is_audited(client_for, alice, tenant_a, carol):
    body = {"tenant_id": str(tenant_a.pk), "username": "carol", "role": "viewer"}
    membership_id = client_for(alice).post(URL, body, format="json").json()["id"]
    event = AuditEvent.objects.get(action="membership.create")
    assert event.actor == alice
    assert event.actor_label == "user:alice"
    assert event.tenant == tenant_a
    assert (event.object_type, event.object_id) == ("membership", membership_id)
    assert event.details == {"username": "carol", "role": "viewer"}
    assert event.source_address == "127.0.0.1"


def test_a_new_member_sees_the_tenant(client_for, alice, tenant_a, carol):
    assert client_for(carol).get("/api/v1/tenants").json()["tenants"] == []
    body = {"tenant_id": str(tenant_a.pk), "username": "carol", "role": "viewer"}
    client_for(alice).post(URL, body, format="json")
    assert [t["name"] for t in client_for(carol).get("/api/v1/tenants").json()["tenants"]] == ["Tenant A"]


def test_it_refuses_adding_an_existing_member(client_for, alice, oscar, tenant_a, db_state, assert_error):
    before = db_state()
    body = {"tenant_id": str(tenant_a.pk), "username": "oscar", "role": "admin"}
    assert_error(client_for(alice).post(URL, body, format="json"), 409, "already_exists", field="username")
    assert db_state() == before


def test_an_admin_cannot_add_herself_to_another_tenant(client_for, bob, tenant_a, db_state, assert_error):
    before = db_state()
    body = {"tenant_id": str(tenant_a.pk), "username": "bob", "role": "admin"}
    assert_error(client_for(bob).post(URL, body, format="json"), 400, "validation_error", field="tenant_id")
    assert db_state() == before


def test_a_tenant_admin_changes_a_role(client_for, alice, vera):
    membership = Membership.objects.get(user=vera)
    response = client_for(alice).patch(f"{URL}/{membership.pk}", {"role": "operator"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["role"] == "operator"
    membership.refresh_from_db()
    assert membership.role == "operator"
    event = AuditEvent.objects.get(action="membership.update")
    assert event.actor == alice
    assert event.details == {"username": "vera", "role": "operator", "previous_role": "viewer"}


def test_a_tenant_admin_removes_a_member(client_for, alice, oscar, tenant_a, assert_error):
    membership = Membership.objects.get(user=oscar)
    response = client_for(alice).delete(f"{URL}/{membership.pk}")
    assert response.status_code == 204
    assert not Membership.objects.filter(pk=membership.pk).exists()
    event = AuditEvent.objects.get(action="membership.delete")
    assert (event.actor, event.tenant, event.object_id) == (alice, tenant_a, str(membership.pk))
    assert event.details == {"username": "oscar", "role": "operator"}
    # The removed member's token still authenticates, but the tenant is gone from view.
    assert client_for(oscar).get("/api/v1/tenants").json()["tenants"] == []
    assert_error(client_for(oscar).get(f"/api/v1/tenants/{tenant_a.pk}"), 404, "not_found")


def test_a_superuser_manages_any_tenant(client_for, superuser, tenant_b, carol):
    body = {"tenant_id": str(tenant_b.pk), "username": "carol", "role": "admin"}
    assert client_for(superuser).post(URL, body, format="json").status_code == 201
    assert Membership.objects.get(user=carol).tenant == tenant_b


def test_it_paginates_memberships(client_for, alice, tenant_a):
    MembershipFactory.create_batch(24, tenant=tenant_a)
    client = client_for(alice)
    page = client.get(URL, {"page": 3, "page_size": 10}).json()
    assert len(page["memberships"]) == 5
    assert page["pagination"]["total_items"] == 25
    assert page["pagination"]["has_next"] is False
    assert client.get(URL, {"page": 4, "page_size": 10}).json()["memberships"] == []


def test_an_admin_of_one_tenant_cannot_manage_another_where_she_only_views(client_for, alice, carol, assert_error):
    tenant_c = TenantFactory(name="Tenant C")
    MembershipFactory(user=alice, tenant=tenant_c, role="viewer")
    member = MembershipFactory(tenant=tenant_c, role="operator")
    client = client_for(alice)
    body = {"tenant_id": str(tenant_c.pk), "username": "carol", "role": "admin"}
    assert_error(client.post(URL, body, format="json"), 403, "forbidden")
    assert_error(client.patch(f"{URL}/{member.pk}", {"role": "admin"}, format="json"), 403, "forbidden")
    assert_error(client.delete(f"{URL}/{member.pk}"), 403, "forbidden")
    assert not Membership.objects.filter(user=carol).exists()
    member.refresh_from_db()
    assert member.role == "operator"


@pytest.mark.parametrize("change", ["create", "update", "delete"])
def test_a_membership_change_and_its_audit_event_commit_together(monkeypatch, alice, vera, tenant_a, carol, change):
    def broken_audit(**kwargs):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(services, "audit_record", broken_audit)
    actor = Actor(user=alice, label="user:alice")
    target = Membership.objects.get(user=vera)
    with pytest.raises(RuntimeError):
        if change == "create":
            services.membership_create(actor=actor, tenant=tenant_a, username="carol", role="viewer")
        elif change == "update":
            services.membership_update(actor=actor, membership=target, role="admin")
        else:
            services.membership_delete(actor=actor, membership=target)
    assert not Membership.objects.filter(user=carol).exists()
    assert Membership.objects.get(user=vera).role == "viewer"
