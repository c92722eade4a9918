"""POST {prefix}/agents/claim and /agent/claim (contract §5): who may claim, every refusal, the effects."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from agents.keys import api_key_hash
from agents.models import Agent, AgentRegistration, RegistrationState
from agents.services.onboarding import registration_register
from endpoints.models import Endpoint
from tenants.models import AuditEvent
from tests.factories import SectionFactory

pytestmark = pytest.mark.django_db

TOKEN = "Kx7pQ2mZ" * 8
SUCCESS_MESSAGE = "Agent claimed successfully. API key will be delivered on next poll."
CLAIM_PATHS = ["/api/v1/agents/claim", "/v1/agents/claim", "/agents/claim", "/api/v1/agent/claim", "/agent/claim"]
ADDRESSES = [
    {"ip": "192.0.2.10", "iface": "eth0", "family": "ipv4", "recommended": False},
    {"ip": "2001:db8::10", "iface": "eth0", "family": "ipv6", "recommended": True},
]


def register(agent_id=None, token: str = TOKEN, ip_addresses=None, hostname: str = "probe-1") -> uuid.UUID:
    agent_id = agent_id or uuid.uuid4()
    registration_register(
        agent_id=agent_id,
        claim_token_hash=hashlib.sha256(token.encode()).hexdigest(),
        hostname=hostname,
        agent_version="0.4.2",
        ip_addresses=ADDRESSES if ip_addresses is None else ip_addresses,
        source_address="192.0.2.10",
    )
    return agent_id


def claim_body(agent_id, section, token: str = TOKEN, **changes) -> dict:
    body = {"agentId": str(agent_id), "claimToken": token, "sectionId": str(section.pk)}
    body.update(changes)
    return body


def registration_row(agent_id) -> dict:
    return AgentRegistration.objects.values().get(pk=agent_id)


@pytest.fixture
def agent_id(db):
    return register()


# ---------------------------------------------------------------------------------------------
# Success


@pytest.mark.parametrize("path", CLAIM_PATHS)
def test_an_operator_claims_an_agent(client_for, oscar, section_a, agent_id, path):
    response = client_for(oscar).post(path, claim_body(agent_id, section_a), format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {"agentId": str(agent_id), "status": "claimed", "message": SUCCESS_MESSAGE}
    agent = Agent.objects.get(pk=agent_id)
    assert agent.section == section_a
    assert agent.name == "probe-1"  # the hostname by default
    assert (agent.hostname, agent.agent_version, agent.ip_addresses) == ("probe-1", "0.4.2", ADDRESSES)
    assert agent.claimed_by == oscar
    assert agent.claimed_at is not None
    assert agent.revoked_at is None

    registration = AgentRegistration.objects.get(pk=agent_id)
    assert registration.state == RegistrationState.CLAIMED
    assert registration.claimed_by == oscar
    key = registration.pending_api_key
    assert key and len(key) >= 40
    assert agent.api_key_hash == api_key_hash(key)  # only a hash on the agent
    assert key not in repr(Agent.objects.values().get(pk=agent_id))
    assert agent.api_key_prefix and key.startswith(agent.api_key_prefix)


def test_the_name_may_be_given(client_for, alice, section_a, agent_id):
    response = client_for(alice).post(
        "/v1/agents/claim", claim_body(agent_id, section_a, name="Production Web Server 01"), format="json"
    )
    assert response.status_code == 200, response.content
    assert Agent.objects.get(pk=agent_id).name == "Production Web Server 01"


def test_a_session_user_may_claim(api_client, oscar, section_a, agent_id):
    api_client.force_login(oscar)
    response = api_client.post("/api/v1/agents/claim", claim_body(agent_id, section_a), format="json")
    assert response.status_code == 200, response.content


def test_a_superuser_may_claim_into_any_section(client_for, superuser, section_b, agent_id):
    response = client_for(superuser).post("/v1/agents/claim", claim_body(agent_id, section_b), format="json")
    assert response.status_code == 200, response.content
    assert Agent.objects.get(pk=agent_id).section == section_b


@pytest.mark.parametrize(
    ("addresses", "expected"),
    [
        (ADDRESSES, "2001:db8::10"),  # the recommended one
        ([{**entry, "recommended": False} for entry in ADDRESSES], "192.0.2.10"),  # else the first
        ([], "probe-1.example.net"),  # else the hostname
    ],
    ids=["recommended", "first", "hostname"],
)
def test_the_agent_gets_a_self_endpoint(client_for, oscar, section_a, addresses, expected):
    agent_id = register(ip_addresses=addresses, hostname="probe-1.example.net")
    response = client_for(oscar).post("/v1/agents/claim", claim_body(agent_id, section_a), format="json")
    assert response.status_code == 200, response.content
    agent = Agent.objects.get(pk=agent_id)
    endpoint = Endpoint.objects.get(section=section_a)
    assert agent.self_endpoint == endpoint
    assert endpoint.address == expected


def test_the_claim_is_audited(client_for, oscar, section_a, agent_id):
    client_for(oscar).post(
        "/v1/agents/claim", claim_body(agent_id, section_a), format="json", REMOTE_ADDR="198.51.100.4"
    )

    event = AuditEvent.objects.get(action="agent.claim")
    assert (event.actor, event.actor_label) == (oscar, "user:oscar")
    assert event.source_address == "198.51.100.4"
    assert (event.object_type, event.object_id) == ("agent", str(agent_id))
    assert event.tenant == section_a.tenant
    assert TOKEN not in repr(AuditEvent.objects.values())


# ---------------------------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize("path", CLAIM_PATHS)
def test_it_needs_credentials(api_client, section_a, agent_id, db_state, assert_error, path):
    before = (db_state(), registration_row(agent_id))
    response = api_client.post(path, claim_body(agent_id, section_a), format="json")
    assert_error(response, 401, "unauthorized")
    assert (db_state(), registration_row(agent_id)) == before


def test_a_bad_bearer_token_is_refused(api_client, section_a, agent_id, assert_error):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    response = api_client.post("/v1/agents/claim", claim_body(agent_id, section_a), format="json")
    assert_error(response, 401, "unauthorized")
    assert not Agent.objects.exists()


def test_a_viewer_may_not_claim(client_for, vera, section_a, agent_id, assert_error):
    before = registration_row(agent_id)
    response = client_for(vera).post("/v1/agents/claim", claim_body(agent_id, section_a), format="json")
    assert_error(response, 403, "forbidden")
    assert not Agent.objects.exists() and not Endpoint.objects.exists()
    assert registration_row(agent_id) == before


@pytest.mark.parametrize("whose", ["unknown", "other-tenant"])
def test_a_section_out_of_reach_is_not_found(client_for, bob, section_a, agent_id, db_state, assert_error, whose):
    section_id = uuid.uuid4() if whose == "unknown" else section_a.pk
    before = (db_state(), registration_row(agent_id))
    response = client_for(bob).post(
        "/v1/agents/claim", claim_body(agent_id, section_a, sectionId=str(section_id)), format="json"
    )
    assert_error(response, 404, "section_not_found")
    assert (db_state(), registration_row(agent_id)) == before


def test_an_unregistered_agent_is_not_found(client_for, oscar, section_a, assert_error):
    unknown = uuid.uuid4()
    response = client_for(oscar).post("/v1/agents/claim", claim_body(unknown, section_a), format="json")
    assert_error(response, 404, "claim_not_found")
    assert not Agent.objects.exists()
    failure = AuditEvent.objects.get(action="agent.claim_failed")
    assert failure.details == {"reason": "claim_not_found"}


def test_a_wrong_token_is_refused_and_audited(client_for, oscar, section_a, agent_id, assert_error):
    response = client_for(oscar).post(
        "/v1/agents/claim", claim_body(agent_id, section_a, token="Z" * 64), format="json", REMOTE_ADDR="198.51.100.4"
    )
    assert_error(response, 409, "invalid_claim_token")
    assert not Agent.objects.exists() and not Endpoint.objects.exists()
    registration = AgentRegistration.objects.get(pk=agent_id)
    assert (registration.state, registration.failed_claim_attempts, registration.pending_api_key) == (
        RegistrationState.PENDING,
        1,
        None,
    )
    failure = AuditEvent.objects.get(action="agent.claim_failed")
    assert (failure.actor, failure.actor_label, failure.source_address) == (oscar, "user:oscar", "198.51.100.4")
    assert failure.object_id == str(agent_id)
    assert failure.details == {"reason": "invalid_claim_token", "failed_attempts": 1, "locked": False}


def test_five_wrong_tokens_lock_the_claim_until_the_agent_registers_again(
    client_for, oscar, section_a, agent_id, assert_error
):
    client = client_for(oscar)
    for attempt in range(1, 6):
        response = client.post(
            "/v1/agents/claim", claim_body(agent_id, section_a, token=f"guess-{attempt}"), format="json"
        )
        assert_error(response, 409, "invalid_claim_token")
    assert AuditEvent.objects.filter(action="agent.claim_failed").first().details["locked"] is True

    for token in ("guess-6", TOKEN):  # even the right token
        response = client.post("/v1/agents/claim", claim_body(agent_id, section_a, token=token), format="json")
        assert_error(response, 409, "claim_locked")
    assert not Agent.objects.exists()
    assert AgentRegistration.objects.get(pk=agent_id).failed_claim_attempts == 5

    new_token = "N3wT0ken" * 8
    register(agent_id, token=new_token)  # the agent restarts with a new token
    response = client.post("/v1/agents/claim", claim_body(agent_id, section_a, token=TOKEN), format="json")
    assert_error(response, 409, "invalid_claim_token")  # the old token is gone with the lock
    response = client.post("/v1/agents/claim", claim_body(agent_id, section_a, token=new_token), format="json")
    assert response.status_code == 200, response.content


def test_an_expired_claim_is_refused(client_for, oscar, section_a, agent_id, assert_error):
    with time_machine.travel(timezone.now() + timedelta(hours=24, seconds=1)):
        response = client_for(oscar).post("/v1/agents/claim", claim_body(agent_id, section_a), format="json")
    assert_error(response, 409, "claim_expired")
    assert not Agent.objects.exists()
    assert AgentRegistration.objects.get(pk=agent_id).state == RegistrationState.PENDING


def test_a_claimed_agent_cannot_be_claimed_again(client_for, oscar, alice, section_a, agent_id, assert_error):
    assert client_for(oscar).post("/v1/agents/claim", claim_body(agent_id, section_a), format="json").status_code == 200
    other_section = SectionFactory(tenant=section_a.tenant)
    key = AgentRegistration.objects.get(pk=agent_id).pending_api_key

    response = client_for(alice).post("/v1/agents/claim", claim_body(agent_id, other_section), format="json")

    assert_error(response, 409, "already_claimed")
    assert Agent.objects.get(pk=agent_id).section == section_a
    assert AgentRegistration.objects.get(pk=agent_id).pending_api_key == key
    assert Endpoint.objects.count() == 1


def _without(key):
    return lambda body: body.pop(key)


def _set(key, value):
    return lambda body: body.update({key: value})


BAD_INPUTS = [
    ("missing-agentId", _without("agentId"), "agentId"),
    ("missing-token", _without("claimToken"), "claimToken"),
    ("missing-section", _without("sectionId"), "sectionId"),
    ("bad-agentId", _set("agentId", "agent-1"), "agentId"),
    ("bad-sectionId", _set("sectionId", "42"), "sectionId"),
    ("empty-token", _set("claimToken", ""), "claimToken"),
    ("token-not-a-string", _set("claimToken", ["a"]), "claimToken"),
    ("name-too-long", _set("name", "n" * 201), "name"),
]


@pytest.mark.parametrize(("change", "field"), [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS])
def test_it_rejects_bad_input(client_for, oscar, section_a, agent_id, db_state, assert_error, change, field):
    client = client_for(oscar)
    body = claim_body(agent_id, section_a)
    change(body)
    before = (db_state(), registration_row(agent_id))

    response = client.post("/v1/agents/claim", body, format="json")

    assert_error(response, 400, "validation_error", field=field)
    assert (db_state(), registration_row(agent_id)) == before
