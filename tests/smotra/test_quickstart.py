"""The README's quick start, followed literally: its commands are read from the README and run in bash
against a real server, with an agent (played over HTTP as the real one talks) registering, being
claimed by the README's command, collecting its key and reporting, until a result is stored.

Two adaptations, both mechanical: ``localhost:8080`` becomes the test server's address, and
``createsuperuser`` gets ``--noinput`` with its password in the environment (it asks on a terminal)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import uuid

import pytest

from results.models import CheckResult
from tests import server as test_server
from tests.server import ROOT, start_server

pytestmark = pytest.mark.server

CLAIM_TOKEN = "Qu1ckSt4rt" * 6 + "abcd"  # what the agent prints: 64 characters


def quickstart_commands() -> list[str]:
    """The shell commands between the README's quickstart markers, continuation lines joined."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- quickstart:begin -->", 1)[1].split("<!-- quickstart:end -->", 1)[0]
    script = block.split("```sh", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    return [line.strip() for line in script.splitlines() if line.strip() and not line.strip().startswith("#")]


def run(commands: list[str], env: dict, port: int) -> str:
    script = "\n".join(["set -euo pipefail", *commands]).replace("localhost:8080", f"127.0.0.1:{port}")
    script = script.replace("manage.py createsuperuser", "manage.py createsuperuser --noinput")
    result = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"{script}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    return result.stdout


def test_the_readme_quick_start_ends_with_a_stored_result(transactional_db, tmp_path):
    commands = quickstart_commands()
    claim = next(index for index, command in enumerate(commands) if "claim_agent" in command)
    assert 1 <= len([c for c in commands if "manage.py" in c or "curl" in c]) <= 8, commands
    server = start_server(tmp_path)
    try:
        agent_id = uuid.uuid4()
        registration = {
            "agentId": str(agent_id),
            "claimTokenHash": hashlib.sha256(CLAIM_TOKEN.encode()).hexdigest(),
            "hostname": "first-agent",
            "agentVersion": "0.4.2",
            "ipAddresses": [{"ip": "192.0.2.7", "iface": "eth0", "family": "ipv4", "recommended": True}],
        }
        assert server.request("POST", "/v1/agent/register", registration).status == 201
        env = {
            **os.environ,
            "DATABASE_URL": test_server.test_database_url(),
            "DJANGO_SUPERUSER_PASSWORD": "Quick-start-passw0rd",
            "AGENT_ID": str(agent_id),
            "CLAIM_TOKEN": CLAIM_TOKEN,
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        # Steps 1-4, then hand the shell's variables on to step 5 (the agent works in between).
        output = run([*commands[: claim + 1], 'echo "SECTION=$SECTION"', 'echo "TOKEN=$TOKEN"'], env, server.port)
        assert f"Claimed {agent_id}" in output
        variables = dict(re.findall(r"^(SECTION|TOKEN)=(\S+)$", output, re.MULTILINE))

        key = play_the_agent(server, agent_id)

        agents = json.loads(run(commands[claim + 1 :], {**env, **variables}, server.port))["agents"]
        assert [agent["id"] for agent in agents] == [str(agent_id)]
        assert agents[0]["lastResultSubmittedAt"] is not None
        result = CheckResult.objects.get()
        assert (result.agent_id, result.success, result.endpoint.address) == (agent_id, True, "1.1.1.1")
        assert key
    finally:
        server.stop()


def play_the_agent(server, agent_id) -> str:
    """Poll for the key, read the configuration, report one ping result for what it lists."""
    poll = server.request("GET", f"/v1/agent/{agent_id}/claim-status").json()
    assert poll["status"] == "claimed", poll
    headers = {"X-Agent-API-Key": poll["apiKey"]}
    configuration = server.request("GET", f"/v1/agent/{agent_id}/configuration", headers=headers).json()
    [endpoint] = configuration["endpoints"]
    assert endpoint["address"] == "1.1.1.1"
    result = {
        "id": str(uuid.uuid4()),
        "agent_id": str(agent_id),
        "endpoint_id": endpoint["id"],
        "timestamp": "2026-12-01T10:00:00Z",
        "check_type": {
            "type": "ping",
            "result": {
                "resolved_ip": "1.1.1.1",
                "successes": 3,
                "failures": 0,
                "success_latencies": [9.5, 10.25, 11.0],
                "error_details": None,
            },
        },
    }
    answer = server.request("POST", f"/v1/agent/{agent_id}/results", {"results": [result]}, headers=headers)
    assert answer.status == 202 and answer.json()["accepted"] == 1, answer.body
    return poll["apiKey"]
