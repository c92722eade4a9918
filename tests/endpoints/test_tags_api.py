"""{prefix}/tags: operators manage them, viewers read them, other tenants see nothing."""

from __future__ import annotations

import pytest

from endpoints.models import Tag
from tenants.models import AuditEvent
from tests.api_cases import MISSING, ResourceAPICases
from tests.factories import EndpointFactory, SectionFactory, TagFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/tags"


@pytest.fixture
def tag_a(section_a):
    return TagFactory(section=section_a, name="edge", scope="agent")


class TestTagsAPI(ResourceAPICases):
    """401, cross-tenant, viewer, bad-input, pagination and verb cases (tests/api_cases.py)."""

    path = "/tags"
    items_key = "tags"
    model = Tag
    write_role = "operator"
    create_in_other_tenant = (400, "validation_error", "section_id")
    bad_bodies = [
        ("no-section", {"section_id": MISSING}, "section_id"),
        ("bad-section-id", {"section_id": "nope"}, "section_id"),
        ("unknown-section", {"section_id": "00000000-0000-0000-0000-000000000000"}, "section_id"),
        ("no-name", {"name": MISSING}, "name"),
        ("empty-name", {"name": ""}, "name"),
        ("long-name", {"name": "x" * 101}, "name"),
        ("bad-scope", {"scope": "bogus"}, "scope"),
        ("scope-case", {"scope": "Agent"}, "scope"),
        ("null-scope", {"scope": None}, "scope"),
    ]
    bad_changes = [
        ("empty-name", {"name": ""}, "name"),
        ("bad-scope", {"scope": "everything"}, "scope"),
    ]

    @pytest.fixture
    def object_a(self, tag_a):
        return tag_a

    @pytest.fixture
    def object_b(self, section_b):
        return TagFactory(section=section_b, name="bobs")

    @pytest.fixture
    def create_body(self, section_a):
        return {"section_id": str(section_a.pk), "name": "mine"}

    @pytest.fixture
    def update_body(self):
        return {"name": "mine"}


def test_a_viewer_lists_and_retrieves_tags(client_for, vera, tag_a):
    client = client_for(vera)
    listed = client.get(URL).json()["tags"]
    assert [t["id"] for t in listed] == [str(tag_a.pk)]
    response = client.get(f"{URL}/{tag_a.pk}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "section_id", "name", "scope", "created_at", "updated_at"}
    assert (body["section_id"], body["name"], body["scope"]) == (str(tag_a.section_id), "edge", "agent")


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
def test_an_operator_creates_a_tag(client_for, oscar, section_a, prefix):
    body = {"section_id": str(section_a.pk), "name": "core", "scope": "endpoint"}
    response = client_for(oscar).post(f"{prefix}/tags", body, format="json")
    assert response.status_code == 201, response.content
    tag = Tag.objects.get(section=section_a, name="core")
    assert tag.scope == "endpoint"
    assert response.json()["id"] == str(tag.pk)
    assert AuditEvent.objects.filter(action="tag.create", actor=oscar, object_id=str(tag.pk)).exists()


def test_the_scope_defaults_to_global(client_for, oscar, section_a):
    response = client_for(oscar).post(URL, {"section_id": str(section_a.pk), "name": "any"}, format="json")
    assert response.status_code == 201
    assert Tag.objects.get(name="any").scope == "global"


def test_it_refuses_a_duplicate_tag_name_in_a_section(client_for, oscar, tag_a, db_state, assert_error):
    before = db_state()
    body = {"section_id": str(tag_a.section_id), "name": "edge", "scope": "global"}
    body = assert_error(client_for(oscar).post(URL, body, format="json"), 409, "already_exists", field="name")
    assert body["message"] == "A tag with this name already exists in this section."
    assert db_state() == before


def test_the_same_tag_name_is_allowed_in_another_section(client_for, oscar, tag_a):
    other = SectionFactory(tenant=tag_a.section.tenant)
    response = client_for(oscar).post(URL, {"section_id": str(other.pk), "name": "edge"}, format="json")
    assert response.status_code == 201
    assert Tag.objects.filter(name="edge").count() == 2


def test_an_operator_renames_a_tag(client_for, oscar, tag_a):
    response = client_for(oscar).patch(f"{URL}/{tag_a.pk}", {"name": "edge-2", "scope": "global"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["scope"]) == ("edge-2", "global")
    tag_a.refresh_from_db()
    assert (tag_a.name, tag_a.scope) == ("edge-2", "global")


def test_it_refuses_renaming_to_a_taken_name(client_for, oscar, tag_a, db_state, assert_error):
    TagFactory(section=tag_a.section, name="taken")
    before = db_state()
    response = client_for(oscar).patch(f"{URL}/{tag_a.pk}", {"name": "taken"}, format="json")
    assert_error(response, 409, "already_exists", field="name")
    assert db_state() == before


def test_an_operator_deletes_a_tag(client_for, oscar, tag_a):
    endpoint = EndpointFactory(section=tag_a.section, tags=[tag_a])
    response = client_for(oscar).delete(f"{URL}/{tag_a.pk}")
    assert response.status_code == 204
    assert not Tag.objects.filter(pk=tag_a.pk).exists()
    assert list(endpoint.tags.all()) == []
    assert AuditEvent.objects.filter(action="tag.delete", actor=oscar).exists()


def test_it_paginates_tags(client_for, vera, section_a):
    TagFactory.create_batch(25, section=section_a)
    client = client_for(vera)
    page = client.get(URL, {"page": 3, "page_size": 10}).json()
    assert len(page["tags"]) == 5
    assert page["pagination"] == {
        "page": 3,
        "page_size": 10,
        "total_items": 25,
        "total_pages": 3,
        "has_next": False,
        "has_previous": True,
    }
    beyond = client.get(URL, {"page": 4, "page_size": 10}).json()
    assert (beyond["tags"], beyond["pagination"]["has_next"]) == ([], False)
