"""GET {prefix}/agent/{id}/claim-status (contract §4): backoff, truthful expiry, one-time key delivery."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from agents.keys import api_key_hash
from agents.models import Agent, AgentRegistration, RegistrationState
from agents.services.onboarding import agent_claim
from tenants.models import AuditEvent
from tenants.services import Actor

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TOKEN = "Kx7pQ2mZ" * 8
PATHS = ["/api/v1/agent/{id}/claim-status", "/v1/agents/{id}/claim-status", "/agent/{id}/claim-status"]
KNOWN_STATUSES = {"pending_claim", "claimed"}


def register(client, agent_id=None) -> uuid.UUID:
    agent_id = agent_id or uuid.uuid4()
    body = {
        "agentId": str(agent_id),
        "claimTokenHash": hashlib.sha256(TOKEN.encode()).hexdigest(),
        "hostname": "probe-1",
        "agentVersion": "0.4.2",
        "ipAddresses": [{"ip": "192.0.2.10", "iface": "eth0", "family": "ipv4", "recommended": True}],
    }
    response = client.post("/v1/agent/register", body, format="json")
    assert response.status_code == 201, response.content
    return agent_id


def claim(agent_id, section, user) -> Agent:
    return agent_claim(
        actor=Actor(user=user, label=f"user:{user.username}"), agent_id=agent_id, claim_token=TOKEN, section=section
    )


def poll(client, agent_id, path: str = PATHS[1]) -> dict:
    response = client.get(path.format(id=agent_id))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] in KNOWN_STATUSES  # the agent aborts on anything else
    return body


def test_unknown_agent_is_not_found(api_client, assert_error):
    response = api_client.get(f"/v1/agent/{uuid.uuid4()}/claim-status")
    assert_error(response, 404, "not_found")


def test_a_bad_path_id_is_not_found(api_client, assert_error):
    response = api_client.get("/v1/agent/not-a-uuid/claim-status")
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("path", PATHS)
def test_pending_answers_with_backoff_capped_at_the_maximum(api_client, path):
    with time_machine.travel(NOW, tick=False):
        agent_id = register(api_client)
        answers = [poll(api_client, agent_id, path) for _ in range(14)]

    assert {tuple(sorted(answer)) for answer in answers} == {("expiresAt", "pollIn", "status")}
    assert {answer["status"] for answer in answers} == {"pending_claim"}
    assert {answer["expiresAt"] for answer in answers} == {"2025-03-02T12:00:00Z"}
    assert [answer["pollIn"] for answer in answers] == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 60, 60]
    registration = AgentRegistration.objects.get(pk=agent_id)
    assert (registration.poll_count, registration.last_polled_at) == (14, NOW)


def test_backoff_follows_the_configuration(api_client, settings):
    agent = replace(
        settings.SMOTRA.agent,
        claim_poll_initial_interval_secs=2,
        claim_poll_increment_secs=3,
        claim_poll_max_interval_secs=9,
    )
    settings.SMOTRA = replace(settings.SMOTRA, agent=agent)
    agent_id = register(api_client)
    assert [poll(api_client, agent_id)["pollIn"] for _ in range(5)] == [2, 5, 8, 9, 9]


def test_path_id_in_any_spelling_is_the_same_agent(api_client):
    agent_id = register(api_client)
    for spelling in (str(agent_id).upper(), agent_id.hex, f"{{{agent_id}}}"):
        assert poll(api_client, spelling)["status"] == "pending_claim"
    assert AgentRegistration.objects.get(pk=agent_id).poll_count == 3


def test_an_expired_claim_still_answers_pending_with_its_past_expiry(api_client):
    with time_machine.travel(NOW, tick=False):
        agent_id = register(api_client)
    with time_machine.travel(NOW + timedelta(hours=30), tick=False):
        body = poll(api_client, agent_id)
    assert body["status"] == "pending_claim"
    assert body["expiresAt"] == "2025-03-02T12:00:00Z"  # in the past: how the agent learns it expired
    assert body["pollIn"] == 5


@pytest.mark.parametrize("path", PATHS)
def test_the_key_is_delivered_once_then_pending_again(api_client, section_a, oscar, path):
    agent_id = register(api_client)
    poll(api_client, agent_id, path)
    agent = claim(agent_id, section_a, oscar)

    first = poll(api_client, agent_id, path)
    assert set(first) == {"status", "apiKey", "configUrl"}
    assert first["status"] == "claimed"
    assert first["configUrl"] == f"/agent/{agent_id}/configuration"
    agent.refresh_from_db()
    assert agent.api_key_hash == api_key_hash(first["apiKey"])

    second = poll(api_client, agent_id, path)
    assert set(second) == {"status", "expiresAt", "pollIn"}  # reveals nothing
    assert second["status"] == "pending_claim"
    third = poll(api_client, agent_id, path)
    assert "apiKey" not in third

    registration = AgentRegistration.objects.get(pk=agent_id)
    assert registration.state == RegistrationState.DELIVERED
    assert registration.pending_api_key is None
    assert registration.delivered_at is not None


def test_the_delivery_is_audited_with_the_agent_and_its_address(api_client, section_a, oscar):
    agent_id = register(api_client)
    claim(agent_id, section_a, oscar)
    poll(api_client, agent_id)
    poll(api_client, agent_id)

    delivery = AuditEvent.objects.get(action="agent.key_delivered")
    assert delivery.actor is None
    assert delivery.actor_label == f"agent:{agent_id}"
    assert delivery.object_id == str(agent_id)
    assert delivery.source_address == "127.0.0.1"
    assert "smk_" not in repr(AuditEvent.objects.values())  # the key itself is never logged


def test_a_rotated_key_is_never_delivered(api_client, section_a, alice):
    """Rotation before the first poll kills the undelivered key; the poll must not hand it out."""
    from agents.services.keys import agent_key_rotate

    agent_id = register(api_client)
    agent = claim(agent_id, section_a, alice)
    agent_key_rotate(actor=Actor(user=alice, label="user:alice"), agent=agent)

    body = poll(api_client, agent_id)
    assert body["status"] == "pending_claim"
    assert "apiKey" not in body


def test_every_answer_over_a_lifecycle_is_one_the_agent_knows(api_client, section_a, oscar):
    with time_machine.travel(NOW, tick=False) as clock:
        agent_id = register(api_client)
        seen = []
        for step in range(6):
            if step == 3:
                claim(agent_id, section_a, oscar)
            seen.append(poll(api_client, agent_id)["status"])
            clock.shift(timedelta(seconds=10))
    assert seen == ["pending_claim"] * 3 + ["claimed"] + ["pending_claim"] * 2
