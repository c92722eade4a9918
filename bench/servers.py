"""The HTTP servers the bench starts: `manage.py serve` (gunicorn gthread) and granian (WSGI).

Both serve ``smotra.wsgi:application`` with ``DJANGO_SETTINGS_MODULE=bench.settings`` on a free port
of 127.0.0.1, with the same number of processes and threads, and both have the alerting worker
(`manage.py run_alerts`) beside them, as `serve` runs it:

- **gunicorn**: exactly as an operator starts it, ``manage.py serve`` (migrations, the supervisor,
  gunicorn with smotra/gunicorn_conf.py: `server.workers` x `server.threads` gthread workers with
  Smotra's slow-client poller, keep-alive `server.idle_timeout`);
- **granian**: ``granian --interface wsgi`` with ``--workers`` = `server.workers`,
  ``--blocking-threads`` (the threads that run the WSGI application) = `server.threads`, one runtime
  (I/O) thread per worker, HTTP/1.1 only with keep-alive on (its default), access log off, and the
  environment `serve` gives gunicorn (PROMETHEUS_MULTIPROC_DIR, SMOTRA_DRAIN_FILE, SMOTRA_STARTED_AT).
  No supervisor: SIGTERM goes straight to granian (see bench/probes.py for what it then does)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SERVERS = ("gunicorn", "granian")
# Database connection handling, applied by bench/settings.py (BENCH_CONN_MODE); the first is Smotra's own.
CONN_MODES = ("persistent-check", "persistent-select1", "persistent", "pool-check", "pool")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_shape(env: dict) -> dict:
    """Workers, threads, whether the alerting worker runs, and the database connection settings, as
    Smotra's configuration (and ``env``'s DJANGO_SETTINGS_MODULE) decide them."""
    code = (
        "import json, django; django.setup(); from django.conf import settings; from smotra.config import get_config;"
        "c = get_config(); db = settings.DATABASES['default'];"
        "print(json.dumps({'workers': c.effective_workers, 'threads': c.server.threads,"
        "'alerts': c.alerts.run_in_serve, 'engine': db['ENGINE'], 'conn_max_age': db['CONN_MAX_AGE'],"
        "'health_checks': db['CONN_HEALTH_CHECKS'], 'pool': db['OPTIONS'].get('pool')}))"
    )
    output = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


class Server:
    """A server on a free port; ``pids`` are the roots of its process trees (for CPU accounting)."""

    kind = ""

    def __init__(self, env: dict, workers: int | None):
        self.port = free_port()
        self.env = {**os.environ, **env, "SMOTRA_HOST": "127.0.0.1", "SMOTRA_PORT": str(self.port)}
        if workers:
            self.env["SMOTRA_WORKERS"] = str(workers)
        self.log = tempfile.NamedTemporaryFile(prefix=f"smotra-bench-{self.kind}-", suffix=".log", delete=False)  # noqa: SIM115
        self.processes: list[subprocess.Popen] = []

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def popen(self, command: list[str], env: dict | None = None) -> subprocess.Popen:
        process = subprocess.Popen(command, cwd=ROOT, env=env or self.env, stdout=self.log, stderr=self.log)
        self.processes.append(process)
        return process

    def start(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        self.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz/ready", timeout=1)
                return self
            except OSError:
                if any(process.poll() is not None for process in self.processes):
                    self.__exit__()
                    raise RuntimeError(Path(self.log.name).read_text()) from None
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"{self.kind} did not start:\n{Path(self.log.name).read_text()}")

    def __exit__(self, *exc):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def manage(self, *args: str, extra_env: dict | None = None):
        subprocess.run(
            [PYTHON, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env={**self.env, **(extra_env or {})},
            check=True,
            capture_output=True,
        )


class GunicornServer(Server):
    """``manage.py serve``, as bench/run.py has always started it."""

    kind = "gunicorn"

    def start(self) -> None:
        self.popen([PYTHON, str(ROOT / "manage.py"), "serve"])


class GranianServer(Server):
    """granian's WSGI server shaped like `serve`'s gunicorn, and the alerting worker beside it."""

    kind = "granian"

    def start(self) -> None:
        shape = server_shape(self.env)
        runtime = Path(tempfile.mkdtemp(prefix="smotra-granian-"))
        (runtime / "metrics").mkdir()
        self.runtime = runtime
        env = {
            **self.env,
            "PROMETHEUS_MULTIPROC_DIR": self.env.get("PROMETHEUS_MULTIPROC_DIR") or str(runtime / "metrics"),
            "SMOTRA_DRAIN_FILE": str(runtime / "draining"),
            "SMOTRA_STARTED_AT": str(time.time()),
        }
        self.manage("migrate", "--noinput")  # what `serve` does first
        self.popen(granian_command(self.port, shape["workers"], shape["threads"]), env)
        if shape["alerts"]:
            self.popen([PYTHON, "-m", "django", "run_alerts"], env)

    def __exit__(self, *exc):
        super().__exit__(*exc)
        shutil.rmtree(getattr(self, "runtime", ""), ignore_errors=True)


def granian_command(port: int, workers: int, threads: int) -> list[str]:
    return [
        PYTHON,
        "-m",
        "granian",
        "--interface",
        "wsgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        "--runtime-threads",
        "1",
        "--http",
        "1",
        "--http1-keep-alive",
        "--no-ws",
        "--log-level",
        "warning",
        "smotra.wsgi:application",
    ]


def make_server(kind: str, env: dict, workers: int | None) -> Server:
    return {"gunicorn": GunicornServer, "granian": GranianServer}[kind](env, workers)
