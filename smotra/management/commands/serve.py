"""``manage.py serve``: migrate, then run gunicorn, and the alerting worker beside it
(``alerts.run_in_serve``), under a small supervisor that drains both on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _die_with_parent() -> None:
    """Linux: have the kernel SIGTERM gunicorn if this supervisor dies without draining."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Command(BaseCommand):
    alerts: Worker | None = None
    help = (
        "Apply migrations, then serve with gunicorn on server.host:server.port. "
        "Choose the configuration file with -c/--config PATH (handled by manage.py). "
        "SIGTERM drains: readiness answers 503 for server.drain_delay, then in-flight requests "
        "finish and the process exits within server.shutdown_timeout."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-migrate", action="store_true", help="Do not apply migrations first.")

    def handle(self, *args, **options):
        server = settings.SMOTRA.server
        self.check_port_free(server.host, server.port)
        if not options["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
        connections.close_all()  # nothing may be inherited by the forked workers
        runtime = Path(tempfile.mkdtemp(prefix="smotra-serve-"))
        env = self.child_environment(runtime)
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:smotra.gunicorn_conf", "smotra.wsgi:application"],
            env=env,
            # Own process group: a signal sent to our group (timeout, a terminal's ^C) reaches only us,
            # so the drain runs before gunicorn hears anything. Gunicorn dies with us if we are killed.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.alerts = Worker(env) if settings.SMOTRA.alerts.run_in_serve else None
        try:
            code = self.supervise(gunicorn, Path(env["SMOTRA_DRAIN_FILE"]))
        finally:
            if self.alerts is not None:
                self.alerts.stop(timeout=settings.SMOTRA.server.shutdown_timeout)
            shutil.rmtree(runtime, ignore_errors=True)
        if code:
            sys.exit(code)

    def check_port_free(self, host: str, port: int) -> None:
        """A taken port is one clear line and exit status 2 at once, rather than gunicorn retrying
        for five seconds and exiting 1 (the same socket options as gunicorn's, so what binds here
        binds there)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                self.stderr.write(f"smotra: cannot listen on {_address(host, port)}: {exc.strerror or exc}")
                sys.exit(2)

    def announce_when_listening(self, deadline: float) -> bool:
        """Print the address once gunicorn accepts connections on it (not before the port is bound)."""
        server = settings.SMOTRA.server
        target = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(server.host, server.host)
        try:
            with socket.create_connection((target, server.port), timeout=0.2):
                pass
        except OSError:
            return time.monotonic() > deadline  # give up announcing, keep supervising
        self.stdout.write(f"smotra: serving on {_address(server.host, server.port)}")
        self.stdout.flush()
        return True

    def child_environment(self, runtime: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("DJANGO_SETTINGS_MODULE", "smotra.settings")
        # prometheus_client reads this at import time, so it must be set before gunicorn starts.
        env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(runtime / "metrics"))
        env["SMOTRA_DRAIN_FILE"] = str(runtime / "draining")
        env["SMOTRA_STARTED_AT"] = str(time.time())
        return env

    def supervise(self, gunicorn: subprocess.Popen, drain_file: Path) -> int:
        """Wait for gunicorn; on SIGTERM/SIGINT drain first, then stop it gracefully."""
        stop_requested: list[int] = []

        def request_stop(signum, frame):
            stop_requested.append(signum)

        def forward(signum, frame):
            gunicorn.send_signal(signum)

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGHUP, forward)  # reload workers
        announced, deadline = False, time.monotonic() + 120
        while gunicorn.poll() is None and not stop_requested:
            announced = announced or self.announce_when_listening(deadline)
            if self.alerts is not None:
                self.alerts.keep_running()
            time.sleep(0.1)
        if gunicorn.poll() is not None:
            return gunicorn.returncode
        return self.drain_and_stop(gunicorn, drain_file)

    def drain_and_stop(self, gunicorn: subprocess.Popen, drain_file: Path) -> int:
        server = settings.SMOTRA.server
        drain_file.touch()  # readiness answers 503 from now on; requests are still served
        if self.alerts is not None:
            self.alerts.request_stop()  # it finishes its current pass meanwhile
        time.sleep(min(server.drain_delay, max(0.0, server.shutdown_timeout - 1)))
        gunicorn.send_signal(signal.SIGTERM)  # stop accepting, finish in-flight within graceful_timeout
        try:
            return gunicorn.wait(timeout=max(1.0, server.shutdown_timeout - server.drain_delay) + 2)
        except subprocess.TimeoutExpired:
            gunicorn.kill()
            return gunicorn.wait()


class Worker:
    """``manage.py run_alerts`` as a child: restarted if it dies (at most once per RESTART_DELAY),
    asked to stop with SIGTERM (it finishes its pass) and killed only past the shutdown timeout."""

    RESTART_DELAY = 5.0

    def __init__(self, env: dict[str, str]):
        self.env, self.process, self.started = env, None, 0.0
        self.start()

    def start(self) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "django", "run_alerts"],
            env=self.env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def keep_running(self) -> None:
        if self.process.poll() is not None and time.monotonic() - self.started >= self.RESTART_DELAY:
            sys.stderr.write(f"smotra: the alerting worker exited ({self.process.returncode}); restarting it\n")
            self.start()

    def request_stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float) -> None:
        self.request_stop()
        try:
            self.process.wait(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
