"""User bearer tokens: JWTs signed with ``auth.jwt_secret`` (HS256), valid for ``auth.jwt_expiration``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from django.conf import settings

ALGORITHM = "HS256"
ISSUER = "smotra"


class InvalidToken(Exception):
    """Expired, badly signed or malformed token."""


def token_issue(*, user, now: datetime | None = None) -> tuple[str, datetime]:
    """A signed access token for ``user`` and the moment it expires."""
    now = now or datetime.now(UTC)
    expires_at = now + timedelta(seconds=settings.SMOTRA.auth.jwt_expiration)
    claims = {"sub": str(user.pk), "iss": ISSUER, "iat": int(now.timestamp()), "exp": int(expires_at.timestamp())}
    return jwt.encode(claims, settings.SECRET_KEY, algorithm=ALGORITHM), expires_at.replace(microsecond=0)


def token_subject(token: str) -> str:
    """The user id a valid token was issued to. Raises :class:`InvalidToken`."""
    try:
        claims = jwt.decode(
            token,
            settings.SECRET_KEY,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["sub", "exp", "iat"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    return claims["sub"]
