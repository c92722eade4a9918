"""Integrity of tags, endpoints and topologies: in the database, in the services and at the API."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from endpoints import services
from endpoints.models import Endpoint, Tag, Topology, TopologyMember
from smotra.errors import Conflict, Invalid
from tenants.services import Actor
from tests.factories import SectionFactory, TagFactory, TopologyFactory, TopologyMemberFactory

pytestmark = pytest.mark.django_db


def _as(user) -> Actor:
    return Actor(user=user, label=f"user:{user.username}")


def _refused_by_database(create) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


# Tags


def test_the_database_refuses_a_duplicate_tag_name_in_a_section(section_a):
    TagFactory(section=section_a, name="edge")
    _refused_by_database(lambda: Tag.objects.create(section=section_a, name="edge", scope="agent"))
    assert Tag.objects.filter(name="edge").count() == 1


def test_the_same_tag_name_is_allowed_in_other_sections(section_a, section_b):
    TagFactory(section=section_a, name="edge")
    TagFactory(section=section_b, name="edge")
    TagFactory(section=SectionFactory(tenant=section_a.tenant), name="edge")
    assert Tag.objects.filter(name="edge").count() == 3


def test_the_service_reports_a_duplicate_tag_name(oscar, section_a):
    TagFactory(section=section_a, name="edge")
    with pytest.raises(Conflict) as refused:
        services.tag_create(actor=_as(oscar), section=section_a, name="edge", scope="agent")
    assert (refused.value.status, refused.value.code, refused.value.field) == (409, "already_exists", "name")
    assert Tag.objects.count() == 1


@pytest.mark.parametrize("scope", ["bogus", "", "AGENT"])
def test_the_database_refuses_an_unknown_tag_scope(section_a, scope):
    _refused_by_database(lambda: Tag.objects.create(section=section_a, name="x", scope=scope))
    assert not Tag.objects.exists()


def test_the_api_names_a_bad_scope(client_for, oscar, section_a, assert_error):
    body = {"section_id": str(section_a.pk), "name": "x", "scope": "bogus"}
    assert_error(client_for(oscar).post("/api/v1/tags", body, format="json"), 400, "validation_error", field="scope")
    assert not Tag.objects.exists()


# Endpoints


@pytest.mark.parametrize("port", [0, 65536, 100000])
def test_the_database_refuses_a_port_out_of_range(section_a, port):
    _refused_by_database(lambda: Endpoint.objects.create(section=section_a, address="example.org", port=port))
    assert not Endpoint.objects.exists()


@pytest.mark.parametrize("port", [None, 1, 65535])
def test_the_database_accepts_ports_in_range(section_a, port):
    Endpoint.objects.create(section=section_a, address="example.org", port=port)
    assert Endpoint.objects.get().port == port


@pytest.mark.parametrize("port", [0, 65536])
def test_the_api_refuses_a_port_out_of_range(client_for, oscar, section_a, assert_error, port):
    body = {"section_id": str(section_a.pk), "address": "example.org", "port": port}
    response = client_for(oscar).post("/api/v1/endpoints", body, format="json")
    assert_error(response, 400, "validation_error", field="port")
    assert not Endpoint.objects.exists()


# Topologies


def test_the_database_refuses_a_duplicate_topology_name_in_a_section(section_a, section_b):
    TopologyFactory(section=section_a, name="mesh")
    TopologyFactory(section=section_b, name="mesh")
    _refused_by_database(lambda: Topology.objects.create(section=section_a, name="mesh", type="one-way"))
    assert Topology.objects.filter(name="mesh").count() == 2


def test_the_service_reports_a_duplicate_topology_name(oscar, section_a):
    TopologyFactory(section=section_a, name="mesh")
    with pytest.raises(Conflict) as refused:
        services.topology_create(actor=_as(oscar), section=section_a, name="mesh", type="one-way")
    assert (refused.value.code, refused.value.field) == ("already_exists", "name")
    assert Topology.objects.count() == 1


@pytest.mark.parametrize("kind", ["star", "", "full_mesh"])
def test_the_database_refuses_an_unknown_topology_type(section_a, kind):
    _refused_by_database(lambda: Topology.objects.create(section=section_a, name="x", type=kind))
    assert not Topology.objects.exists()


def test_the_api_names_a_bad_topology_type(client_for, oscar, section_a, assert_error):
    body = {"section_id": str(section_a.pk), "name": "x", "type": "star"}
    response = client_for(oscar).post("/api/v1/topologies", body, format="json")
    assert_error(response, 400, "validation_error", field="type")
    assert not Topology.objects.exists()


def test_the_database_refuses_a_member_twice_in_the_same_role(section_a):
    member = TopologyMemberFactory(topology__section=section_a, role="monitor")
    _refused_by_database(
        lambda: TopologyMember.objects.create(topology=member.topology, tag=member.tag, role="monitor")
    )
    TopologyMember.objects.create(topology=member.topology, tag=member.tag, role="target")
    assert TopologyMember.objects.count() == 2


def test_the_database_refuses_an_unknown_member_role(section_a):
    topology = TopologyFactory(section=section_a)
    tag = TagFactory(section=section_a)
    _refused_by_database(lambda: TopologyMember.objects.create(topology=topology, tag=tag, role="observer"))
    assert not TopologyMember.objects.exists()


def test_the_service_reports_a_member_twice(oscar, section_a):
    member = TopologyMemberFactory(topology__section=section_a, role="target")
    with pytest.raises(Conflict) as refused:
        services.topology_member_add(actor=_as(oscar), topology=member.topology, tag=member.tag, role="target")
    assert refused.value.code == "already_exists"
    assert TopologyMember.objects.count() == 1


def test_the_service_refuses_a_member_tag_of_another_section(oscar, section_a):
    topology = TopologyFactory(section=section_a)
    foreign = TagFactory(section=SectionFactory(tenant=section_a.tenant))
    with pytest.raises(Invalid) as refused:
        services.topology_member_add(actor=_as(oscar), topology=topology, tag=foreign, role="monitor")
    assert refused.value.field == "tag"
    assert not TopologyMember.objects.exists()


def test_deleting_a_tag_removes_its_topology_memberships(section_a):
    member = TopologyMemberFactory(topology__section=section_a)
    member.tag.delete()
    assert not TopologyMember.objects.exists()
    assert Topology.objects.filter(pk=member.topology_id).exists()
