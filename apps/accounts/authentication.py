"""API token authentication: `Authorization: Token <key>` (or `Bearer <key>`)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from apps.accounts.models import ApiToken, User, hash_token

# Writing last_used_at on every request would turn reads into writes.
LAST_USED_RESOLUTION = timedelta(minutes=5)


def user_for_token_key(key: str) -> tuple[User, ApiToken] | None:
    """The active user behind a raw key, or None. Shared by HTTP and websockets."""
    token = (
        ApiToken.objects.select_related("user")
        .only("id", "expires_at", "last_used_at", "user__id", "user__email", "user__is_active", "user__name")
        .filter(key_hash=hash_token(key))
        .first()
    )
    if token is None or token.is_expired or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user, token


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("token", "bearer")

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].decode().lower() not in self.keywords:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Token <key>'.")
        found = user_for_token_key(parts[1].decode(errors="replace"))
        if found is None:
            raise exceptions.AuthenticationFailed("Invalid or expired API token.")
        return found

    def authenticate_header(self, request: Request) -> str:
        return 'Token realm="api"'
