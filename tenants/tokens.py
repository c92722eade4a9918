"""User bearer tokens: JWTs signed with ``auth.jwt_secret`` (HS256), valid for ``auth.jwt_expiration``.

A token ends early when its user logs out (its ``jti`` is stored in :class:`RevokedToken` until it
would have expired), when the user's password changes (the token carries a fingerprint of the
password hash), or when the user is deactivated or deleted.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Exists
from django.utils import timezone

from tenants.models import RevokedToken

ALGORITHM = "HS256"
ISSUER = "smotra"
# The claim holding a prefix of the user's session auth hash (an HMAC of the password hash keyed
# with SECRET_KEY, so it reveals nothing about the password). 16 hex digits = 64 bits.
FINGERPRINT_CLAIM = "cfp"
FINGERPRINT_LENGTH = 16
REQUIRED_CLAIMS = ["sub", "exp", "iat", "jti", FINGERPRINT_CLAIM]


class InvalidToken(Exception):
    """Expired, badly signed or malformed token."""


@dataclass(frozen=True)
class TokenClaims:
    """What a valid token says: whose it is, its id, its credentials fingerprint and its expiry."""

    subject: str
    jti: str
    fingerprint: str
    expires_at: datetime


def credentials_fingerprint(user) -> str:
    """Changes whenever the user's password does (Django invalidates sessions the same way)."""
    return user.get_session_auth_hash()[:FINGERPRINT_LENGTH]


def token_issue(*, user, now: datetime | None = None) -> tuple[str, datetime]:
    """A signed access token for ``user`` and the moment it expires."""
    now = now or datetime.now(UTC)
    expires_at = now + timedelta(seconds=settings.SMOTRA.auth.jwt_expiration)
    claims = {
        "sub": str(user.pk),
        "iss": ISSUER,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": uuid.uuid4().hex,
        FINGERPRINT_CLAIM: credentials_fingerprint(user),
    }
    return jwt.encode(claims, settings.SECRET_KEY, algorithm=ALGORITHM), expires_at.replace(microsecond=0)


def token_decode(token: str) -> TokenClaims:
    """The claims of a well-signed, unexpired token. Raises :class:`InvalidToken`."""
    try:
        claims = jwt.decode(
            token, settings.SECRET_KEY, algorithms=[ALGORITHM], issuer=ISSUER, options={"require": REQUIRED_CLAIMS}
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    values = (claims["sub"], claims["jti"], claims[FINGERPRINT_CLAIM])
    if not all(isinstance(value, str) and 0 < len(value) <= 64 for value in values):
        raise InvalidToken("malformed claims")
    expires_at = datetime.fromtimestamp(claims["exp"], UTC)
    return TokenClaims(subject=values[0], jti=values[1], fingerprint=values[2], expires_at=expires_at)


def token_user(claims: TokenClaims):
    """The active user the token belongs to, or None when the token was revoked or the password
    changed since it was issued. One query: the user row and the revocation look-up together."""
    revoked = RevokedToken.objects.filter(jti=claims.jti)
    user = (
        get_user_model()
        .objects.filter(pk=claims.subject, is_active=True)
        .annotate(token_revoked=Exists(revoked))
        .first()
    )
    if user is None or user.token_revoked:
        return None
    if not hmac.compare_digest(claims.fingerprint, credentials_fingerprint(user)):
        return None
    return user


def token_revoke(*, claims: TokenClaims) -> None:
    """End a token before its expiry (logout). Revoking twice, or concurrently, is harmless."""
    RevokedToken.objects.bulk_create(
        [RevokedToken(jti=claims.jti, expires_at=claims.expires_at)], ignore_conflicts=True
    )


def revoked_tokens_prune(*, now: datetime | None = None) -> int:
    """Forget revocations of tokens that have expired anyway (they are refused for that). Returns
    the number of rows deleted."""
    deleted, _ = RevokedToken.objects.filter(expires_at__lt=now or timezone.now()).delete()
    return deleted
