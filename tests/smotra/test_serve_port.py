"""`serve` says where it listens only once it does, and a taken port is one line and exit status 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from tests import server as test_server
from tests.server import ROOT, free_port

pytestmark = pytest.mark.server


def serve(port: int, **popen) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": test_server.test_database_url(),
        "SMOTRA_HOST": "127.0.0.1",
        "SMOTRA_PORT": str(port),
        "SMOTRA_WORKERS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, str(ROOT / "manage.py"), "serve", "--no-migrate"]
    return subprocess.Popen(command, cwd=ROOT, env=env, text=True, **popen)


def test_the_address_is_printed_once_the_port_accepts_connections(transactional_db):
    port = free_port()
    process = serve(port, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = process.stdout.readline()
        assert line.strip() == f"smotra: serving on 127.0.0.1:{port}"
        with socket.create_connection(("127.0.0.1", port), timeout=1):  # already listening when it said so
            pass
    finally:
        process.terminate()
        process.wait(timeout=40)


def test_a_taken_port_is_one_line_and_exit_status_2_within_5_seconds(transactional_db):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        started = time.monotonic()
        process = serve(port, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stdout, stderr = process.communicate(timeout=30)
        elapsed = time.monotonic() - started
    assert process.returncode == 2
    assert elapsed < 5, elapsed
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"smotra: cannot listen on 127.0.0.1:{port}: ")
    assert "in use" in lines[0].lower()
    assert "serving on" not in stdout
