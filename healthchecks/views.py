"""Operational endpoints at the root: /healthz, /healthz/ready, /healthz/live."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from functools import wraps

from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from smotra import serving
from smotra.api.errors import error_response

READY_DATABASE_BUDGET_SECONDS = 2.0
# What unauthenticated callers learn of a database failure; the driver's text (host, port,
# "connection refused") goes only to the server log.
DATABASE_UNAVAILABLE = "database: unavailable"

logger = logging.getLogger("smotra.health")


def require_get(view):
    """GET and HEAD only; anything else is the contract's JSON 405 (Django's require_GET answers HTML)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            message = f'Method "{request.method}" not allowed.'
            return error_response(405, "method_not_allowed", message, headers={"Allow": "GET, HEAD"})
        return view(request, *args, **kwargs)

    return wrapper


def database_check() -> dict:
    """Run ``SELECT 1``; report status, message and the time it took (a failure's cause is logged)."""
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not healthy"; never a 500 from a health check
        connection.close_if_unusable_or_obsolete()
        elapsed = (time.perf_counter() - started) * 1000
        first_line = (str(exc).strip().splitlines() or [""])[0]
        logger.warning("database check failed: %s: %s", type(exc).__name__, first_line[:500])
        return {"status": "unhealthy", "message": DATABASE_UNAVAILABLE, "response_time_ms": round(elapsed, 2)}
    elapsed = (time.perf_counter() - started) * 1000
    return {"status": "healthy", "message": "ok", "response_time_ms": round(elapsed, 2)}


@require_get
def healthz(request):
    database = database_check()
    healthy = database["status"] == "healthy"
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "version": settings.SMOTRA_VERSION,
        "uptime_seconds": round(serving.uptime_seconds(), 3),
        "components": {"database": database},
    }
    return JsonResponse(body, status=200 if healthy else 503)


@require_get
def ready(request):
    """Ready when not draining and the database answers within two seconds (load balancers poll this)."""
    if serving.is_draining():
        return JsonResponse({"status": "draining"}, status=503)
    database = database_check()
    slow = database["response_time_ms"] > READY_DATABASE_BUDGET_SECONDS * 1000
    ok = database["status"] == "healthy" and not slow
    return JsonResponse({"status": "ready" if ok else "not_ready", "database": database}, status=200 if ok else 503)


@require_get
def live(request):
    return JsonResponse({"status": "alive"})
