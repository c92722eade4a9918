"""Integrity of tenants, sections and memberships: in the database and as the services report it."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from smotra.errors import Conflict, Invalid
from tenants import services
from tenants.models import Membership, Section, Tenant
from tenants.services import Actor
from tests.factories import MembershipFactory, SectionFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def _as(user) -> Actor:
    return Actor(user=user, label=f"user:{user.username}")


def _refused_by_database(create) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


def test_the_database_refuses_a_duplicate_tenant_name(tenant_a):
    _refused_by_database(lambda: Tenant.objects.create(name="Tenant A"))
    assert Tenant.objects.filter(name="Tenant A").count() == 1


def test_the_service_reports_a_duplicate_tenant_name(superuser, tenant_a):
    with pytest.raises(Conflict) as refused:
        services.tenant_create(actor=_as(superuser), name="Tenant A")
    assert (refused.value.code, refused.value.field, refused.value.status) == ("already_exists", "name", 409)
    assert refused.value.message == "A tenant with this name already exists."
    assert Tenant.objects.count() == 1


def test_the_database_refuses_a_duplicate_section_name_in_a_tenant(section_a):
    _refused_by_database(lambda: Section.objects.create(tenant=section_a.tenant, name="Section A"))
    assert Section.objects.filter(name="Section A").count() == 1


def test_the_same_section_name_is_allowed_in_another_tenant(section_a, tenant_b):
    SectionFactory(tenant=tenant_b, name="Section A")
    assert Section.objects.filter(name="Section A").count() == 2


def test_the_api_allows_the_same_section_name_in_another_tenant(client_for, bob, section_a, tenant_b):
    response = client_for(bob).post(
        "/api/v1/sections", {"tenant_id": str(tenant_b.pk), "name": "Section A"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert Section.objects.filter(name="Section A").count() == 2


def test_the_service_reports_a_duplicate_section_name(alice, section_a):
    with pytest.raises(Conflict) as refused:
        services.section_create(actor=_as(alice), tenant=section_a.tenant, name="Section A")
    assert (refused.value.code, refused.value.field) == ("already_exists", "name")
    assert "already exists in this tenant" in refused.value.message
    assert Section.objects.count() == 1


def test_the_database_refuses_a_membership_twice(alice, tenant_a):
    _refused_by_database(lambda: Membership.objects.create(user=alice, tenant=tenant_a, role="viewer"))
    assert Membership.objects.filter(user=alice).count() == 1


def test_a_user_may_be_member_of_several_tenants(alice, tenant_b):
    MembershipFactory(user=alice, tenant=tenant_b, role="viewer")
    assert Membership.objects.filter(user=alice).count() == 2


def test_the_service_reports_a_membership_twice(alice, oscar, tenant_a):
    with pytest.raises(Conflict) as refused:
        services.membership_create(actor=_as(alice), tenant=tenant_a, username="oscar", role="admin")
    assert (refused.value.code, refused.value.field) == ("already_exists", "username")
    assert Membership.objects.get(user=oscar).role == "operator"


def test_the_service_reports_an_unknown_username(alice, tenant_a):
    with pytest.raises(Invalid) as refused:
        services.membership_create(actor=_as(alice), tenant=tenant_a, username="ghost", role="viewer")
    assert refused.value.field == "username"


@pytest.mark.parametrize("role", ["owner", "", "ADMIN"])
def test_the_database_refuses_an_unknown_role(tenant_a, role):
    user = UserFactory()
    _refused_by_database(lambda: Membership.objects.create(user=user, tenant=tenant_a, role=role))
    assert not Membership.objects.filter(user=user).exists()


def test_a_user_uses_a_uuid7_primary_key(alice):
    assert alice.pk.version == 7


def test_tenant_deletion_cascades_to_sections_and_memberships(tenant_a, section_a, alice):
    TenantFactory(name="Other")
    tenant_a.delete()
    assert not Section.objects.filter(pk=section_a.pk).exists()
    assert not Membership.objects.filter(user=alice).exists()
    assert Tenant.objects.filter(name="Other").exists()
