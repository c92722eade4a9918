"""`serve` runs the alerting worker beside gunicorn: started, restarted if it dies, stopped with it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.server import start_server

pytestmark = pytest.mark.server


def workers_of(parent: int) -> list[int]:
    """Pids of `run_alerts` processes whose parent is ``parent`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"run_alerts" in cmdline:
            found.append(int(entry.name))
    return found


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_serve_runs_supervises_and_stops_the_alerting_worker(transactional_db, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("server:\n  drain_delay: 0s\n  shutdown_timeout: 10s\nalerts:\n  evaluation_interval: 1s\n")
    server = start_server(tmp_path, env={"SMOTRA_ALERTS_RUN_IN_SERVE": "true"}, args=["--config", str(config)])
    try:
        [first] = wait_for(lambda: workers_of(server.process.pid), 20, "the alerting worker")
        wait_for(lambda: "smotra: alerting every 1 s" in server.log(), 20, "the worker's first line")
        os.kill(first, signal.SIGKILL)
        [second] = wait_for(lambda: [pid for pid in workers_of(server.process.pid) if pid != first], 20, "a restart")
        assert "the alerting worker exited" in server.log()
        assert server.stop(timeout=30) == 0
        assert not Path(f"/proc/{second}").exists() or "zombie" in Path(f"/proc/{second}/status").read_text()
    finally:
        server.stop()
