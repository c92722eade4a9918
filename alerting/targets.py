"""Outbound targets (webhook, chat and PagerDuty URLs): http(s) only, and never an address inside the
network unless ``alerts.allow_private_targets`` is set; otherwise a channel would let any tenant admin
make the server probe its own network (SSRF).

Checked when a channel is saved and again before every send, since DNS can change in between; the
send then connects only to the addresses checked here (alerting.delivery pins them), so a name that
rebinds to 127.0.0.1 after the check is never reached."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from smotra.errors import Invalid

SETTING = "alerts.allow_private_targets"
DEFAULT_PORTS = {"http": 80, "https": 443}
# ipaddress predicates that mark an address inside the network, in the order they are reported.
INTERNAL = ("loopback", "private", "link_local", "multicast", "reserved", "unspecified")


def validate_outbound_url(url: str, field: str) -> str:
    """``url`` if the server may send to it, else ``Invalid`` naming ``field``."""
    outbound_addresses(url, field)
    return url


def outbound_addresses(url: str, field: str) -> list[str]:
    """The addresses ``url``'s host resolves to, every one of them an allowed target (else Invalid)."""
    host, port = _host_and_port(url, field)
    addresses = _resolve(host, port, field)
    if not settings.SMOTRA.alerts.allow_private_targets:
        for address in addresses:
            _refuse_internal(host, address, field)
    return addresses


def _host_and_port(url: str, field: str) -> tuple[str, int]:
    if not isinstance(url, str) or not url:
        raise Invalid(f"{field} must be a URL.", field=field)
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in url):
        raise Invalid(f"{field} must not contain spaces or control characters.", field=field)
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # a bad port or a broken [IPv6] literal
        raise Invalid(f"{field} is not a valid URL.", field=field) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise Invalid(f"{field} must be an http or https URL.", field=field)
    if not host:
        raise Invalid(f"{field} must name a host.", field=field)
    return host, port or DEFAULT_PORTS[scheme]


def _resolve(host: str, port: int, field: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):  # gaierror, or a name IDNA cannot encode
        raise Invalid(f"{field}: the host {host} cannot be resolved.", field=field) from None
    return list(dict.fromkeys(info[4][0] for info in infos))


def _refuse_internal(host: str, address: str, field: str) -> None:
    kind = internal_kind(ipaddress.ip_address(address))
    if kind is None:
        return
    where = address if host == address else f"{host} (which resolves to {address})"
    raise Invalid(
        f"{field} points to {where}, a {kind} address. Outbound targets must be public addresses "
        f"unless {SETTING} is set in the server configuration.",
        field=field,
    )


def internal_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``address`` is inside the network (``"loopback"``, ``"private"``...), or None if public."""
    # ::ffff:127.0.0.1 reaches 127.0.0.1, but Python 3.11's predicates judge it as IPv6.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind in INTERNAL:
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    # Shared space (100.64.0.0/10, where some clouds keep their metadata service) and the like.
    return None if address.is_global else "non-public"
