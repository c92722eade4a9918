"""{prefix}/topologies: who monitors whom, with monitor and target tags of the same section."""

from __future__ import annotations

import pytest

from endpoints.models import Topology, TopologyMember
from tenants.models import AuditEvent
from tests.api_cases import ResourceAPICases
from tests.factories import SectionFactory, TagFactory, TopologyFactory, TopologyMemberFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/topologies"


@pytest.fixture
def monitors(section_a):
    return TagFactory(section=section_a, name="monitors", scope="agent")


@pytest.fixture
def targets(section_a):
    return TagFactory(section=section_a, name="targets", scope="endpoint")


@pytest.fixture
def topology_a(section_a, monitors, targets):
    topology = TopologyFactory(section=section_a, name="mesh")
    TopologyMemberFactory(topology=topology, tag=monitors, role="monitor")
    TopologyMemberFactory(topology=topology, tag=targets, role="target")
    return topology


def _members(topology) -> set[tuple[str, str]]:
    return set(TopologyMember.objects.filter(topology=topology).values_list("tag__name", "role"))


class TestTopologiesAPI(ResourceAPICases):
    """401, cross-tenant, viewer, bad-input, pagination and verb cases (tests/api_cases.py)."""

    path = "/topologies"
    items_key = "topologies"
    model = Topology
    write_role = "operator"
    create_in_other_tenant = (400, "validation_error", "section_id")
    bad_bodies = [
        ("unknown-type", {"type": "star"}, "type"),
        ("type-with-underscore", {"type": "full_mesh"}, "type"),
        ("empty-name", {"name": ""}, "name"),
        ("long-name", {"name": "x" * 101}, "name"),
        ("enabled-not-a-bool", {"enabled": "sometimes"}, "enabled"),
        ("bad-section-id", {"section_id": "not-a-uuid"}, "section_id"),
        ("monitors-of-another-section", {"monitor_tag_ids": "OTHER_SECTION_TAGS"}, "monitor_tag_ids"),
        ("targets-of-another-section", {"target_tag_ids": "OTHER_SECTION_TAGS"}, "target_tag_ids"),
        ("monitors-of-another-tenant", {"monitor_tag_ids": "OTHER_TENANT_TAGS"}, "monitor_tag_ids"),
    ]
    bad_changes = [
        ("unknown-type", {"type": "ring"}, "type"),
        ("monitors-of-another-tenant", {"enabled": False, "monitor_tag_ids": "OTHER_TENANT_TAGS"}, "monitor_tag_ids"),
        ("targets-of-another-tenant", {"name": "fresh", "target_tag_ids": "OTHER_TENANT_TAGS"}, "target_tag_ids"),
    ]

    @pytest.fixture
    def object_a(self, topology_a):
        return topology_a

    @pytest.fixture
    def object_b(self, section_b):
        return TopologyFactory(section=section_b, name="bobs")

    @pytest.fixture
    def create_body(self, section_a):
        return {"section_id": str(section_a.pk), "name": "new", "type": "one-way"}

    @pytest.fixture
    def update_body(self):
        return {"enabled": False}

    @pytest.fixture
    def placeholders(self, section_a, section_b):
        return {
            "OTHER_SECTION_TAGS": [str(TagFactory(section=SectionFactory(tenant=section_a.tenant)).pk)],
            "OTHER_TENANT_TAGS": [str(TagFactory(section=section_b).pk)],
        }


def test_a_viewer_lists_and_retrieves_topologies(client_for, vera, topology_a, monitors, targets):
    client = client_for(vera)
    assert [t["id"] for t in client.get(URL).json()["topologies"]] == [str(topology_a.pk)]
    body = client.get(f"{URL}/{topology_a.pk}").json()
    assert body == {
        "id": str(topology_a.pk),
        "section_id": str(topology_a.section_id),
        "name": "mesh",
        "type": "full-mesh",
        "enabled": True,
        "monitor_tag_ids": [str(monitors.pk)],
        "target_tag_ids": [str(targets.pk)],
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
def test_an_operator_creates_a_topology(client_for, oscar, section_a, monitors, targets, prefix):
    body = {
        "section_id": str(section_a.pk),
        "name": "hub",
        "type": "hub-and-spoke",
        "monitor_tag_ids": [str(monitors.pk)],
        "target_tag_ids": [str(targets.pk), str(monitors.pk)],
    }
    response = client_for(oscar).post(f"{prefix}/topologies", body, format="json")
    assert response.status_code == 201, response.content
    topology = Topology.objects.get(section=section_a, name="hub")
    assert (topology.type, topology.enabled) == ("hub-and-spoke", True)
    # One tag may hold both roles.
    assert _members(topology) == {("monitors", "monitor"), ("targets", "target"), ("monitors", "target")}
    assert response.json()["monitor_tag_ids"] == [str(monitors.pk)]
    assert sorted(response.json()["target_tag_ids"]) == sorted([str(targets.pk), str(monitors.pk)])
    assert AuditEvent.objects.filter(action="topology.create", actor=oscar, object_id=str(topology.pk)).exists()


def test_the_type_defaults_to_full_mesh(client_for, oscar, section_a):
    response = client_for(oscar).post(URL, {"section_id": str(section_a.pk), "name": "plain"}, format="json")
    assert response.status_code == 201, response.content
    assert Topology.objects.get(name="plain").type == "full-mesh"


def test_it_refuses_a_duplicate_topology_name(client_for, oscar, topology_a, db_state, assert_error):
    before = db_state()
    body = {"section_id": str(topology_a.section_id), "name": "mesh", "type": "one-way"}
    body = assert_error(client_for(oscar).post(URL, body, format="json"), 409, "already_exists", field="name")
    assert body["message"] == "A topology with this name already exists in this section."
    assert db_state() == before


def test_an_operator_changes_a_topology(client_for, oscar, topology_a, section_a, monitors, targets):
    spare = TagFactory(section=section_a, name="spare")
    body = {"type": "one-way", "enabled": False, "name": "mesh-2", "target_tag_ids": [str(spare.pk)]}
    response = client_for(oscar).patch(f"{URL}/{topology_a.pk}", body, format="json")
    assert response.status_code == 200, response.content
    topology_a.refresh_from_db()
    assert (topology_a.type, topology_a.enabled, topology_a.name) == ("one-way", False, "mesh-2")
    # Monitors untouched (not in the body), targets replaced.
    assert _members(topology_a) == {("monitors", "monitor"), ("spare", "target")}
    assert response.json()["target_tag_ids"] == [str(spare.pk)]


def test_an_empty_list_removes_all_members_of_a_role(client_for, oscar, topology_a):
    response = client_for(oscar).patch(f"{URL}/{topology_a.pk}", {"monitor_tag_ids": []}, format="json")
    assert response.status_code == 200
    assert _members(topology_a) == {("targets", "target")}


def test_it_refuses_renaming_to_a_taken_name(client_for, oscar, topology_a, db_state, assert_error):
    TopologyFactory(section=topology_a.section, name="taken")
    before = db_state()
    response = client_for(oscar).patch(f"{URL}/{topology_a.pk}", {"name": "taken"}, format="json")
    assert_error(response, 409, "already_exists", field="name")
    assert db_state() == before


def test_an_operator_deletes_a_topology(client_for, oscar, topology_a, monitors):
    response = client_for(oscar).delete(f"{URL}/{topology_a.pk}")
    assert response.status_code == 204
    assert not Topology.objects.filter(pk=topology_a.pk).exists()
    assert not TopologyMember.objects.filter(topology_id=topology_a.pk).exists()
    assert monitors.__class__.objects.filter(pk=monitors.pk).exists()
    assert AuditEvent.objects.filter(action="topology.delete", actor=oscar).exists()


def test_it_paginates_topologies(client_for, vera, section_a):
    TopologyFactory.create_batch(25, section=section_a)
    client = client_for(vera)
    page = client.get(URL, {"page": 2, "page_size": 20}).json()
    assert len(page["topologies"]) == 5
    assert page["pagination"]["total_pages"] == 2
    assert (page["pagination"]["has_next"], page["pagination"]["has_previous"]) == (False, True)
    assert client.get(URL, {"page": 3, "page_size": 20}).json()["topologies"] == []
