"""DRF authentication for people: ``Authorization: Bearer <token>`` from ``POST /auth/token``."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from tenants.tokens import InvalidToken, token_decode, token_user


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """None when no bearer header is present (other schemes may apply); 401 when it is wrong,
    expired, revoked, or older than the user's last password change. ``request.auth`` is the
    token's :class:`~tenants.tokens.TokenClaims` (logout needs its id and expiry)."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid authentication")
        try:
            claims = token_decode(header[1].decode("ascii"))
        except (InvalidToken, UnicodeDecodeError):
            raise exceptions.AuthenticationFailed("Invalid authentication") from None
        user = token_user(claims)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid authentication")
        return user, claims

    def authenticate_header(self, request):
        return self.keyword
