"""Validation of what an endpoint's address may be: an IP address, a hostname or an http(s) URL."""

from __future__ import annotations

import ipaddress
import re

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$")
_url = URLValidator(schemes=["http", "https"])


def validate_address(value: str) -> None:
    if not value or value != value.strip():
        raise ValidationError("Address must not be empty or padded with spaces.")
    try:
        ipaddress.ip_address(value)
        return
    except ValueError:
        pass
    if "://" in value:
        _url(value)
        return
    if not _HOSTNAME.match(value):
        raise ValidationError("Enter an IP address, a hostname or an http(s) URL.")
