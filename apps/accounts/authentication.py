"""API token authentication: `Authorization: Token <key>` (or `Bearer <key>`)."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection, models
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from apps.accounts.models import ApiToken, User, hash_token

# Writing last_used_at on every request would turn reads into writes.
LAST_USED_RESOLUTION = timedelta(minutes=5)


def _columns(model: type[models.Model], alias: str) -> tuple[list[str], str]:
    fields = model._meta.concrete_fields
    return [f.attname for f in fields], ", ".join(f"{alias}.{connection.ops.quote_name(f.column)}" for f in fields)


_USER_FIELDS, _USER_COLUMNS = _columns(User, "u")
_TOKEN_FIELDS, _TOKEN_COLUMNS = _columns(ApiToken, "t")
# Every authenticated API call and tile runs this: one raw statement building complete
# instances costs about a third of the equivalent select_related queryset.
_TOKEN_SQL = f"""
    SELECT {_USER_COLUMNS}, {_TOKEN_COLUMNS}
    FROM accounts_apitoken t JOIN accounts_user u ON u.id = t.user_id
    WHERE t.key_hash = %s
"""  # noqa: S608 (column names from the models, no input)


def _token_with_user(key: str) -> tuple[User, ApiToken] | None:
    with connection.cursor() as cursor:
        cursor.execute(_TOKEN_SQL, [hash_token(key)])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(_USER_FIELDS)
    user = User.from_db(connection.alias, _USER_FIELDS, row[:split])
    token = ApiToken.from_db(connection.alias, _TOKEN_FIELDS, row[split:])
    token.user = user
    return user, token


def user_for_token_key(key: str) -> tuple[User, ApiToken] | None:
    """The active user behind a raw key, or None. Shared by HTTP and websockets."""
    found = _token_with_user(key)
    if found is None:
        return None
    user, token = found
    if token.is_expired or not user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return user, token


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
