"""Production. Required env vars: SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL, REDIS_URL.

Optional: CSRF_TRUSTED_ORIGINS, EMAIL_URL (smtp://user:pass@host:587), SITE_URL,
DB_POOL_MIN / DB_POOL_MAX, SECURE_HSTS_SECONDS, MBTILES_DATABASE, LOG_LEVEL.
TLS is expected to terminate at the load balancer, which sets X-Forwarded-Proto.
"""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
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
    vars().update(env.email_url("EMAIL_URL"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
