"""Two `manage.py serve` instances against one PostgreSQL database, each with the alerting worker
that `serve` runs beside it: what one instance does, the other sees on its very next request.

- An agent registered, claimed and handed its key through instance A reports through instance B
  (heartbeat, configuration, results), and its key is delivered once across both instances.
- A key revoked or rotated through A is refused by B at once, although B's web worker holds the
  agent's configuration document in memory (fetched through B before the change).
- An incident both evaluators find is opened, and notified, once: rules are locked per tenant with
  SKIP LOCKED and notifications are leased.

SQLite has a single writer and no SKIP LOCKED, and two servers cannot share its file safely: the
module needs PostgreSQL."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from agents.keys import api_key_hash
from agents.models import Agent
from alerting.models import DeliveryAttempt, Incident, IncidentEvent, Notification
from endpoints.models import Endpoint
from results.models import CheckResult, Heartbeat
from tenants.models import Section
from tests.alerting.receiver import Receiver
from tests.factories import MembershipFactory, TenantFactory, UserFactory
from tests.reliability.conftest import CANONICAL, CLAIM_TOKEN, check_contract_error, login, onboard_agent
from tests.results import result_item
from tests.server import Response, ServerProcess, start_server

# django_db: the test database is set up, and each test's own connection is rolled back (it writes
# nothing itself). The skip is decided before that database is made.
pytestmark = [
    pytest.mark.server,
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="two instances and their evaluators share one PostgreSQL database (SQLite: one writer, no SKIP LOCKED)",
    ),
]

# Every instance runs its evaluator (as serve does by default), once a second; both may send to the
# receiver on 127.0.0.1.
SERVER_ENV = {"SMOTRA_ALERTS_RUN_IN_SERVE": "true", "SMOTRA_ALERTS_ALLOW_PRIVATE_TARGETS": "true"}
SERVER_CONFIG = "server:\n  drain_delay: 0s\n  shutdown_timeout: 10s\nalerts:\n  evaluation_interval: 1s\n"
EVALUATIONS = re.compile(r"^smotra_alert_evaluation_seconds_count (\S+)$", re.MULTILINE)
OPENED = re.compile(r"evaluated \d+ rule\(s\) in \S+ s: (\d+) opened")


@dataclass
class Pair:
    """Instance A (where people and the onboarding go) and instance B (where the agent reports),
    and a tenant whose admin holds a bearer token from A."""

    a: ServerProcess
    b: ServerProcess
    tenant_id: str
    token: str

    def people(self, method: str, path: str, body=None, server: ServerProcess | None = None) -> Response:
        """A request of the tenant admin, through instance A unless told."""
        headers = {"Authorization": f"Bearer {self.token}"}
        return (server or self.a).request(method, CANONICAL + path, body, headers=headers)

    def section(self) -> Section:
        """A new section, made through A, whose agents monitor all its endpoints: one per test, so that
        a configuration document holds only that test's endpoints."""
        body = {"tenant_id": self.tenant_id, "name": f"edge-{uuid.uuid4().hex[:8]}", "monitor_all_endpoints": True}
        response = self.people("POST", "/sections", body)
        assert response.status == 201, response.body
        return Section.objects.get(pk=response.json()["id"])

    def endpoint(self, section: Section, address: str, port: int | None = None) -> Endpoint:
        """A new endpoint of ``section``, made through A."""
        response = self.people("POST", "/endpoints", {"section_id": str(section.pk), "address": address, "port": port})
        assert response.status == 201, response.body
        return Endpoint.objects.get(pk=response.json()["id"])

    def log_marks(self) -> dict:
        """Where each instance's log ends now: :meth:`logged_since` reads what came after."""
        return {server.port: len(server.log()) for server in (self.a, self.b)}

    def logged_since(self, marks: dict) -> dict:
        return {server.port: server.log()[marks[server.port] :] for server in (self.a, self.b)}


def agent_call(server: ServerProcess, agent_id, key: str, method: str, route: str, body=None) -> Response:
    return server.request(method, f"{CANONICAL}/agent/{agent_id}/{route}", body, headers={"X-Agent-API-Key": key})


def start_instances(directory: Path) -> list[ServerProcess]:
    """A and B, started side by side (each takes seconds to boot). B has one web worker, so the
    worker that answers after a key change is the one that kept the document of the request before."""
    envs = [SERVER_ENV, {**SERVER_ENV, "SMOTRA_WORKERS": "1"}]
    for name in ("a", "b"):
        (directory / f"config-{name}.yaml").write_text(SERVER_CONFIG)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(start_server, directory, env=env, args=["--config", str(directory / f"config-{name}.yaml")])
            for name, env in zip("ab", envs, strict=True)
        ]
    started = [future.result() for future in futures if future.exception() is None]
    if len(started) < len(futures):
        stop_instances(started)
        raise next(future.exception() for future in futures if future.exception() is not None)
    return started


def stop_instances(servers: list[ServerProcess]) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        codes = list(pool.map(ServerProcess.stop, servers))
    assert codes == [0] * len(servers), codes


@pytest.fixture(scope="module")
def pair(django_db_setup, django_db_blocker, tmp_path_factory):
    """Both instances, started once for the module (booting one takes seconds).

    The servers see only committed rows, and transactional_db's flush after every test, with two
    evaluators taking row locks every second, could deadlock. So the tenant and its admin are
    committed here, everything else is made through A's API, the tests only read (inside the
    rollback that ``django_db`` gives them), and the tables are emptied once the servers are down,
    as transactional_db does."""
    with django_db_blocker.unblock():
        assert connection.settings_dict["NAME"].startswith("test_"), "the test database is not set up"
        servers = []
        try:
            tenant = TenantFactory(name="Two Instances")
            MembershipFactory(user=UserFactory(username="pairadmin"), tenant=tenant, role="admin")
            servers = start_instances(tmp_path_factory.mktemp("two-instances"))
            yield Pair(a=servers[0], b=servers[1], tenant_id=str(tenant.pk), token=login(servers[0], "pairadmin"))
        finally:
            try:
                stop_instances(servers)
            finally:
                call_command("flush", verbosity=0, interactive=False, reset_sequences=False)


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def heartbeat() -> dict:
    """The flat heartbeat of older agents, with a recognisable number."""
    return {
        "timestamp": now_rfc3339(),
        "status": "healthy",
        "cpu_usage_percent": 12.5,
        "memory_usage_mb": 64.0,
        "memory_total_mb": 2048.0,
        "system_uptime_secs": 3600,
    }


def tcp_result(agent_id, endpoint_id, *, connected: bool) -> dict:
    result = {
        "resolved_ip": "203.0.113.10",
        "connected": connected,
        "connect_time_ms": 2.5 if connected else None,
        "error_details": None if connected else {"errors": ["connection refused"]},
    }
    return result_item(agent_id, endpoint_id, "tcpconnect", result, timestamp=now_rfc3339())


def assert_refused_key(response: Response) -> None:
    """The contract's answer to a wrong, revoked or unknown key (AGENT_API.md §6)."""
    body = check_contract_error(response, 401)
    assert (body["error"], body["message"]) == ("unauthorized", "Invalid authentication"), body
    headers = {name.lower(): value for name, value in response.headers.items()}
    assert headers.get("www-authenticate") == "X-Agent-API-Key", headers


def stored_for(agent_id) -> tuple[int, int]:
    """(heartbeats, results) stored for the agent."""
    return Heartbeat.objects.filter(agent_id=agent_id).count(), CheckResult.objects.filter(agent_id=agent_id).count()


def works_on(server: ServerProcess, agent_id, key: str, endpoint_id) -> dict:
    """The agent's three data-plane requests through ``server`` succeed; returns its document."""
    beat = agent_call(server, agent_id, key, "POST", "heartbeat", heartbeat())
    assert (beat.status, beat.body) == (204, b""), (beat.status, beat.body)
    document = agent_call(server, agent_id, key, "GET", "configuration")
    assert document.status == 200, document.body
    batch = agent_call(
        server, agent_id, key, "POST", "results", {"results": [tcp_result(agent_id, endpoint_id, connected=True)]}
    )
    assert batch.status == 202, batch.body
    assert (batch.json()["accepted"], batch.json()["rejected"]) == (1, []), batch.json()
    return document.json()


def refused_on(server: ServerProcess, agent_id, key: str, endpoint_id) -> None:
    """The configuration (first: the one answered from memory before), heartbeat and results of
    ``key`` through ``server`` are refused, and nothing is stored."""
    before = stored_for(agent_id)
    assert_refused_key(agent_call(server, agent_id, key, "GET", "configuration"))
    assert_refused_key(agent_call(server, agent_id, key, "POST", "heartbeat", heartbeat()))
    batch = {"results": [tcp_result(agent_id, endpoint_id, connected=True)]}
    assert_refused_key(agent_call(server, agent_id, key, "POST", "results", batch))
    assert stored_for(agent_id) == before


# ---------------------------------------------------------------------------------------------
# Onboarding on A, reporting on B


def test_an_agent_onboarded_through_a_reports_through_b(pair):
    section = pair.section()
    target = pair.endpoint(section, "203.0.113.10", 443)
    agent_id = uuid.uuid4()
    registration = {
        "agentId": str(agent_id),
        "claimTokenHash": hashlib.sha256(CLAIM_TOKEN.encode()).hexdigest(),
        "hostname": "probe-two",
        "agentVersion": "0.4.2",
        "ipAddresses": [{"ip": "192.0.2.44", "iface": "eth0", "family": "ipv4", "recommended": True}],
    }
    registered = pair.a.request("POST", f"{CANONICAL}/agent/register", registration)
    assert registered.status == 201, registered.body
    poll_path = CANONICAL + registered.json()["pollUrl"]
    # B sees A's registration at once (pending, with the expiry A set).
    pending = pair.b.request("GET", poll_path)
    assert pending.status == 200 and pending.json()["status"] == "pending_claim", pending.body
    assert pending.json()["expiresAt"] == registered.json()["expiresAt"]

    claim = {"agentId": str(agent_id), "claimToken": CLAIM_TOKEN, "sectionId": str(section.pk), "name": "two"}
    claimed = pair.people("POST", "/agents/claim", claim)
    assert claimed.status == 200, claimed.body
    delivery = pair.a.request("GET", poll_path)
    assert delivery.status == 200 and delivery.json()["status"] == "claimed", delivery.body
    key = delivery.json()["apiKey"]
    # Delivered once across the instances: B's poll after A's delivery reveals nothing.
    again = pair.b.request("GET", poll_path)
    assert again.status == 200 and again.json()["status"] == "pending_claim" and "apiKey" not in again.json()
    assert Agent.objects.get(pk=agent_id).api_key_hash == api_key_hash(key)

    beat = agent_call(pair.b, agent_id, key, "POST", "heartbeat", heartbeat())
    assert (beat.status, beat.body) == (204, b""), (beat.status, beat.body)
    [stored_beat] = Heartbeat.objects.filter(agent_id=agent_id)
    assert (stored_beat.cpu_usage_percent, stored_beat.memory_total_mb) == (12.5, 2048.0)
    assert Agent.objects.get(pk=agent_id).last_seen_at is not None

    document = agent_call(pair.b, agent_id, key, "GET", "configuration")
    assert document.status == 200, document.body
    assert (document.json()["agent_id"], document.json()["agent_name"]) == (str(agent_id), "two")
    assert document.json()["server"]["api_key"] is None
    assert document.json()["endpoints"] == [
        {"id": str(target.pk), "address": "203.0.113.10", "port": 443, "enabled": True, "tags": []}
    ]

    items = [tcp_result(agent_id, target.pk, connected=True), tcp_result(agent_id, target.pk, connected=False)]
    batch = agent_call(pair.b, agent_id, key, "POST", "results", {"results": items})
    assert batch.status == 202, batch.body
    body = batch.json()
    assert (body["accepted"], body["duplicates_skipped"], body["rejected"]) == (2, 0, []), body
    stored = CheckResult.objects.filter(agent_id=agent_id).order_by("id")
    assert [(str(row.pk), row.endpoint_id, row.success) for row in stored] == [
        (items[0]["id"], target.pk, True),
        (items[1]["id"], target.pk, False),
    ]
    assert Agent.objects.get(pk=agent_id).last_result_at is not None


# ---------------------------------------------------------------------------------------------
# Key changes on A, refused by B at once


def test_a_key_revoked_through_a_is_refused_by_b_at_once(pair):
    section = pair.section()
    target = pair.endpoint(section, "203.0.113.20")
    agent_id, key = onboard_agent(pair.a, section, pair.token)
    document = works_on(pair.b, agent_id, key, target.pk)  # B now keeps the document in memory
    assert document["agent_id"] == str(agent_id)

    revoked = pair.people("POST", f"/agents/{agent_id}/revoke")

    assert revoked.status == 200, revoked.body
    assert revoked.json()["status"] == "revoked"
    refused_on(pair.b, agent_id, key, target.pk)
    agent = Agent.objects.get(pk=agent_id)
    assert agent.revoked_at is not None and agent.api_key_hash is None


def test_a_key_rotated_through_a_is_refused_by_b_and_the_new_key_works_there(pair):
    section = pair.section()
    target = pair.endpoint(section, "203.0.113.30")
    agent_id, old_key = onboard_agent(pair.a, section, pair.token)
    before = works_on(pair.b, agent_id, old_key, target.pk)

    rotated = pair.people("POST", f"/agents/{agent_id}/rotate-key")

    assert rotated.status == 200, rotated.body
    new_key = rotated.json()["apiKey"]
    assert rotated.json()["agentId"] == str(agent_id) and new_key != old_key
    refused_on(pair.b, agent_id, old_key, target.pk)
    heartbeats, results = stored_for(agent_id)
    assert works_on(pair.b, agent_id, new_key, target.pk) == before
    assert stored_for(agent_id) == (heartbeats + 1, results + 1)
    assert Agent.objects.get(pk=agent_id).api_key_hash == api_key_hash(new_key)


# ---------------------------------------------------------------------------------------------
# Two evaluators, one incident


def evaluations(server: ServerProcess) -> float:
    """How many passes the instance's evaluator has finished (its /metrics)."""
    response = server.request("GET", "/metrics")
    assert response.status == 200, response.body[:300]
    found = EVALUATIONS.search(response.body.decode())
    return float(found.group(1)) if found else 0.0


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


FAILURES = ("alerting evaluation failed", "evaluating a tenant's rules failed", "alerting delivery failed")


def down_rule(pair: Pair, endpoint, channel_id: str) -> str:
    """A rule, made through A: the endpoint has had no successful check for a minute; its id."""
    body = {
        "name": "target down",
        "severity": "critical",
        "condition": {
            "metric": "status",
            "operator": "equals",
            "threshold": 0,
            "window_seconds": 60,
            "duration_seconds": 0,
            "filters": {"endpoint_ids": [str(endpoint.pk)]},
        },
        "quorum": {"min_agents": 1, "min_percent": 50},
        "notifications": [channel_id],
        "cooldown_seconds": 3600,  # no reminder within the test: the opening is the only notification
    }
    response = pair.people("POST", "/alert-rules", body)
    assert response.status == 201, response.body
    return response.json()["id"]


def test_an_incident_both_evaluators_find_is_opened_and_notified_once(pair):
    section = pair.section()
    target = pair.endpoint(section, "203.0.113.40", 443)
    agent_id, key = onboard_agent(pair.a, section, pair.token)
    marks = pair.log_marks()
    with Receiver() as receiver:
        hook = {"name": "hook", "type": "webhook", "configuration": {"url": f"{receiver.url}/hook"}}
        channel = pair.people("POST", "/channels", hook)
        assert channel.status == 201, channel.body
        channel_id = channel.json()["id"]
        rule_id = down_rule(pair, target, channel_id)

        # The agent is online (a heartbeat) and every check of the target fails, all through B.
        assert agent_call(pair.b, agent_id, key, "POST", "heartbeat", heartbeat()).status == 204
        failures = {"results": [tcp_result(agent_id, target.pk, connected=False) for _ in range(3)]}
        batch = agent_call(pair.b, agent_id, key, "POST", "results", failures)
        assert batch.status == 202 and batch.json()["accepted"] == 3, batch.body

        wait_for(lambda: Incident.objects.filter(rule_id=rule_id).exists(), 20, "the incident")
        wait_for(lambda: receiver.requests, 20, "its notification")
        # Both evaluators go on judging the open incident, a few passes each.
        passes = {server.port: evaluations(server) for server in (pair.a, pair.b)}
        wait_for(
            lambda: all(evaluations(server) >= passes[server.port] + 3 for server in (pair.a, pair.b)),
            20,
            "three more passes of each evaluator",
        )
        time.sleep(0.5)  # a delivery attempted in the last pass reaches the receiver
        received = [
            (request.path, request.json()["event"], request.json()["alert"]["id"]) for request in receiver.requests
        ]

    [incident] = Incident.objects.filter(rule_id=rule_id)
    assert (incident.status, incident.endpoint_id, incident.failing_agents) == ("active", target.pk, [str(agent_id)])
    events = IncidentEvent.objects.filter(incident=incident).values_list("kind", flat=True)
    assert list(events) == ["opened", "notified"]
    [notification] = Notification.objects.filter(channel_id=channel_id)
    assert (notification.incident_id, notification.event) == (incident.pk, "alert.opened")
    assert notification.status == "delivered"
    assert DeliveryAttempt.objects.filter(notification=notification).count() == 1
    assert received == [("/hook", "alert.opened", str(incident.pk))]
    for server in (pair.a, pair.b):  # each instance's API lists the one open incident
        listed = pair.people("GET", f"/alerts?status=open&rule_id={rule_id}", server=server)
        assert listed.status == 200, listed.body
        assert [alert["id"] for alert in listed.json()["alerts"]] == [str(incident.pk)]
    # One evaluator opened it, and neither lost a race late (the one-open-incident constraint
    # refusing its insert would roll its tenant back and be logged as a failure).
    logs = pair.logged_since(marks)
    assert sum(int(count) for log in logs.values() for count in OPENED.findall(log)) == 1, logs
    for log in logs.values():
        assert not [line for line in log.splitlines() if any(f in line for f in FAILURES) or "Traceback" in line], log
