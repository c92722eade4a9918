"""The bench's fleet and its requests: N agents onboarded through the real API, and the scenarios.

Each scenario is a function of a sequence number that makes one request; wrk replays a fixed list
of them (one per agent), bench/loadgen.py calls it for every request."""

from __future__ import annotations

import hashlib
import json
import secrets
import urllib.error
import urllib.request
import uuid
from typing import TYPE_CHECKING

from loadgen import Request

if TYPE_CHECKING:
    from servers import Server

BASELINE = "baseline (1 INSERT)"


class Api:
    def __init__(self, base: str):
        self.base = base
        self.token = None

    def call(self, method: str, path: str, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


def setup_fleet(server: Server, agents: int) -> tuple[list[tuple[str, str]], list[str]]:
    """A superuser, a tenant/section/topology, and N claimed agents with keys; endpoints to report on."""
    password = secrets.token_urlsafe(16)
    server.manage(
        "createsuperuser",
        "--noinput",
        "--username",
        "bench",
        "--email",
        "b@example.com",
        extra_env={"DJANGO_SUPERUSER_PASSWORD": password},
    )
    api = Api(f"http://127.0.0.1:{server.port}/api/v1")
    api.token = api.call("POST", "/auth/token", {"username": "bench", "password": password})[1]["access_token"]
    tenant = api.call("POST", "/tenants", {"name": "bench"})[1]["id"]
    section = api.call("POST", "/sections", {"tenant_id": tenant, "name": "bench"})[1]["id"]
    monitor = api.call("POST", "/tags", {"section_id": section, "name": "monitors", "scope": "agent"})[1]["id"]
    target = api.call("POST", "/tags", {"section_id": section, "name": "targets", "scope": "endpoint"})[1]["id"]
    endpoints = [
        api.call(
            "POST",
            "/endpoints",
            {"section_id": section, "address": f"10.0.{i // 250}.{i % 250 + 1}", "tag_ids": [target]},
        )[1]["id"]
        for i in range(20)
    ]
    api.call(
        "POST",
        "/topologies",
        {
            "section_id": section,
            "name": "mesh",
            "type": "full-mesh",
            "monitor_tag_ids": [monitor],
            "target_tag_ids": [target],
        },
    )
    fleet = []
    agent_api = Api(f"http://127.0.0.1:{server.port}/v1")
    for index in range(agents):
        agent_id, token = str(uuid.uuid4()), secrets.token_hex(32)
        body = {
            "agentId": agent_id,
            "claimTokenHash": hashlib.sha256(token.encode()).hexdigest(),
            "hostname": f"bench-{index}",
            "agentVersion": "bench",
            "ipAddresses": [
                {"ip": f"192.0.2.{index % 250 + 1}", "iface": "eth0", "family": "ipv4", "recommended": True}
            ],
        }
        assert agent_api.call("POST", "/agent/register", body)[0] == 201
        assert (
            api.call("POST", "/agents/claim", {"agentId": agent_id, "claimToken": token, "sectionId": section})[0]
            == 200
        )
        key = agent_api.call("GET", f"/agent/{agent_id}/claim-status")[1]["apiKey"]
        api.call("PATCH", f"/agents/{agent_id}", {"tag_ids": [monitor]})
        fleet.append((agent_id, key))
    return fleet, endpoints


def configuration_versions(port: int, fleet: list[tuple[str, str]]) -> dict[str, int]:
    """Each agent's configuration version, for the If-None-Match of the 304 scenario."""
    api = Api(f"http://127.0.0.1:{port}/v1")
    return {
        agent_id: api.call("GET", f"/agent/{agent_id}/configuration", headers={"X-Agent-API-Key": key})[1]["version"]
        for agent_id, key in fleet
    }


def scenarios(fleet, endpoints, batch: int, versions: dict):
    def heartbeat_body(i) -> bytes:
        return json.dumps(
            {
                "timestamp": "2026-11-26T12:00:00.123456789Z",
                "health_status": "healthy",
                "metrics": {
                    "agent_uptime_secs": 100,
                    "cpu_usage_percent": 3.5,
                    "memory_usage_mb": 50.0,
                    "memory_total_mb": 2048.0,
                    "system_uptime_secs": 1000,
                },
                "agent_status": {
                    "agent_version": "bench",
                    "config_version": 1,
                    "is_running": True,
                    "checks_performed": i,
                    "checks_successful": i,
                    "checks_failed": 0,
                    "started_at": "2026-11-26T11:00:00Z",
                    "stopped_at": None,
                    "reported_at": None,
                    "failed_report_count": 0,
                    "server_connected": True,
                    "cache_stats": {"len": 0, "capacity": 10000},
                },
            }
        ).encode()

    def heartbeat(i):
        agent_id, key = fleet[i % len(fleet)]
        return Request(
            "POST",
            f"/v1/agent/{agent_id}/heartbeat",
            {"X-Agent-API-Key": key, "Content-Type": "application/json"},
            heartbeat_body(i),
        )

    def baseline(i):
        """The heartbeat's headers and body, to the one-INSERT view (bench/baseline.py)."""
        _, key = fleet[i % len(fleet)]
        headers = {"X-Agent-API-Key": key, "Content-Type": "application/json"}
        return Request("POST", "/bench/baseline", headers, heartbeat_body(i))

    def config_200(i):
        agent_id, key = fleet[i % len(fleet)]
        return Request("GET", f"/v1/agent/{agent_id}/configuration", {"X-Agent-API-Key": key})

    def config_304(i):
        agent_id, key = fleet[i % len(fleet)]
        return Request(
            "GET",
            f"/v1/agent/{agent_id}/configuration",
            {"X-Agent-API-Key": key, "If-None-Match": f'"{versions[agent_id]}"'},
        )

    def results(i):
        agent_id, key = fleet[i % len(fleet)]
        items = [
            {
                "id": str(uuid.uuid4()),
                "agent_id": agent_id,
                "endpoint_id": endpoints[j % len(endpoints)],
                "timestamp": "2026-11-26T12:00:00Z",
                "check_type": {
                    "type": "ping",
                    "result": {
                        "resolved_ip": "10.0.0.1",
                        "successes": 3,
                        "failures": 0,
                        "success_latencies": [1.1, 1.2, 1.3],
                        "error_details": None,
                    },
                },
            }
            for j in range(batch)
        ]
        return Request(
            "POST",
            f"/v1/agent/{agent_id}/results",
            {"X-Agent-API-Key": key, "Content-Type": "application/json"},
            json.dumps({"results": items}).encode(),
        )

    # (label, request maker, items per request, whether a fixed list of requests may be replayed)
    return [
        (BASELINE, baseline, 1, True),
        ("heartbeats", heartbeat, 1, True),
        ("configuration (200)", config_200, 1, True),
        ("configuration (304)", config_304, 1, True),
        (f"results ({batch}/batch)", results, batch, False),
    ]
