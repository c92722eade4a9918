"""``create_tenant``, ``create_section`` and ``list_sections``, and what a monitor-all section means."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from agents.services.configuration import configuration_render
from tenants.models import AuditEvent, Section, Tenant
from tenants.services import Actor, section_update
from tests.factories import AgentFactory, EndpointFactory, SectionFactory, TenantFactory

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_tenant_and_section_from_the_shell():
    tenant_id = run("create_tenant", "Acme", "--print-id").strip()
    assert Tenant.objects.get(pk=tenant_id).name == "Acme"
    output = run("create_section", "Acme", "edge", "--monitor-all")
    section = Section.objects.get(name="edge")
    assert (str(section.tenant_id), section.monitor_all_endpoints) == (tenant_id, True)
    assert str(section.pk) in output and "all its endpoints" in output
    assert run("create_section", tenant_id, "core", "--print-id").strip() == str(Section.objects.get(name="core").pk)
    assert not Section.objects.get(name="core").monitor_all_endpoints
    assert set(AuditEvent.objects.values_list("action", "actor_label")) == {
        ("tenant.create", "cli"),
        ("section.create", "cli"),
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create_section", "Nobody", "edge"), "No tenant 'Nobody'"),
        (("create_section", "Acme", "edge"), "already exists"),
        (("create_tenant", "Acme"), "already exists"),
    ],
)
def test_mistakes_are_one_clear_error(args, message):
    run("create_tenant", "Acme")
    run("create_section", "Acme", "edge")
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert (Tenant.objects.count(), Section.objects.count()) == (1, 1)


def test_list_sections_as_text_and_json():
    assert "No sections yet" in run("list_sections")
    acme = TenantFactory(name="Acme")
    edge = SectionFactory(tenant=acme, name="edge", monitor_all_endpoints=True)
    SectionFactory(tenant=TenantFactory(name="Bravo"), name="core")
    AgentFactory(section=edge)
    EndpointFactory(section=edge)
    rows = json.loads(run("list_sections", "--json"))
    assert [(row["tenant"], row["name"]) for row in rows] == [("Acme", "edge"), ("Bravo", "core")]
    assert rows[0] == {
        "id": str(edge.pk),
        "tenant_id": str(acme.pk),
        "tenant": "Acme",
        "name": "edge",
        "monitor_all_endpoints": True,
        "agents": 1,
        "endpoints": 1,
    }
    assert [row["name"] for row in json.loads(run("list_sections", "--json", "--tenant", "Bravo"))] == ["core"]
    text = run("list_sections")
    assert f"{edge.pk}  Acme / edge  1 agent(s), 1 endpoint(s)  monitors all endpoints" in text


def test_a_monitor_all_section_gives_its_agents_every_enabled_endpoint_but_their_own():
    section = SectionFactory(monitor_all_endpoints=True)
    own = EndpointFactory(section=section, address="192.0.2.50")
    agent = AgentFactory(section=section, self_endpoint=own)
    other_agents_endpoint = EndpointFactory(section=section, address="192.0.2.51")
    EndpointFactory(section=section, address="192.0.2.52", enabled=False)
    EndpointFactory(address="192.0.2.53")  # another section
    addresses = [endpoint["address"] for endpoint in configuration_render(agent)["endpoints"]]
    assert addresses == [other_agents_endpoint.address]


def test_turning_monitor_all_on_or_off_changes_the_configuration_version(superuser):
    section = SectionFactory()
    EndpointFactory(section=section)
    agent = AgentFactory(section=section)
    before = configuration_render(agent)
    assert before["endpoints"] == []  # no topology: nothing to monitor
    section_update(actor=Actor(user=superuser, label="user:root"), section=section, monitor_all_endpoints=True)
    agent.refresh_from_db()
    after = configuration_render(agent)
    assert after["version"] == before["version"] + 1 and len(after["endpoints"]) == 1
    section_update(actor=Actor(user=superuser, label="user:root"), section=section, description="same flag")
    agent.refresh_from_db()
    assert configuration_render(agent)["version"] == after["version"]


def test_the_section_api_shows_and_sets_the_flag(client_for, alice, tenant_a):
    body = {"tenant_id": str(tenant_a.pk), "name": "all", "monitor_all_endpoints": True}
    created = client_for(alice).post("/api/v1/sections", body, format="json")
    assert created.status_code == 201 and created.json()["monitor_all_endpoints"] is True
    patched = client_for(alice).patch(
        f"/api/v1/sections/{created.json()['id']}", {"monitor_all_endpoints": False}, format="json"
    )
    assert patched.json()["monitor_all_endpoints"] is False


def test_the_claim_form_names_monitor_all_sections_and_helps_when_there_is_none(client, api_client, oscar, tenant_a):
    oscar.is_staff = True
    oscar.save()
    client.force_login(oscar)
    url = "/admin/agents/agentregistration/00000000-0000-4000-8000-000000000001/claim/"
    body = {
        "agentId": url.split("/")[-3],
        "claimTokenHash": "a" * 64,
        "hostname": "probe",
        "agentVersion": "1",
    }
    assert api_client.post("/v1/agent/register", body, format="json").status_code == 201
    assert "create_section TENANT NAME --monitor-all" in client.get(url).content.decode()
    SectionFactory(tenant=tenant_a, name="edge", monitor_all_endpoints=True)
    page = client.get(url).content.decode()
    assert "Tenant A / edge (monitors all its endpoints)" in page
