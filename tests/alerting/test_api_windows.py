"""{prefix}/maintenance-windows: operators plan windows of their tenant's sections, endpoints and
agents (none listed: the whole tenant), viewers read them with whether they are active now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from alerting.models import MaintenanceWindow
from tenants.models import AuditEvent
from tests.api_cases import MISSING, ResourceAPICases
from tests.factories import AgentFactory, EndpointFactory, SectionFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/maintenance-windows"
NOW = datetime(2026, 4, 1, 22, 0, tzinfo=UTC)
NIL = "00000000-0000-0000-0000-000000000000"


def window_of(tenant, *, starts_at=NOW, hours: float = 2, **fields) -> MaintenanceWindow:
    return MaintenanceWindow.objects.create(
        tenant=tenant,
        name=fields.pop("name", "upgrade"),
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=hours),
        **fields,
    )


@pytest.fixture
def window_a(tenant_a):
    return window_of(tenant_a)


class TestMaintenanceWindowsAPI(ResourceAPICases):
    """401, cross-tenant, viewer, bad-input, pagination and verb cases (tests/api_cases.py)."""

    path = "/maintenance-windows"
    items_key = "maintenance_windows"
    model = MaintenanceWindow
    write_role = "operator"
    create_in_other_tenant = (400, "validation_error", "tenant_id")
    bad_bodies = [
        ("bad-tenant-id", {"tenant_id": 5}, "tenant_id"),
        ("no-name", {"name": MISSING}, "name"),
        ("empty-name", {"name": ""}, "name"),
        ("long-name", {"name": "x" * 201}, "name"),
        ("no-start", {"starts_at": MISSING}, "starts_at"),
        ("no-end", {"ends_at": MISSING}, "ends_at"),
        ("start-not-a-time", {"starts_at": "tonight"}, "starts_at"),
        ("start-a-number", {"starts_at": 1767225600}, "starts_at"),
        ("start-without-zone", {"starts_at": "2026-04-01T22:00:00"}, "starts_at"),
        ("start-a-date", {"starts_at": "2026-04-01"}, "starts_at"),
        ("start-out-of-range", {"starts_at": "0001-01-01T00:00:00+01:00"}, "starts_at"),
        ("end-before-start", {"ends_at": "2026-04-01T21:00:00Z"}, "ends_at"),
        ("end-at-start", {"ends_at": "2026-04-01T22:00:00Z"}, "ends_at"),
        ("null-end", {"ends_at": None}, "ends_at"),
        ("section-ids-a-string", {"section_ids": "all"}, "section_ids"),
        ("malformed-section-id", {"section_ids": ["nope"]}, "section_ids[0]"),
        ("section-id-a-number", {"section_ids": [1]}, "section_ids[0]"),
        ("section-of-another-tenant", {"section_ids": "OTHER_SECTION"}, "section_ids[0]"),
        ("unknown-second-endpoint", {"endpoint_ids": "OWN_THEN_UNKNOWN_ENDPOINT"}, "endpoint_ids[1]"),
        ("endpoint-of-another-tenant", {"endpoint_ids": "OTHER_ENDPOINT"}, "endpoint_ids[0]"),
        ("agent-of-another-tenant", {"agent_ids": "OTHER_AGENT"}, "agent_ids[0]"),
        ("unknown-agent", {"agent_ids": [NIL]}, "agent_ids[0]"),
    ]
    bad_changes = [
        ("empty-name", {"name": ""}, "name"),
        ("end-before-the-stored-start", {"ends_at": "2026-04-01T21:00:00Z"}, "ends_at"),
        ("start-after-the-stored-end", {"starts_at": "2026-04-02T01:00:00Z"}, "ends_at"),
        ("start-without-zone", {"starts_at": "2026-04-01T20:00:00"}, "starts_at"),
        # The rename is valid but must be rolled back with the refused agents.
        ("rename-with-foreign-agents", {"name": "renamed", "agent_ids": "OTHER_AGENT"}, "agent_ids[0]"),
        ("null-sections", {"section_ids": None}, "section_ids"),
    ]

    @pytest.fixture
    def object_a(self, window_a):
        return window_a

    @pytest.fixture
    def object_b(self, tenant_b):
        return window_of(tenant_b, name="bobs")

    @pytest.fixture
    def create_body(self, tenant_a):
        return {
            "tenant_id": str(tenant_a.pk),
            "name": "kernel upgrade",
            "starts_at": "2026-04-01T22:00:00Z",
            "ends_at": "2026-04-02T00:00:00Z",
        }

    @pytest.fixture
    def update_body(self):
        return {"name": "longer upgrade", "ends_at": "2026-04-02T02:00:00Z"}

    @pytest.fixture
    def placeholders(self, section_a, section_b):
        return {
            "OTHER_SECTION": [str(section_b.pk)],
            "OWN_THEN_UNKNOWN_ENDPOINT": [str(EndpointFactory(section=section_a).pk), NIL],
            "OTHER_ENDPOINT": [str(EndpointFactory(section=section_b).pk)],
            "OTHER_AGENT": [str(AgentFactory(section=section_b).pk)],
        }


def test_an_operator_plans_a_window_of_some_things(client_for, oscar, tenant_a, section_a):
    endpoint, agent = EndpointFactory(section=section_a), AgentFactory(section=section_a)
    body = {
        "tenant_id": str(tenant_a.pk),
        "name": "rack move",
        "starts_at": "2026-04-01T23:00:00+01:00",
        "ends_at": "2026-04-02T03:30:00.250Z",
        "section_ids": [str(section_a.pk)],
        "endpoint_ids": [str(endpoint.pk), str(endpoint.pk).upper()],
        "agent_ids": [str(agent.pk)],
    }
    with time_machine.travel(NOW, tick=False):
        response = client_for(oscar).post(URL, body, format="json")
    assert response.status_code == 201, response.content
    window = MaintenanceWindow.objects.get(pk=response.json()["id"])
    assert (window.starts_at, window.ends_at) == (NOW, datetime(2026, 4, 2, 3, 30, 0, 250000, tzinfo=UTC))
    # Stored as canonical UUID strings, once each.
    assert (window.section_ids, window.endpoint_ids, window.agent_ids) == (
        [str(section_a.pk)],
        [str(endpoint.pk)],
        [str(agent.pk)],
    )
    assert response.json() == {
        "id": str(window.pk),
        "tenant_id": str(tenant_a.pk),
        "name": "rack move",
        "starts_at": "2026-04-01T22:00:00Z",
        "ends_at": "2026-04-02T03:30:00.250000Z",
        "section_ids": [str(section_a.pk)],
        "endpoint_ids": [str(endpoint.pk)],
        "agent_ids": [str(agent.pk)],
        "active": True,
        "created_at": response.json()["created_at"],
        "updated_at": response.json()["updated_at"],
    }
    assert AuditEvent.objects.filter(action="maintenance_window.create", actor=oscar, object_id=str(window.pk)).exists()


def test_a_window_of_nothing_listed_covers_the_tenant(client_for, oscar, tenant_a):
    body = {"name": "all", "starts_at": "2026-04-01T22:00:00Z", "ends_at": "2026-04-01T23:00:00Z"}
    response = client_for(oscar).post(URL, body, format="json")  # oscar is in one tenant: no tenant_id needed
    assert response.status_code == 201, response.content
    assert (response.json()["tenant_id"], response.json()["section_ids"]) == (str(tenant_a.pk), [])


@pytest.mark.parametrize(
    ("moment", "active"),
    [
        (NOW - timedelta(seconds=1), False),
        (NOW, True),
        (NOW + timedelta(hours=1), True),
        (NOW + timedelta(hours=2), False),  # ends_at itself is outside, as for the evaluator
    ],
    ids=["before", "at-start", "within", "at-end"],
)
def test_active_says_whether_now_is_within(client_for, vera, window_a, moment, active):
    with time_machine.travel(moment, tick=False):
        listed = client_for(vera).get(URL).json()["maintenance_windows"]
    assert [(item["id"], item["active"]) for item in listed] == [(str(window_a.pk), active)]


def test_windows_are_listed_latest_start_first(client_for, vera, tenant_a, window_a):
    earlier = window_of(tenant_a, starts_at=NOW - timedelta(days=1))
    later = window_of(tenant_a, starts_at=NOW + timedelta(days=1))
    listed = client_for(vera).get(URL).json()["maintenance_windows"]
    assert [item["id"] for item in listed] == [str(later.pk), str(window_a.pk), str(earlier.pk)]


def test_a_patch_changes_only_what_it_names(client_for, oscar, window_a, section_a):
    other = SectionFactory(tenant=section_a.tenant)
    window_a.agent_ids = [str(AgentFactory(section=section_a).pk)]
    window_a.save()
    response = client_for(oscar).patch(f"{URL}/{window_a.pk}", {"section_ids": [str(other.pk)]}, format="json")
    assert response.status_code == 200, response.content
    window_a.refresh_from_db()
    assert (window_a.section_ids, len(window_a.agent_ids), window_a.name) == ([str(other.pk)], 1, "upgrade")
    response = client_for(oscar).patch(f"{URL}/{window_a.pk}", {"section_ids": []}, format="json")
    assert response.json()["section_ids"] == []


def test_an_operator_ends_a_window_early_and_deletes_it(client_for, oscar, window_a):
    client = client_for(oscar)
    response = client.patch(f"{URL}/{window_a.pk}", {"ends_at": "2026-04-01T22:30:00Z"}, format="json")
    assert (response.status_code, response.json()["ends_at"]) == (200, "2026-04-01T22:30:00Z")
    assert client.delete(f"{URL}/{window_a.pk}").status_code == 204
    assert not MaintenanceWindow.objects.filter(pk=window_a.pk).exists()
    assert AuditEvent.objects.filter(action="maintenance_window.delete", actor=oscar).exists()
