"""Production. Required env vars: SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL, REDIS_URL.

Optional: CSRF_TRUSTED_ORIGINS, CELERY_BROKER_URL, EMAIL_URL (smtp://user:pass@host:587)
or EMAIL_BACKEND, DEFAULT_FROM_EMAIL, SITE_URL, ACCOUNT_EMAIL_VERIFICATION,
DB_POOL_MIN / DB_POOL_MAX, CACHE_KEY_PREFIX, CHANNEL_PREFIX, DATA_UPLOAD_MAX_MEMORY_SIZE,
REDIS_CACHE_DB, REDIS_CHANNEL_DB, MEDIA_ROOT, LOG_LEVEL, SECURE_SSL_REDIRECT, SECURE_HSTS_SECONDS,
SECURE_HSTS_PRELOAD, IMPORT_MAX_BYTES, IMPORT_MAX_UNCOMPRESSED_BYTES, IMPORT_MAX_VERTICES_PER_FEATURE,
IMPORTS_OWN_PARTITION_MIN_FEATURES, EXPORT_SYNC_MAX_FEATURES, EXPORT_RETENTION_HOURS, MBTILES_DATABASE,
TILES_POINT_TABLE_MIN_FEATURES, TILES_POINT_COLUMNS_ROOT,
FETCH_MAX_BYTES, FETCH_TIMEOUT_SECONDS, FETCH_DEADLINE_SECONDS, FETCH_ALLOWED_NETWORKS (tests and self-hosting only).
compose/.env.example documents each one.
TLS is expected to terminate at the load balancer, which sets X-Forwarded-Proto.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

REQUIRED_ENV_VARS = ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL")

# Checked before base is imported: base reads DATABASE_URL at import time and
# quietly falls back to a local Redis, and production must not start half-configured.
_missing = [name for name in REQUIRED_ENV_VARS if not os.environ.get(name, "").strip()]
if _missing:
    raise ImproperlyConfigured(
        f"Production settings need these environment variables, which are missing or empty: {', '.join(_missing)} "
        "(see compose/.env.example)."
    )

from .base import *  # noqa: E402, F403
from .base import env  # noqa: E402

DEBUG = False
SECRET_KEY = env("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
# The websocket origin check (AllowedHostsOriginValidator) trusts ALLOWED_HOSTS,
# so a wildcard would let any site open a socket with a visitor's cookies.
if "*" in ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must list the real host names, not '*'.")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Probes talk plain HTTP to the node itself, behind the TLS terminator.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

if env("EMAIL_URL", default=""):
    globals().update(env.email_url("EMAIL_URL"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
