"""Process facts shared between `serve`, gunicorn's hooks and the health views.

`serve` exports SMOTRA_STARTED_AT (uptime counts from the server start, not a worker's) and
SMOTRA_DRAIN_FILE: when that file exists the server is draining and readiness answers 503."""

from __future__ import annotations

import os
import time

_process_started = time.time()


def uptime_seconds() -> float:
    started = float(os.environ.get("SMOTRA_STARTED_AT") or _process_started)
    return max(0.0, time.time() - started)


def is_draining() -> bool:
    drain_file = os.environ.get("SMOTRA_DRAIN_FILE")
    return bool(drain_file) and os.path.exists(drain_file)
