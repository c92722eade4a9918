"""An agent's life after its claim: deleting it through the API, and a revoked agent coming back.

(401, roles, another tenant and bad ids of DELETE come from tests/api_cases.py via test_agents_api.py.)

Deleting forgets the agent with its results, vitals and registration (revoking keeps them); a
revoked agent that registers again from its own address is claimed back into the same record (same
id, same history), by its own tenant only."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from agents.keys import api_key_hash
from agents.models import Agent, AgentRegistration, RegistrationState
from endpoints.models import Endpoint
from results.models import CheckResult, Heartbeat
from tests.factories import EndpointFactory
from tests.results import key_header, result_item

pytestmark = pytest.mark.django_db

TOKEN = "Kx7pQ2mZ" * 8
NEW_TOKEN = "N3wT0ken" * 8
AGENT_ADDRESS = "192.0.2.10"


def register(api_client, agent_id, token=TOKEN, address=AGENT_ADDRESS):
    body = {
        "agentId": str(agent_id),
        "claimTokenHash": hashlib.sha256(token.encode()).hexdigest(),
        "hostname": "probe-1",
        "agentVersion": "0.4.2",
        "ipAddresses": [{"ip": AGENT_ADDRESS, "iface": "eth0", "family": "ipv4", "recommended": True}],
    }
    return api_client.post("/v1/agent/register", body, format="json", REMOTE_ADDR=address)


def claim(client, agent_id, section, token=TOKEN, name=None):
    body = {"agentId": str(agent_id), "claimToken": token, "sectionId": str(section.pk)}
    if name:
        body["name"] = name
    return client.post("/api/v1/agents/claim", body, format="json")


def key_of(api_client, agent_id) -> str:
    answer = api_client.get(f"/v1/agent/{agent_id}/claim-status", REMOTE_ADDR=AGENT_ADDRESS).json()
    assert answer["status"] == "claimed", answer
    return answer["apiKey"]


@pytest.fixture
def onboarded(api_client, client_for, oscar, section_a):
    """A claimed agent with its key, one stored result and one heartbeat."""
    agent_id = uuid.uuid4()
    assert register(api_client, agent_id).status_code == 201
    assert claim(client_for(oscar), agent_id, section_a, name="edge-1").status_code == 200
    key = key_of(api_client, agent_id)
    endpoint = EndpointFactory(section=section_a)
    headers = key_header(key)
    body = {"results": [result_item(agent_id, endpoint.pk)]}
    assert api_client.post(f"/v1/agent/{agent_id}/results", body, format="json", **headers).status_code == 202
    heartbeat = {"timestamp": "2025-06-01T12:00:00Z", "status": "healthy"}
    assert api_client.post(f"/v1/agent/{agent_id}/heartbeat", heartbeat, format="json", **headers).status_code == 204
    return agent_id, key


# ---------------------------------------------------------------------------------------------
# DELETE /agents/{id}


def test_an_admin_deletes_an_agent_with_its_results_and_vitals(api_client, client_for, alice, onboarded):
    agent_id, key = onboarded
    self_endpoint = Agent.objects.get(pk=agent_id).self_endpoint_id
    response = client_for(alice).delete(f"/api/v1/agents/{agent_id}")
    assert response.status_code == 204
    assert not Agent.objects.filter(pk=agent_id).exists()
    assert not CheckResult.objects.filter(agent_id=agent_id).exists()
    assert not Heartbeat.objects.filter(agent_id=agent_id).exists()
    assert not Endpoint.objects.filter(pk=self_endpoint).exists()
    assert not AgentRegistration.objects.filter(pk=agent_id).exists()
    configuration = api_client.get(f"/v1/agent/{agent_id}/configuration", **key_header(key))
    assert configuration.status_code == 401
    assert register(api_client, agent_id, token=NEW_TOKEN).status_code == 201  # it may start afresh


@pytest.mark.parametrize("prefix", ["/api/v1", "/v1", ""])
def test_delete_is_under_every_prefix(client_for, alice, onboarded, prefix):
    agent_id, _key = onboarded
    assert client_for(alice).delete(f"{prefix}/agents/{agent_id}").status_code == 204


# ---------------------------------------------------------------------------------------------
# A revoked agent comes back


def test_a_revoked_agent_registers_again_and_is_claimed_back_into_the_same_record(
    api_client, client_for, alice, oscar, section_a, onboarded
):
    agent_id, old_key = onboarded
    assert client_for(alice).post(f"/api/v1/agents/{agent_id}/revoke").status_code == 200
    created_at = Agent.objects.get(pk=agent_id).created_at

    response = register(api_client, agent_id, token=NEW_TOKEN)
    assert response.status_code == 200 and response.json()["status"] == "pending_claim"
    assert AgentRegistration.objects.get(pk=agent_id).state == RegistrationState.PENDING
    assert api_client.get(f"/v1/agent/{agent_id}/claim-status", REMOTE_ADDR=AGENT_ADDRESS).json()["status"] == (
        "pending_claim"
    )

    assert claim(client_for(oscar), agent_id, section_a, token=NEW_TOKEN).status_code == 200
    new_key = key_of(api_client, agent_id)
    agent = Agent.objects.get(pk=agent_id)
    assert (agent.revoked_at, agent.created_at, agent.name) == (None, created_at, "edge-1")
    assert agent.api_key_hash == api_key_hash(new_key) != api_key_hash(old_key)
    assert CheckResult.objects.filter(agent_id=agent_id).count() == 1  # same history
    assert Agent.objects.count() == 1
    configuration = api_client.get(f"/v1/agent/{agent_id}/configuration", **key_header(new_key))
    assert configuration.status_code == 200
    assert api_client.get(f"/v1/agent/{agent_id}/configuration", **key_header(old_key)).status_code == 401


def test_a_revoked_agent_returns_to_its_own_tenant_only(
    api_client, client_for, alice, bob, section_b, onboarded, assert_error
):
    agent_id, _key = onboarded
    client_for(alice).post(f"/api/v1/agents/{agent_id}/revoke")
    register(api_client, agent_id, token=NEW_TOKEN)
    assert_error(claim(client_for(bob), agent_id, section_b, token=NEW_TOKEN), 409, "already_claimed")
    assert Agent.objects.get(pk=agent_id).section.tenant.name == "Tenant A"


def test_only_the_agents_address_may_reopen_a_revoked_agent(api_client, client_for, alice, onboarded, assert_error):
    agent_id, _key = onboarded
    client_for(alice).post(f"/api/v1/agents/{agent_id}/revoke")
    response = register(api_client, agent_id, token=NEW_TOKEN, address="203.0.113.66")
    assert_error(response, 409, "registration_conflict")
    assert AgentRegistration.objects.get(pk=agent_id).state == RegistrationState.DELIVERED


def test_a_live_agent_still_cannot_register_again(api_client, onboarded, assert_error):
    agent_id, _key = onboarded
    assert_error(register(api_client, agent_id, token=NEW_TOKEN), 409, "already_claimed")
