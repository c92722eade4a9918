"""``manage.py issue_token USERNAME``: print a bearer token for the user (only the token, on stdout)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from tenants.tokens import token_issue


class Command(BaseCommand):
    help = "Issue a bearer token for USERNAME, valid for auth.jwt_expiration. Prints only the token."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named {username!r}.")
        token, _expires_at = token_issue(user=user)
        self.stdout.write(token)
