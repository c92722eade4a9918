"""`manage.py serve`: gunicorn behind a supervisor that drains on SIGTERM and exits cleanly."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.server import ROOT, ServerProcess, start_server

pytestmark = pytest.mark.server

DRAIN_DELAY = 2  # long enough to start the in-flight request before gunicorn hears SIGTERM
SHUTDOWN_TIMEOUT = 10


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def serve(tmp_path, *, drain_delay: float, migrate: bool = False) -> ServerProcess:
    config = tmp_path / "config.yaml"
    config.write_text(f"server:\n  drain_delay: {drain_delay}s\n  shutdown_timeout: {SHUTDOWN_TIMEOUT}s\n")
    return start_server(tmp_path, migrate=migrate, args=["--config", str(config)])


@pytest.fixture
def migrated_server(transactional_db, tmp_path):
    server = serve(tmp_path, drain_delay=0, migrate=True)
    yield server
    server.stop()


@pytest.fixture
def draining_server(transactional_db, tmp_path):
    server = serve(tmp_path, drain_delay=DRAIN_DELAY)
    yield server
    server.stop()


def draining_response(server: ServerProcess):
    response = server.request("GET", "/healthz/ready")
    return response if response.status == 503 else None


def start_partial_request(server: ServerProcess) -> socket.socket:
    """A request whose headers are not finished yet: in flight inside a worker until we complete it."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=SHUTDOWN_TIMEOUT)
    sock.sendall(b"GET /healthz/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: in-flight\r\n")
    return sock


def finish_request(sock: socket.socket) -> bytes:
    sock.sendall(b"Connection: close\r\n\r\n")
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    sock.close()
    return b"".join(chunks)


def test_it_serves_with_gunicorn_after_migrating(migrated_server):
    response = migrated_server.request("GET", "/healthz")

    assert response.status == 200
    assert response.json()["components"]["database"]["status"] == "healthy"
    log = migrated_server.log()
    assert "Starting gunicorn" in log
    assert "Booting worker with pid" in log
    assert f"serving on 127.0.0.1:{migrated_server.port}" in log
    assert migrated_server.stop() == 0


def test_it_drains_on_sigterm_and_exits_cleanly(draining_server):
    server = draining_server
    assert server.request("GET", "/healthz/ready").status == 200

    server.process.send_signal(signal.SIGTERM)

    ready = wait_for(lambda: draining_response(server), DRAIN_DELAY * 4, "readiness to turn 503")
    assert ready.json() == {"status": "draining"}
    assert server.request("GET", "/healthz/live").status == 200
    assert server.request("GET", "/healthz").status == 200
    in_flight = start_partial_request(server)
    # Gunicorn has been told to stop (after the drain delay) and an idle worker has already exited.
    wait_for(lambda: "Worker exiting" in server.log(), DRAIN_DELAY + SHUTDOWN_TIMEOUT, "gunicorn to stop")
    assert "Handling signal: term" in server.log()
    reply = finish_request(in_flight)
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert b"x-request-id: in-flight" in reply.lower()
    assert b'{"status": "alive"}' in reply
    assert server.process.wait(timeout=SHUTDOWN_TIMEOUT) == 0
    assert "Traceback" not in server.log()


def test_it_refuses_to_serve_with_a_bad_config(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("server:\n  idle_timeout: forever\n")

    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "serve", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("smotra: configuration error: ")
    assert str(config) in lines[0]
    assert "server.idle_timeout" in lines[0]
    assert "serving on" not in result.stdout
