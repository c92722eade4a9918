"""{prefix}/topologies: who monitors whom, with monitor and target tags of the same section."""

from __future__ import annotations

import pytest

from endpoints.models import Topology, TopologyMember
from tenants.models import AuditEvent
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


def test_it_answers_401_without_credentials(api_client, section_a, topology_a, db_state, assert_error):
    before = db_state()
    assert_error(api_client.get(URL), 401, "unauthorized")
    assert_error(api_client.get(f"{URL}/{topology_a.pk}"), 401, "unauthorized")
    body = {"section_id": str(section_a.pk), "name": "x", "type": "one-way"}
    assert_error(api_client.post(URL, body, format="json"), 401, "unauthorized")
    assert_error(api_client.patch(f"{URL}/{topology_a.pk}", {"enabled": False}, format="json"), 401, "unauthorized")
    assert_error(api_client.delete(f"{URL}/{topology_a.pk}"), 401, "unauthorized")
    assert db_state() == before


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


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"type": "star"}, "type"),
        ({"type": "full_mesh"}, "type"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"enabled": "sometimes"}, "enabled"),
        ({"section_id": "not-a-uuid"}, "section_id"),
        ({"monitor_tag_ids": "FOREIGN"}, "monitor_tag_ids"),
        ({"target_tag_ids": "FOREIGN"}, "target_tag_ids"),
        ({"monitor_tag_ids": "OTHER_TENANT"}, "monitor_tag_ids"),
    ],
)
def test_it_rejects_bad_topology_bodies(
    client_for, oscar, section_a, section_b, monitors, db_state, assert_error, changes, field
):
    foreign = TagFactory(section=SectionFactory(tenant=section_a.tenant))
    other_tenant = TagFactory(section=section_b)
    ids = {"FOREIGN": [str(foreign.pk)], "OTHER_TENANT": [str(other_tenant.pk)]}
    changes = {key: ids.get(value, value) if isinstance(value, str) else value for key, value in changes.items()}
    body = {"section_id": str(section_a.pk), "name": "new", "type": "one-way", **changes}
    before = db_state()
    assert_error(client_for(oscar).post(URL, body, format="json"), 400, "validation_error", field=field)
    assert db_state() == before


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


@pytest.mark.parametrize(
    ("changes", "status", "code", "field"),
    [
        ({"type": "ring"}, 400, "validation_error", "type"),
        ({"name": "taken"}, 409, "already_exists", "name"),
        ({"enabled": False, "monitor_tag_ids": "FOREIGN"}, 400, "validation_error", "monitor_tag_ids"),
        ({"name": "fresh", "target_tag_ids": "FOREIGN"}, 400, "validation_error", "target_tag_ids"),
    ],
)
def test_it_rejects_bad_topology_changes(
    client_for, oscar, topology_a, section_b, db_state, assert_error, changes, status, code, field
):
    TopologyFactory(section=topology_a.section, name="taken")
    foreign = [str(TagFactory(section=section_b).pk)]
    changes = {key: foreign if value == "FOREIGN" else value for key, value in changes.items()}
    before = db_state()
    response = client_for(oscar).patch(f"{URL}/{topology_a.pk}", changes, format="json")
    assert_error(response, status, code, field=field)
    assert db_state() == before


def test_an_operator_deletes_a_topology(client_for, oscar, topology_a, monitors):
    response = client_for(oscar).delete(f"{URL}/{topology_a.pk}")
    assert response.status_code == 204
    assert not Topology.objects.filter(pk=topology_a.pk).exists()
    assert not TopologyMember.objects.filter(topology_id=topology_a.pk).exists()
    assert monitors.__class__.objects.filter(pk=monitors.pk).exists()
    assert AuditEvent.objects.filter(action="topology.delete", actor=oscar).exists()


def test_a_viewer_cannot_write_topologies(client_for, vera, section_a, topology_a, db_state, assert_error):
    client = client_for(vera)
    before = db_state()
    body = {"section_id": str(section_a.pk), "name": "mine", "type": "one-way"}
    assert_error(client.post(URL, body, format="json"), 403, "forbidden")
    assert_error(client.patch(f"{URL}/{topology_a.pk}", {"enabled": False}, format="json"), 403, "forbidden")
    assert_error(client.delete(f"{URL}/{topology_a.pk}"), 403, "forbidden")
    assert db_state() == before


def test_another_tenant_is_invisible(client_for, bob, topology_a, section_a, section_b, db_state, assert_error):
    TopologyFactory(section=section_b, name="bobs")
    client = client_for(bob)
    before = db_state()
    assert [t["name"] for t in client.get(URL).json()["topologies"]] == ["bobs"]
    assert_error(client.get(f"{URL}/{topology_a.pk}"), 404, "not_found")
    assert_error(client.patch(f"{URL}/{topology_a.pk}", {"enabled": False}, format="json"), 404, "not_found")
    assert_error(client.delete(f"{URL}/{topology_a.pk}"), 404, "not_found")
    body = {"section_id": str(section_a.pk), "name": "mine", "type": "one-way"}
    assert_error(client.post(URL, body, format="json"), 400, "validation_error", field="section_id")
    assert db_state() == before


def test_it_has_no_put(client_for, oscar, topology_a, db_state, assert_error):
    before = db_state()
    response = client_for(oscar).put(f"{URL}/{topology_a.pk}", {"name": "x", "type": "one-way"}, format="json")
    assert_error(response, 405, "method_not_allowed")
    assert db_state() == before


def test_it_paginates_topologies(client_for, vera, section_a):
    TopologyFactory.create_batch(25, section=section_a)
    client = client_for(vera)
    page = client.get(URL, {"page": 2, "page_size": 20}).json()
    assert len(page["topologies"]) == 5
    assert page["pagination"]["total_pages"] == 2
    assert (page["pagination"]["has_next"], page["pagination"]["has_previous"]) == (False, True)
    assert client.get(URL, {"page": 3, "page_size": 20}).json()["topologies"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"page": 0}, "page"),
        ({"page": "abc"}, "page"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 101}, "page_size"),
    ],
)
def test_it_rejects_bad_pagination(client_for, vera, assert_error, query, field):
    assert_error(client_for(vera).get(URL, query), 400, "validation_error", field=field)
