"""Gunicorn settings derived from the Smotra configuration (``gunicorn -c python:smotra.gunicorn_conf``).

How `server.*` maps onto gunicorn (README, "Serving"):
- host/port -> ``bind``; workers -> ``workers`` (default 2 x cores + 1); threads -> ``threads`` (gthread).
- read_timeout + write_timeout -> ``timeout``: the master restarts a worker silent for that long.
  read_timeout also bounds the reading of each whole request, done by the worker's poller thread
  (smotra.gunicorn_worker), so slow clients cannot hold the threads.
- idle_timeout -> ``keepalive``: how long an idle keep-alive connection stays open.
- shutdown_timeout - drain_delay -> ``graceful_timeout``: after SIGTERM, in-flight requests get this
  long to finish before workers are killed (`serve` spends drain_delay with readiness at 503 first).
"""

from __future__ import annotations

import os
import shutil

from smotra.config import get_config

_config = get_config()
_server = _config.server

bind = [f"[{_server.host}]:{_server.port}" if ":" in _server.host else f"{_server.host}:{_server.port}"]
workers = _config.effective_workers
# gthread, reading requests before they take a thread, answering its errors in JSON and refusing new
# connections as soon as a graceful stop begins (see the module).
worker_class = "smotra.gunicorn_worker.DrainingThreadWorker"
threads = _server.threads
timeout = max(1, int(_server.read_timeout + _server.write_timeout))
keepalive = max(1, int(_server.idle_timeout))
graceful_timeout = max(1, int(_server.shutdown_timeout - _server.drain_delay))
proc_name = "smotra"
# Gunicorn's control socket defaults to one path per user, which several servers on a host share.
control_socket_disable = True
# Our middleware writes the access log (with request ids); gunicorn's own lines go through our formatter.
accesslog = None
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {"()": f"smotra.logging.{'JsonFormatter' if _config.logging.format == 'json' else 'TextFormatter'}"}
    },
    "filters": {"request_id": {"()": "smotra.logging.RequestIdFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "line", "filters": ["request_id"]}},
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
    },
}


def on_starting(server):
    """Start every run with an empty metrics directory: stale files would resurrect old counts."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):
    """A dead worker's live gauges must stop counting (prometheus_client multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
