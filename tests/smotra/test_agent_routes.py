"""The agent data plane's short middleware chain (smotra.middleware.AgentRoutesMiddleware): what
those routes skip must not show, what they keep must still happen."""

from __future__ import annotations

import json
import logging

import pytest
from prometheus_client import REGISTRY

from results.models import Heartbeat
from tests.results import KEY, agent_with_key, key_header

pytestmark = pytest.mark.django_db

PREFIXES = {"/api/v1": "api", "/v1": "v1", "": "root"}
FLAT = {"status": "healthy", "cpu_usage_percent": 1.5}


@pytest.fixture
def agent(section_a):
    return agent_with_key(section_a)


def answered(view: str, status: str, method: str) -> float:
    labels = {"view": view, "status": status, "method": method}
    return REGISTRY.get_sample_value("django_http_responses_total_by_status_view_method_total", labels) or 0.0


@pytest.mark.parametrize("prefix", PREFIXES)
def test_each_mount_is_served_with_request_id_log_and_per_view_metrics(client, agent, prefix, caplog):
    view = f"{PREFIXES[prefix]}:agent-heartbeat"
    before = answered(view, "204", "POST")

    with caplog.at_level(logging.INFO, logger="smotra.access"):
        response = client.post(
            f"{prefix}/agent/{agent.pk}/heartbeat", json.dumps(FLAT), content_type="application/json", **key_header()
        )

    assert response.status_code == 204
    assert response["X-Request-ID"] and response["X-Content-Type-Options"] == "nosniff"
    assert answered(view, "204", "POST") == before + 1
    [line] = [record for record in caplog.records if record.name == "smotra.access"]
    assert (line.status, line.principal) == (204, f"agent:{agent.pk}")
    assert Heartbeat.objects.filter(agent=agent).count() == 1


def test_the_configuration_route_reads_its_canonical_id_from_any_spelling(client, agent):
    spelled = str(agent.pk).upper().replace("-", "")

    response = client.get(f"/v1/agent/{spelled}/configuration", **key_header())

    assert response.status_code == 200
    assert response.json()["agent_id"] == str(agent.pk)
    assert response["Content-Type"] == "application/json"
    assert response["Content-Length"] == str(len(response.content))  # not chunked


@pytest.mark.parametrize("path", ["/v1/agent/not-an-id/heartbeat", "/v1/agent/%s/heartbeat/", "/v1/agent/%s/vitals"])
def test_what_is_not_an_agent_route_goes_down_the_full_chain(client, agent, assert_error, path):
    response = client.post(path.replace("%s", str(agent.pk)), json.dumps(FLAT), content_type="application/json")

    assert_error(response, 404, "not_found")


def test_a_host_outside_allowed_hosts_is_refused_there_too(client, agent, settings, assert_error):
    settings.ALLOWED_HOSTS = ["smotra.example"]

    response = client.post(
        f"/v1/agent/{agent.pk}/heartbeat",
        json.dumps(FLAT),
        content_type="application/json",
        HTTP_HOST="attacker.example",
        **key_header(),
    )

    assert_error(response, 400, "bad_request")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Length"] == str(len(response.content))
    assert not Heartbeat.objects.exists()


def test_agent_routes_skip_what_only_peoples_routes_need(client, agent):
    """Proof that the short chain runs: SecurityMiddleware's Referrer-Policy is on a route of the
    full chain and not on an agent route, which still carries the headers set for it."""
    people = client.get("/api/v1")
    agents = client.get(f"/v1/agent/{agent.pk}/configuration", **key_header())

    assert people["Referrer-Policy"] == "same-origin"
    assert "Referrer-Policy" not in agents and agents["X-Frame-Options"] == "DENY"


def test_agents_read_json_whatever_they_accept(client, agent):
    response = client.get(f"/v1/agent/{agent.pk}/configuration", HTTP_ACCEPT="text/html", **key_header(KEY))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
