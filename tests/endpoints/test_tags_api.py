"""{prefix}/tags: operators manage them, viewers read them, other tenants see nothing."""

from __future__ import annotations

import pytest

from endpoints.models import Tag
from tenants.models import AuditEvent
from tests.factories import EndpointFactory, SectionFactory, TagFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/tags"


@pytest.fixture
def tag_a(section_a):
    return TagFactory(section=section_a, name="edge", scope="agent")


def test_it_answers_401_without_credentials(api_client, section_a, tag_a, db_state, assert_error):
    before = db_state()
    assert_error(api_client.get(URL), 401, "unauthorized")
    assert_error(api_client.get(f"{URL}/{tag_a.pk}"), 401, "unauthorized")
    body = {"section_id": str(section_a.pk), "name": "x"}
    assert_error(api_client.post(URL, body, format="json"), 401, "unauthorized")
    assert_error(api_client.patch(f"{URL}/{tag_a.pk}", {"name": "y"}, format="json"), 401, "unauthorized")
    assert_error(api_client.delete(f"{URL}/{tag_a.pk}"), 401, "unauthorized")
    assert db_state() == before


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


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x"}, "section_id"),
        ({"section_id": "nope", "name": "x"}, "section_id"),
        ({"section_id": "00000000-0000-0000-0000-000000000000", "name": "x"}, "section_id"),
        ({"section_id": "SECTION"}, "name"),
        ({"section_id": "SECTION", "name": ""}, "name"),
        ({"section_id": "SECTION", "name": "x" * 101}, "name"),
        ({"section_id": "SECTION", "name": "x", "scope": "bogus"}, "scope"),
        ({"section_id": "SECTION", "name": "x", "scope": "Agent"}, "scope"),
        ({"section_id": "SECTION", "name": "x", "scope": None}, "scope"),
    ],
    ids=[
        "no-section",
        "bad-section-id",
        "unknown-section",
        "no-name",
        "empty-name",
        "long-name",
        "bad-scope",
        "scope-case",
        "null-scope",
    ],
)
def test_it_rejects_bad_tag_bodies(client_for, oscar, section_a, db_state, assert_error, body, field):
    body = {key: str(section_a.pk) if value == "SECTION" else value for key, value in body.items()}
    before = db_state()
    assert_error(client_for(oscar).post(URL, body, format="json"), 400, "validation_error", field=field)
    assert db_state() == before


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


def test_a_viewer_cannot_write_tags(client_for, vera, section_a, tag_a, db_state, assert_error):
    client = client_for(vera)
    before = db_state()
    body = {"section_id": str(section_a.pk), "name": "mine"}
    assert_error(client.post(URL, body, format="json"), 403, "forbidden")
    assert_error(client.patch(f"{URL}/{tag_a.pk}", {"name": "mine"}, format="json"), 403, "forbidden")
    assert_error(client.delete(f"{URL}/{tag_a.pk}"), 403, "forbidden")
    assert db_state() == before


def test_an_operator_renames_a_tag(client_for, oscar, tag_a):
    response = client_for(oscar).patch(f"{URL}/{tag_a.pk}", {"name": "edge-2", "scope": "global"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["scope"]) == ("edge-2", "global")
    tag_a.refresh_from_db()
    assert (tag_a.name, tag_a.scope) == ("edge-2", "global")


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"name": "taken"}, 409, "already_exists", "name"),
        ({"name": ""}, 400, "validation_error", "name"),
        ({"scope": "everything"}, 400, "validation_error", "scope"),
    ],
    ids=["taken-name", "empty-name", "bad-scope"],
)
def test_it_rejects_bad_tag_changes(client_for, oscar, tag_a, db_state, assert_error, body, status, code, field):
    TagFactory(section=tag_a.section, name="taken")
    before = db_state()
    assert_error(client_for(oscar).patch(f"{URL}/{tag_a.pk}", body, format="json"), status, code, field=field)
    assert db_state() == before


def test_an_operator_deletes_a_tag(client_for, oscar, tag_a):
    endpoint = EndpointFactory(section=tag_a.section, tags=[tag_a])
    response = client_for(oscar).delete(f"{URL}/{tag_a.pk}")
    assert response.status_code == 204
    assert not Tag.objects.filter(pk=tag_a.pk).exists()
    assert list(endpoint.tags.all()) == []
    assert AuditEvent.objects.filter(action="tag.delete", actor=oscar).exists()


def test_another_tenant_is_invisible(client_for, bob, tag_a, section_a, section_b, db_state, assert_error):
    TagFactory(section=section_b, name="bobs")
    client = client_for(bob)
    before = db_state()
    assert [t["name"] for t in client.get(URL).json()["tags"]] == ["bobs"]
    assert_error(client.get(f"{URL}/{tag_a.pk}"), 404, "not_found")
    assert_error(client.patch(f"{URL}/{tag_a.pk}", {"name": "mine"}, format="json"), 404, "not_found")
    assert_error(client.delete(f"{URL}/{tag_a.pk}"), 404, "not_found")
    body = {"section_id": str(section_a.pk), "name": "mine"}
    assert_error(client.post(URL, body, format="json"), 400, "validation_error", field="section_id")
    assert db_state() == before


def test_it_has_no_put(client_for, oscar, tag_a, db_state, assert_error):
    before = db_state()
    assert_error(client_for(oscar).put(f"{URL}/{tag_a.pk}", {"name": "x"}, format="json"), 405, "method_not_allowed")
    assert db_state() == before


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
