"""{prefix}/endpoints: operators manage them, viewers read them, other tenants see nothing."""

from __future__ import annotations

import pytest

from endpoints.models import Endpoint
from tenants.models import AuditEvent
from tests.api_cases import ResourceAPICases
from tests.factories import AgentFactory, EndpointFactory, SectionFactory, TagFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/endpoints"


@pytest.fixture
def tag_a(section_a):
    return TagFactory(section=section_a, name="web", scope="endpoint")


@pytest.fixture
def endpoint_a(section_a, tag_a):
    return EndpointFactory(section=section_a, address="192.0.2.1", port=443, tags=[tag_a])


def _fields(body: dict) -> list[str]:
    return [detail["field"] for detail in body.get("details", [])]


class TestEndpointsAPI(ResourceAPICases):
    """401, cross-tenant, viewer, bad-input, pagination and verb cases (tests/api_cases.py)."""

    path = "/endpoints"
    items_key = "endpoints"
    model = Endpoint
    write_role = "operator"
    create_in_other_tenant = (400, "validation_error", "section_id")
    bad_bodies = [
        ("port-zero", {"port": 0}, "port"),
        ("port-too-high", {"port": 65536}, "port"),
        ("port-negative", {"port": -1}, "port"),
        ("port-not-a-number", {"port": "http"}, "port"),
        ("empty-address", {"address": ""}, "address"),
        ("address-with-space", {"address": "exa mple.org"}, "address"),
        ("address-not-a-host", {"address": "not a host"}, "address"),
        ("address-ftp-url", {"address": "ftp://example.org"}, "address"),
        ("address-bad-label", {"address": "-bad-.example"}, "address"),
        ("null-address", {"address": None}, "address"),
        ("enabled-not-a-bool", {"enabled": "maybe"}, "enabled"),
        ("long-description", {"description": "x" * 201}, "description"),
        ("tag-ids-not-a-list", {"tag_ids": "TAG"}, "tag_ids"),
        ("null-section", {"section_id": None}, "section_id"),
    ]
    bad_changes = [
        ("port-zero", {"port": 0}, "port"),
        ("port-too-high", {"port": 65536}, "port"),
        ("bad-address", {"address": "bad address"}, "address"),
        # The port change is valid but must be rolled back with the refused tags.
        ("port-with-foreign-tags", {"port": 22, "tag_ids": "OTHER_TENANT_TAGS"}, "tag_ids"),
    ]

    @pytest.fixture
    def object_a(self, endpoint_a):
        return endpoint_a

    @pytest.fixture
    def object_b(self, section_b):
        return EndpointFactory(section=section_b, address="bobs.example")

    @pytest.fixture
    def create_body(self, section_a):
        return {"section_id": str(section_a.pk), "address": "example.org"}

    @pytest.fixture
    def update_body(self):
        return {"port": 80}

    @pytest.fixture
    def placeholders(self, section_b):
        return {"OTHER_TENANT_TAGS": [str(TagFactory(section=section_b).pk)]}


def test_a_viewer_lists_and_retrieves_endpoints(client_for, vera, endpoint_a, tag_a):
    client = client_for(vera)
    assert [e["id"] for e in client.get(URL).json()["endpoints"]] == [str(endpoint_a.pk)]
    body = client.get(f"{URL}/{endpoint_a.pk}").json()
    assert body == {
        "id": str(endpoint_a.pk),
        "section_id": str(endpoint_a.section_id),
        "address": "192.0.2.1",
        "port": 443,
        "enabled": True,
        "description": "",
        "tag_ids": [str(tag_a.pk)],
        "agent_id": None,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }


def test_an_agents_self_endpoint_names_the_agent(client_for, vera, section_a):
    endpoint = EndpointFactory(section=section_a, address="198.51.100.7")
    agent = AgentFactory(section=section_a, self_endpoint=endpoint)
    assert client_for(vera).get(f"{URL}/{endpoint.pk}").json()["agent_id"] == str(agent.pk)


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
@pytest.mark.parametrize(
    ("address", "port"),
    [("192.0.2.10", 443), ("2001:db8::1", None), ("example.org", 8080), ("https://example.org/health", None)],
    ids=["ipv4", "ipv6", "hostname", "url"],
)
def test_an_operator_creates_an_endpoint(client_for, oscar, section_a, tag_a, prefix, address, port):
    body = {"section_id": str(section_a.pk), "address": address, "port": port, "tag_ids": [str(tag_a.pk)]}
    response = client_for(oscar).post(f"{prefix}/endpoints", body, format="json")
    assert response.status_code == 201, response.content
    endpoint = Endpoint.objects.get(pk=response.json()["id"])
    assert (endpoint.section, endpoint.address, endpoint.port, endpoint.enabled) == (section_a, address, port, True)
    assert list(endpoint.tags.all()) == [tag_a]
    assert response.json()["tag_ids"] == [str(tag_a.pk)]
    assert AuditEvent.objects.filter(action="endpoint.create", actor=oscar, object_id=str(endpoint.pk)).exists()


def test_it_rejects_a_malformed_tag_id(client_for, oscar, section_a, db_state, assert_error):
    before = db_state()
    body = {"section_id": str(section_a.pk), "address": "example.org", "tag_ids": ["nope"]}
    body = assert_error(client_for(oscar).post(URL, body, format="json"), 400, "validation_error")
    assert all(field.startswith("tag_ids") for field in _fields(body))
    assert db_state() == before


@pytest.mark.parametrize("where", ["other-section", "other-tenant"])
def test_it_rejects_tags_of_another_section(client_for, oscar, section_a, section_b, db_state, assert_error, where):
    section = SectionFactory(tenant=section_a.tenant) if where == "other-section" else section_b
    foreign = TagFactory(section=section)
    before = db_state()
    body = {"section_id": str(section_a.pk), "address": "example.org", "tag_ids": [str(foreign.pk)]}
    assert_error(client_for(oscar).post(URL, body, format="json"), 400, "validation_error", field="tag_ids")
    assert db_state() == before


def test_an_operator_changes_an_endpoint(client_for, oscar, endpoint_a, section_a):
    other_tag = TagFactory(section=section_a, name="db")
    body = {"port": 8443, "enabled": False, "address": "db.example.org", "tag_ids": [str(other_tag.pk)]}
    response = client_for(oscar).patch(f"{URL}/{endpoint_a.pk}", body, format="json")
    assert response.status_code == 200, response.content
    endpoint_a.refresh_from_db()
    assert (endpoint_a.port, endpoint_a.enabled, endpoint_a.address) == (8443, False, "db.example.org")
    assert list(endpoint_a.tags.all()) == [other_tag]
    assert response.json()["tag_ids"] == [str(other_tag.pk)]


def test_patch_without_tag_ids_keeps_the_tags(client_for, oscar, endpoint_a, tag_a):
    assert client_for(oscar).patch(f"{URL}/{endpoint_a.pk}", {"port": None}, format="json").status_code == 200
    endpoint_a.refresh_from_db()
    assert endpoint_a.port is None
    assert list(endpoint_a.tags.all()) == [tag_a]


def test_an_operator_deletes_an_endpoint(client_for, oscar, endpoint_a, tag_a):
    response = client_for(oscar).delete(f"{URL}/{endpoint_a.pk}")
    assert response.status_code == 204
    assert not Endpoint.objects.filter(pk=endpoint_a.pk).exists()
    assert tag_a.__class__.objects.filter(pk=tag_a.pk).exists()
    assert AuditEvent.objects.filter(action="endpoint.delete", actor=oscar).exists()


def test_it_paginates_endpoints(client_for, vera, section_a):
    EndpointFactory.create_batch(25, section=section_a)
    client = client_for(vera)
    pages = [client.get(URL, {"page": page, "page_size": 10}).json() for page in (1, 2, 3, 4)]
    assert [len(page["endpoints"]) for page in pages] == [10, 10, 5, 0]
    assert [page["pagination"]["has_next"] for page in pages] == [True, True, False, False]
    assert {page["pagination"]["total_items"] for page in pages} == {25}
    assert len({e["id"] for page in pages for e in page["endpoints"]}) == 25
