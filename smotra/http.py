"""Small HTTP helpers shared by middleware, views and services."""

from __future__ import annotations

import ipaddress
import re

from django.conf import settings
from django.http import HttpRequest

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")
NON_API_PREFIXES = ("/admin", "/static/", "/api/docs", "/api/redoc")


def is_api_path(path: str) -> bool:
    """API paths get JSON errors and the API body limit; the admin and static files do not."""
    return not path.startswith(NON_API_PREFIXES)


def sane_request_id(value: str | None) -> str | None:
    """The caller's X-Request-ID when it is short and printable, else None (we mint our own)."""
    return value if value and _SANE_REQUEST_ID.match(value) else None


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in settings.SMOTRA.server.trusted_proxies)


def client_address(request: HttpRequest) -> str:
    """The client's IP: REMOTE_ADDR, or the nearest untrusted X-Forwarded-For hop behind trusted proxies."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    if not settings.SMOTRA.server.trusted_proxies or not _trusted(remote):
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop):
            return hop
    return remote
