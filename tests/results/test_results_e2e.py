"""The agent data plane over HTTP against the real server (`manage.py serve`, gunicorn) at /v1.

An agent registers and is claimed, is placed in a topology, fetches its configuration (200, then
304), sends both heartbeat shapes, a status report and results of every check type; a resent batch
stores nothing twice and a mixed batch stores its good items and lists the others."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from agents.models import Agent
from agents.services.management import agent_update
from agents.services.onboarding import agent_claim
from endpoints import services
from results.models import AgentStatusReport, CheckResult, Heartbeat, UnknownEndpoint
from tenants.services import Actor
from tests.factories import EndpointFactory, SectionFactory, TenantFactory
from tests.results import EXPECTED, SAMPLES, agent_with_key, all_types, random_id, result_item, stored_columns
from tests.server import ServerProcess, start_server

pytestmark = pytest.mark.server

TOKEN = "Zq8rT3nW" * 8
CLI = Actor.cli()


@pytest.fixture
def live(transactional_db, tmp_path):
    """The real server; drain_delay 0 so that stopping it costs nothing."""
    config = tmp_path / "config.yaml"
    config.write_text("server:\n  drain_delay: 0s\n")
    server = start_server(tmp_path, args=["--config", str(config)])
    yield server
    server.stop()


@dataclass
class Field:
    """A claimed agent placed in a topology, its key, and what it should monitor."""

    server: ServerProcess
    agent: Agent
    key: str
    web: object
    section: object

    def call(self, method: str, route: str, body=None, key: str | None = None, **headers):
        headers["X-Agent-API-Key"] = self.key if key is None else key
        return self.server.request(method, f"/v1/agent/{self.agent.pk}/{route}", body, headers)


def onboard(server: ServerProcess, section) -> tuple[Agent, str]:
    """Register over HTTP, claim with the service the admin uses, collect the key over HTTP."""
    agent_id = uuid.uuid4()
    registration = {
        "agentId": str(agent_id),
        "claimTokenHash": hashlib.sha256(TOKEN.encode()).hexdigest(),
        "hostname": "probe-e2e",
        "agentVersion": "0.4.2",
        "ipAddresses": [{"ip": "192.0.2.44", "iface": "eth0", "family": "ipv4", "recommended": True}],
    }
    assert server.request("POST", "/v1/agent/register", registration).status == 201
    agent_claim(actor=CLI, agent_id=agent_id, claim_token=TOKEN, section=section, name="probe-e2e")
    poll = server.request("GET", f"/v1/agent/{agent_id}/claim-status")
    assert poll.json()["status"] == "claimed"
    return Agent.objects.get(pk=agent_id), poll.json()["apiKey"]


@pytest.fixture
def field(live) -> Field:
    section = SectionFactory(tenant=TenantFactory(name="Field"), name="edge")
    agent, key = onboard(live, section)
    probes = services.tag_create(actor=CLI, section=section, name="probes", scope="agent")
    web = services.tag_create(actor=CLI, section=section, name="web", scope="endpoint")
    target = services.endpoint_create(actor=CLI, section=section, address="192.0.2.80", port=443, tag_ids=[web.pk])
    services.topology_create(
        actor=CLI, section=section, name="mesh", monitor_tag_ids=[probes.pk], target_tag_ids=[web.pk]
    )
    agent_update(actor=CLI, agent=agent, tag_ids=[probes.pk])
    # Its own endpoint is a target too: it must still not monitor itself.
    services.endpoint_update(actor=CLI, endpoint=agent.self_endpoint, tag_ids=[web.pk])
    return Field(live, Agent.objects.get(pk=agent.pk), key, target, section)


NESTED = {
    "timestamp": "2025-06-01T11:59:59.123456789Z",
    "health_status": "healthy",
    "metrics": {
        "agent_uptime_secs": 7200,
        "cpu_usage_percent": 3.25,
        "memory_usage_mb": 21.5,
        "memory_total_mb": 3951.0,
        "system_uptime_secs": 123456,
    },
    "agent_status": {
        "agent_version": "0.4.3",
        "config_version": 5,
        "is_running": True,
        "started_at": "2025-06-01T10:00:00Z",
        "stopped_at": None,
        "checks_performed": 10,
        "checks_successful": 9,
        "checks_failed": 1,
        "reported_at": None,
        "failed_report_count": 0,
        "server_connected": True,
        "cache_stats": {"len": 0, "capacity": 10000},
    },
}
FLAT = {
    "timestamp": "2025-06-01T12:00:00Z",
    "status": "degraded",
    "cpu_usage_percent": 97.5,
    "memory_usage_mb": 1024.5,
    "memory_total_mb": 2048,
    "system_uptime_secs": 42,
}


def test_a_claimed_agent_works_the_whole_data_plane_over_http(field):
    # Configuration: the document, then 304 for the version it holds.
    first = field.call("GET", "configuration")
    assert first.status == 200
    document = first.json()
    assert document["agent_id"] == str(field.agent.pk)
    assert document["tags"] == ["probes"]
    assert document["endpoints"] == [
        {"id": str(field.web.pk), "address": "192.0.2.80", "port": 443, "enabled": True, "tags": ["web"]}
    ]
    assert document["server"]["api_key"] is None
    assert first.headers["ETag"] == f'"{document["version"]}"'
    not_modified = field.call("GET", "configuration", **{"If-None-Match": first.headers["ETag"]})
    assert (not_modified.status, not_modified.body) == (304, b"")

    # Heartbeats of both shapes: 204, empty, numbers stored as sent.
    for body in (NESTED, FLAT):
        response = field.call("POST", "heartbeat", body)
        assert (response.status, response.body) == (204, b""), response.body
    nested, flat = Heartbeat.objects.filter(agent=field.agent).order_by("timestamp")
    assert (nested.cpu_usage_percent, nested.memory_usage_mb, nested.memory_total_mb) == (3.25, 21.5, 3951.0)
    assert (nested.system_uptime_secs, nested.agent_uptime_secs) == (123456, 7200)
    assert nested.timestamp == datetime(2025, 6, 1, 11, 59, 59, 123456, tzinfo=UTC)
    assert (flat.cpu_usage_percent, flat.memory_usage_mb, flat.memory_total_mb) == (97.5, 1024.5, 2048.0)
    assert (flat.system_uptime_secs, flat.health_status) == (42, "degraded")
    agent = Agent.objects.get(pk=field.agent.pk)
    assert agent.agent_version == "0.4.3"
    assert agent.last_seen_at is not None

    # A status report.
    report = field.call("POST", "report", NESTED["agent_status"])
    assert report.status == 202
    assert report.json().keys() == {"received_at"}
    stored_report = AgentStatusReport.objects.get(agent=field.agent)
    assert (stored_report.checks_performed, stored_report.checks_failed, stored_report.cache_capacity) == (10, 1, 10000)

    # Results of every check type.
    batch = all_types(field.agent.pk, field.web.pk)
    accepted = field.call("POST", "results", {"results": batch})
    assert accepted.status == 202
    assert (accepted.json()["accepted"], accepted.json()["rejected"]) == (6, [])
    for item in batch:
        stored = CheckResult.objects.get(pk=item["id"])
        columns, details = EXPECTED[stored.check_type]
        assert (stored.agent_id, stored.endpoint_id) == (field.agent.pk, field.web.pk)
        assert stored_columns(stored) == columns
        assert stored.details == details
    assert Agent.objects.get(pk=field.agent.pk).last_result_at is not None

    # The agent resends the batch (say the 202 was lost): nothing is stored twice.
    resent = field.call("POST", "results", {"results": batch})
    assert resent.status == 202
    assert (resent.json()["accepted"], resent.json()["duplicates_skipped"]) == (0, 6)
    assert CheckResult.objects.count() == 6


def test_a_mixed_batch_over_http_stores_the_good_items_and_bad_requests_are_refused(field):
    stranger = agent_with_key(SectionFactory(name="elsewhere"), key="smk_stranger-key-000000000000000000000000")
    foreign = EndpointFactory(section=stranger.section, address="foreign.example.net")
    unknown_id = random_id()
    good = [result_item(field.agent.pk, field.web.pk, check_type) for check_type in ("ping", "plugin")]
    items = [
        good[0],
        result_item(field.agent.pk, unknown_id, "ping"),
        result_item(stranger.pk, field.web.pk, "tcpconnect"),
        result_item(field.agent.pk, field.web.pk, "dns", SAMPLES["plugin"]),
        result_item(field.agent.pk, field.web.pk, "httpget", {**SAMPLES["httpget"], "status_code": -1}),
        result_item(field.agent.pk, foreign.pk, "tcpconnect"),
        good[1],
    ]

    response = field.call("POST", "results", {"results": items})

    assert response.status == 202
    body = response.json()
    assert (body["accepted"], body["duplicates_skipped"]) == (2, 0)
    assert [(entry["index"], entry["id"], entry["error"]) for entry in body["rejected"]] == [
        (1, items[1]["id"], "unknown_endpoint"),
        (2, items[2]["id"], "agent_id_mismatch"),
        (3, items[3]["id"], "invalid_check_type"),
        (4, items[4]["id"], "validation_error"),
        (5, items[5]["id"], "unknown_endpoint"),
    ]
    assert all(entry["message"] for entry in body["rejected"])
    assert {str(pk) for pk in CheckResult.objects.values_list("pk", flat=True)} == {item["id"] for item in good}
    assert [str(pk) for pk in UnknownEndpoint.objects.values_list("endpoint_id", flat=True)] == [unknown_id]

    # The same batch again: the good ones are duplicates, the others are listed again.
    again = field.call("POST", "results", {"results": items}).json()
    assert (again["accepted"], again["duplicates_skipped"], len(again["rejected"])) == (0, 2, 5)
    assert CheckResult.objects.count() == 2
    assert UnknownEndpoint.objects.get().count == 1  # a resend counts its unknown results once

    # Requests refused whole (checked here to spare another server start, the slow part).
    assert field.call("POST", "results", {"results": []}).json()["error"] == "empty_batch"
    too_many = field.call("POST", "results", {"results": [{}] * 1001})
    assert (too_many.status, too_many.json()["error"]) == (413, "payload_too_large")
    no_key = field.server.request("POST", f"/v1/agent/{field.agent.pk}/results", b"{oops")
    assert (no_key.status, no_key.json()["error"]) == (401, "unauthorized")
    malformed = field.call("POST", "results", b"{oops")
    assert (malformed.status, malformed.json()["error"]) == (400, "invalid_json")
    other_path = field.server.request(
        "GET", f"/v1/agent/{random_id()}/configuration", headers={"X-Agent-API-Key": field.key}
    )
    assert (other_path.status, other_path.json()["error"]) == (403, "forbidden")
    assert CheckResult.objects.count() == 2
