"""The admin's "Pending agents" page and claim form: the claimUrl a registration returns, used by a person."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.utils import timezone

from agents.keys import api_key_hash
from agents.models import Agent, AgentRegistration, RegistrationState
from tenants.models import AuditEvent
from tests.factories import PASSWORD, MembershipFactory, SectionFactory

pytestmark = pytest.mark.django_db

TOKEN = "Kx7pQ2mZ" * 8
CHANGELIST = "/admin/agents/agentregistration/"


def register(api_client, hostname: str = "probe-1", token: str = TOKEN) -> tuple[uuid.UUID, str]:
    """Register over the API as the agent does; returns the id and the claimUrl's path."""
    agent_id = uuid.uuid4()
    body = {
        "agentId": str(agent_id),
        "claimTokenHash": hashlib.sha256(token.encode()).hexdigest(),
        "hostname": hostname,
        "agentVersion": "0.4.2",
        "ipAddresses": [{"ip": "192.0.2.10", "iface": "eth0", "family": "ipv4", "recommended": True}],
    }
    response = api_client.post("/v1/agent/register", body, format="json")
    assert response.status_code == 201, response.content
    return agent_id, urlsplit(response.json()["claimUrl"]).path


def make_staff(*users):
    for user in users:
        user.is_staff = True
        user.save(update_fields=["is_staff"])


@pytest.fixture
def operator(oscar):
    make_staff(oscar)
    return oscar


@pytest.fixture
def viewer(vera):
    make_staff(vera)
    return vera


@pytest.fixture
def registered(api_client):
    return register(api_client)


def page(response) -> str:
    return response.content.decode()


def test_the_claim_url_leads_through_the_login_back_to_the_claim_page(client, operator, registered):
    agent_id, claim_path = registered
    assert claim_path == f"/admin/agents/agentregistration/{agent_id}/claim/"

    response = client.get(claim_path)
    assert response.status_code == 302
    login_url = response["Location"]
    assert login_url.startswith("/admin/login/")

    response = client.post(login_url, {"username": "oscar", "password": PASSWORD, "next": claim_path})
    assert response.status_code == 302, page(response)
    assert response["Location"] == claim_path

    response = client.get(claim_path)
    assert response.status_code == 200
    html = page(response)
    for field in ('name="claim_token"', 'name="section"', 'name="name"'):
        assert field in html
    for detail in (str(agent_id), "probe-1", "0.4.2", "192.0.2.10", "eth0"):
        assert detail in html


def test_the_section_choices_are_the_operators_sections_only(client, operator, registered, section_a, section_b):
    viewer_only = SectionFactory(name="viewer-only-section")
    MembershipFactory(user=operator, tenant=viewer_only.tenant, role="viewer")
    client.force_login(operator)
    html = page(client.get(registered[1]))
    assert str(section_a.pk) in html
    assert str(section_b.pk) not in html and str(viewer_only.pk) not in html


def test_a_wrong_token_is_shown_and_claims_nothing(client, operator, registered, section_a):
    agent_id, claim_path = registered
    client.force_login(operator)

    response = client.post(claim_path, {"claim_token": "Z" * 64, "section": section_a.pk, "name": ""})

    assert response.status_code == 200
    assert "does not match" in page(response)
    assert not Agent.objects.exists()
    assert AgentRegistration.objects.get(pk=agent_id).failed_claim_attempts == 1
    assert AuditEvent.objects.get(action="agent.claim_failed").actor == operator


def test_the_right_token_claims_and_the_next_poll_gets_the_key(client, api_client, operator, registered, section_a):
    agent_id, claim_path = registered
    client.force_login(operator)

    response = client.post(claim_path, {"claim_token": TOKEN, "section": section_a.pk, "name": "edge-probe"})

    assert response.status_code == 302, page(response)
    assert response["Location"] == f"/admin/agents/agent/{agent_id}/change/"
    follow = client.get(response["Location"])
    assert follow.status_code == 200
    assert "Agent edge-probe claimed" in page(follow)

    agent = Agent.objects.get(pk=agent_id)
    assert (agent.section, agent.name, agent.claimed_by) == (section_a, "edge-probe", operator)
    claim_event = AuditEvent.objects.get(action="agent.claim")
    assert (claim_event.actor, claim_event.source_address) == (operator, "127.0.0.1")

    poll = api_client.get(f"/v1/agent/{agent_id}/claim-status").json()
    assert poll["status"] == "claimed"
    assert api_key_hash(poll["apiKey"]) == agent.api_key_hash


def test_an_expired_registration_says_so(client, operator, registered, section_a):
    _, claim_path = registered
    client.force_login(operator)
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        response = client.post(claim_path, {"claim_token": TOKEN, "section": section_a.pk})
        assert "(expired)" in page(client.get(claim_path))
    assert response.status_code == 200
    assert "expired" in page(response) and "register again" in page(response)
    assert not Agent.objects.exists()


def test_a_locked_registration_says_so(client, operator, registered, section_a):
    _, claim_path = registered
    client.force_login(operator)
    for _ in range(5):
        client.post(claim_path, {"claim_token": "wrong", "section": section_a.pk})
    response = client.post(claim_path, {"claim_token": TOKEN, "section": section_a.pk})
    assert "Too many wrong claim tokens" in page(response)
    assert not Agent.objects.exists()


def test_an_already_claimed_agent_says_so(client, operator, registered, section_a):
    _, claim_path = registered
    client.force_login(operator)
    assert client.post(claim_path, {"claim_token": TOKEN, "section": section_a.pk}).status_code == 302
    response = client.post(claim_path, {"claim_token": TOKEN, "section": section_a.pk})
    assert response.status_code == 200
    assert "already claimed" in page(response)
    assert Agent.objects.count() == 1


def test_another_tenants_section_is_not_a_valid_choice(client, operator, registered, section_b):
    _, claim_path = registered
    client.force_login(operator)
    response = client.post(claim_path, {"claim_token": TOKEN, "section": section_b.pk})
    assert response.status_code == 200
    assert "Select a valid choice" in page(response)
    assert not Agent.objects.exists()
    assert AgentRegistration.objects.get().failed_claim_attempts == 0


def test_an_unknown_registration_goes_back_to_the_claim_an_agent_form(client, operator):
    client.force_login(operator)
    response = client.get(f"/admin/agents/agentregistration/{uuid.uuid4()}/claim/", follow=True)
    assert response.redirect_chain[-1][0] == f"{CHANGELIST}claim/"
    assert "must register again" in page(response)


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_viewer_is_refused(client, viewer, registered, section_a, method):
    agent_id, claim_path = registered
    client.force_login(viewer)
    response = getattr(client, method)(claim_path, {"claim_token": TOKEN, "section": section_a.pk})
    assert response.status_code == 403
    assert not Agent.objects.exists()
    assert AgentRegistration.objects.get(pk=agent_id).state == RegistrationState.PENDING
    assert client.get(CHANGELIST).status_code == 403


def test_a_non_staff_member_is_sent_to_the_login(client, oscar, registered):
    client.force_login(oscar)  # an operator, but not staff: no admin at all
    response = client.get(registered[1])
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_pending_agents_list_and_its_expiry_filter(client, api_client, operator, superuser):
    """Superusers see every pending registration; tenant members none (they use the claim URL)."""
    with time_machine.travel(timezone.now() - timedelta(days=3)):
        register(api_client, hostname="stale-host")
    fresh_id, _ = register(api_client, hostname="fresh-host")
    client.force_login(operator)
    assert "fresh-host" not in page(client.get(CHANGELIST))
    client.force_login(superuser)

    everything = page(client.get(CHANGELIST))
    assert "stale-host" in everything and "fresh-host" in everything
    assert f"/admin/agents/agentregistration/{fresh_id}/claim/" in everything

    active = page(client.get(CHANGELIST, {"expiry": "active"}))
    assert "fresh-host" in active and "stale-host" not in active
    expired = page(client.get(CHANGELIST, {"expiry": "expired"}))
    assert "stale-host" in expired and "fresh-host" not in expired


def test_the_list_is_in_the_admin_index_for_operators(client, operator, registered):
    client.force_login(operator)
    assert CHANGELIST in page(client.get("/admin/"))
