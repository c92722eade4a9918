"""Onboarding counters on /metrics: registrations, claim attempts by outcome, key deliveries, auth failures."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

TOKEN = "Kx7pQ2mZ" * 8

SERIES = [
    ("smotra_agent_registrations_total", {"outcome": "created"}),
    ("smotra_agent_registrations_total", {"outcome": "renewed"}),
    ("smotra_agent_registrations_total", {"outcome": "already_claimed"}),
    ("smotra_agent_claim_attempts_total", {"outcome": "claimed"}),
    ("smotra_agent_claim_attempts_total", {"outcome": "invalid_claim_token"}),
    ("smotra_agent_claim_attempts_total", {"outcome": "claim_not_found"}),
    ("smotra_agent_key_deliveries_total", {}),
    ("smotra_agent_auth_failures_total", {"reason": "missing"}),
    ("smotra_agent_auth_failures_total", {"reason": "invalid"}),
]


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(values: dict, name: str, labels: dict) -> float:
    return values.get((name, tuple(sorted(labels.items()))), 0.0)


def test_the_onboarding_counters_count(client, client_for, oscar, section_a):
    before = scrape(client)
    agent_id = uuid.uuid4()
    api = APIClient()
    people = client_for(oscar)

    register = {
        "agentId": str(agent_id),
        "claimTokenHash": hashlib.sha256(TOKEN.encode()).hexdigest(),
        "hostname": "probe-1",
        "agentVersion": "0.4.2",
    }
    assert api.post("/v1/agent/register", register, format="json").status_code == 201
    assert api.post("/v1/agent/register", register, format="json").status_code == 200
    claim = {"agentId": str(agent_id), "claimToken": TOKEN, "sectionId": str(section_a.pk)}
    assert people.post("/v1/agents/claim", {**claim, "claimToken": "wrong"}, format="json").status_code == 409
    assert people.post("/v1/agents/claim", {**claim, "agentId": str(uuid.uuid4())}, format="json").status_code == 404
    assert people.post("/v1/agents/claim", claim, format="json").status_code == 200
    assert api.post("/v1/agent/register", register, format="json").status_code == 409
    key = api.get(f"/v1/agent/{agent_id}/claim-status").json()["apiKey"]
    assert api.get(f"/v1/agent/{agent_id}/claim-status").json()["status"] == "pending_claim"  # no second delivery
    config = f"/v1/agent/{agent_id}/configuration"
    assert api.get(config).status_code == 401
    assert api.get(config, HTTP_X_AGENT_API_KEY="smk_wrong").status_code == 401
    assert api.get(config, HTTP_X_AGENT_API_KEY="smk_wrong2").status_code == 401
    assert api.get(config, HTTP_X_AGENT_API_KEY=key).status_code == 200  # success counts nothing

    after = scrape(client)
    increments = {
        (name, tuple(labels.values())): value(after, name, labels) - value(before, name, labels)
        for name, labels in SERIES
    }
    assert increments == {
        ("smotra_agent_registrations_total", ("created",)): 1,
        ("smotra_agent_registrations_total", ("renewed",)): 1,
        ("smotra_agent_registrations_total", ("already_claimed",)): 1,
        ("smotra_agent_claim_attempts_total", ("claimed",)): 1,
        ("smotra_agent_claim_attempts_total", ("invalid_claim_token",)): 1,
        ("smotra_agent_claim_attempts_total", ("claim_not_found",)): 1,
        ("smotra_agent_key_deliveries_total", ()): 1,
        ("smotra_agent_auth_failures_total", ("missing",)): 1,
        ("smotra_agent_auth_failures_total", ("invalid",)): 2,
    }


def test_labels_never_carry_an_agent_id(client, api_client):
    agent_id = uuid.uuid4()
    body = {
        "agentId": str(agent_id),
        "claimTokenHash": hashlib.sha256(TOKEN.encode()).hexdigest(),
        "hostname": "probe-1",
        "agentVersion": "0.4.2",
    }
    api_client.post("/v1/agent/register", body, format="json")
    api_client.get(f"/v1/agent/{agent_id}/configuration")
    text = client.get("/metrics").content.decode()
    assert "smotra_agent_registrations_total" in text
    assert str(agent_id) not in text
