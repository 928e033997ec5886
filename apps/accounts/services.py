from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from apps.accounts.models import ApiToken, User, hash_token
from apps.core.errors import ApplicationError


def api_token_create(*, user: User, name: str, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """A new token and its raw key; the key is never stored and cannot be shown again."""
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError("Must be in the future.", field="expires_at")
    key = ApiToken.generate_key()
    token = ApiToken.objects.create(
        user=user, name=name, key_hash=hash_token(key), key_prefix=key[:8], expires_at=expires_at
    )
    return token, key


def user_update(*, user: User, name: str) -> User:
    user.name = name
    user.save(update_fields=["name"])
    return user
