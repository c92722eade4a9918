"""Start the real server (`manage.py serve`, gunicorn) in a subprocess for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """A DATABASE_URL for the database the test run is using right now (the test database)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class ServerProcess:
    """A running `manage.py serve`; ``request()`` talks to it over loopback HTTP."""

    process: subprocess.Popen
    port: int
    log_path: Path
    env: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body=None, headers=None, timeout: float = 10) -> Response:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json"} if data is not None else {}
        all_headers.update(headers or {})
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return Response(resp.status, dict(resp.headers), resp.read())
        except urllib.error.HTTPError as err:
            return Response(err.code, dict(err.headers), err.read())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 40) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(
    tmp_path: Path, *, env: dict | None = None, migrate: bool = False, wait_for: str = "/healthz/live", args=()
) -> ServerProcess:
    """Start `manage.py serve` on a free loopback port against the test database; wait until it answers."""
    port = free_port()
    full_env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "SMOTRA_HOST": "127.0.0.1",
        "SMOTRA_PORT": str(port),
        "SMOTRA_WORKERS": "2",
        "SMOTRA_THREADS": "4",
        "SMOTRA_LOG_LEVEL": "info",
        "PYTHONUNBUFFERED": "1",
        # The evaluator beside the web server only where a test asks for it (it would write to
        # the test database on its own schedule).
        "SMOTRA_ALERTS_RUN_IN_SERVE": "false",
        **(env or {}),
    }
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = tmp_path / f"server-{port}.log"
    command = [sys.executable, str(ROOT / "manage.py"), "serve", *args]
    if not migrate:
        command.append("--no-migrate")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    server = ServerProcess(process, port, log_path, full_env)
    _wait_until_up(server, wait_for)
    return server


def _wait_until_up(server: ServerProcess, path: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()}")
        try:
            server.request("GET", path, timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not answer within {timeout}s:\n{server.log()}")
