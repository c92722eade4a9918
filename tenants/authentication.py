"""DRF authentication for people: ``Authorization: Bearer <token>`` from ``POST /auth/token``."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import authentication, exceptions

from tenants.tokens import InvalidToken, token_subject


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """None when no bearer header is present (other schemes may apply); 401 when it is wrong."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid authentication")
        try:
            user_id = token_subject(header[1].decode("ascii"))
        except (InvalidToken, UnicodeDecodeError):
            raise exceptions.AuthenticationFailed("Invalid authentication") from None
        user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid authentication")
        return user, None

    def authenticate_header(self, request):
        return self.keyword
