"""Operational endpoints: /healthz, /healthz/ready, /healthz/live, healthy and with a dead database."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import OperationalError

from healthchecks import views
from smotra import __version__
from tests.server import start_server

DEAD_DATABASE_URL = "postgres://postgres@127.0.0.1:1/nothing"
DRIVER_ERROR = 'connection to server at "db.internal" (10.1.2.3), port 5432 failed: Connection refused'


@pytest.mark.django_db
def test_it_reports_a_healthy_server(client, monkeypatch):
    started = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    monkeypatch.setenv("SMOTRA_STARTED_AT", str(started.timestamp()))

    with time_machine.travel(datetime(2030, 1, 2, 3, 5, 0, tzinfo=UTC), tick=False):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"status", "timestamp", "version", "uptime_seconds", "components"}
    assert body["status"] == "healthy"
    assert body["timestamp"] == "2030-01-02T03:05:00Z"
    assert body["version"] == __version__
    assert body["uptime_seconds"] == 55.0
    database = body["components"]["database"]
    assert set(database) == {"status", "message", "response_time_ms"}
    assert database["status"] == "healthy"
    assert isinstance(database["message"], str)
    assert isinstance(database["response_time_ms"], int | float)
    assert database["response_time_ms"] >= 0


@pytest.mark.django_db
def test_it_is_ready_when_the_database_answers(client):
    response = client.get("/healthz/ready")

    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_it_is_alive_without_touching_the_database(client):
    response = client.get("/healthz/live")

    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


@pytest.mark.django_db
def test_it_is_not_ready_while_draining(client, tmp_path, monkeypatch):
    drain_file = tmp_path / "draining"
    monkeypatch.setenv("SMOTRA_DRAIN_FILE", str(drain_file))
    assert client.get("/healthz/ready").status_code == 200

    drain_file.touch()

    assert client.get("/healthz/ready").status_code == 503
    assert client.get("/healthz/live").status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/healthz/ready", "/healthz/live"])
def test_it_rejects_other_methods_with_a_json_405(client, path):
    response = client.post(path)

    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "method_not_allowed"
    assert "GET" in response["Allow"]


@pytest.mark.server
def test_it_reports_a_dead_database_as_unhealthy(transactional_db, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("server:\n  drain_delay: 0s\n")  # nothing to drain: stop at once
    server = start_server(tmp_path, env={"DATABASE_URL": DEAD_DATABASE_URL}, args=["--config", str(config)])
    try:
        health = server.request("GET", "/healthz")
        ready = server.request("GET", "/healthz/ready")
        live = server.request("GET", "/healthz/live")
    finally:
        assert server.stop() == 0

    assert health.status == 503
    body = health.json()
    assert body["status"] == "unhealthy"
    assert body["components"]["database"]["status"] == "unhealthy"
    assert body["components"]["database"]["message"] == "database: unavailable"
    assert b"refused" not in health.body and b"refused" not in ready.body
    assert ready.status == 503
    assert ready.json()["status"] == "not_ready"
    assert live.status == 200
    assert live.json() == {"status": "alive"}
    statuses = [json.loads(line)["status"] for line in server.log().splitlines() if '"smotra.access"' in line]
    assert statuses and 500 not in statuses
    assert "Traceback" not in server.log()
    # The cause is for the operator: one warning line per failed check, in the server log only.
    causes = [json.loads(line) for line in server.log().splitlines() if '"smotra.health"' in line]
    assert len(causes) == 2
    assert all(cause["level"] == "warning" and "refused" in cause["message"] for cause in causes)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/healthz/ready", "/healthz/live"])
def test_it_answers_head_for_load_balancers(client, path):
    assert client.head(path).status_code == 200


class DeadConnection:
    """Stands in for ``django.db.connection`` when the database cannot be reached."""

    def cursor(self):
        raise OperationalError(f"{DRIVER_ERROR}\n\tIs the server running on that host and accepting connections?")

    def close_if_unusable_or_obsolete(self):
        pass


@pytest.fixture
def dead_database(monkeypatch):
    monkeypatch.setattr(views, "connection", DeadConnection())


@pytest.mark.parametrize("path", ["/healthz", "/healthz/ready"])
def test_a_database_failure_tells_callers_nothing_about_the_database(client, dead_database, path):
    response = client.get(path)

    assert response.status_code == 503
    body = response.json()
    database = body["components"]["database"] if path == "/healthz" else body["database"]
    assert set(database) == {"status", "message", "response_time_ms"}
    assert (database["status"], database["message"]) == ("unhealthy", "database: unavailable")
    assert body["status"] == ("unhealthy" if path == "/healthz" else "not_ready")
    for secret in (b"db.internal", b"10.1.2.3", b"5432", b"refused", b"OperationalError"):
        assert secret not in response.content


def test_a_database_failure_is_logged_as_one_warning_line(client, dead_database, caplog):
    with caplog.at_level("WARNING", logger="smotra.health"):
        client.get("/healthz")

    [entry] = [entry for entry in caplog.records if entry.name == "smotra.health"]
    assert entry.levelname == "WARNING"
    assert entry.getMessage() == f"database check failed: OperationalError: {DRIVER_ERROR}"
