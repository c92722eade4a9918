"""A small fleet for alerting tests: agents with keys that post pings through the agent API."""

from __future__ import annotations

from datetime import datetime

import time_machine

from tests.results import result_item

KEYS = [f"smk_alerting-test-key-{n}-000000000000000000000000000" for n in range(4)]


def ping(ok: bool, latencies: list[float] | None = None) -> dict:
    latencies = (latencies or [10.0, 11.0, 12.0]) if ok else []
    return {"resolved_ip": "192.0.2.1", "successes": len(latencies), "failures": 3 - len(latencies)} | {
        "success_latencies": latencies,
        "error_details": None if ok else {"errors": ["timeout"]},
    }


class Fleet:
    def __init__(self, client, section, agents, endpoints):
        self.client, self.section, self.agents, self.endpoints = client, section, agents, endpoints

    def report(self, agent: int, endpoint: int, ok: bool, at: datetime, latencies=None) -> None:
        """Agent ``agent`` posts one ping of endpoint ``endpoint`` checked at ``at`` (time moves there)."""
        item = result_item(
            self.agents[agent].pk, self.endpoints[endpoint].pk, "ping", ping(ok, latencies), timestamp=at.isoformat()
        )
        with time_machine.travel(at, tick=False):
            response = self.client.post(
                f"/api/v1/agent/{self.agents[agent].pk}/results",
                {"results": [item]},
                format="json",
                HTTP_X_AGENT_API_KEY=KEYS[agent],
            )
        assert response.status_code == 202, response.content

    def round(self, at: datetime, failing: dict[int, set[int]] | None = None, agents=None) -> None:
        """Every agent (or those given) checks every endpoint; ``failing``: agent -> endpoints it fails."""
        failing = failing or {}
        for agent in agents if agents is not None else range(len(self.agents)):
            for endpoint in range(len(self.endpoints)):
                self.report(agent, endpoint, endpoint not in failing.get(agent, set()), at)
