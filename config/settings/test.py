"""pytest: real PostGIS and Redis (the same services `make run` uses)."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import CACHES, CHANNEL_LAYERS, REDIS_URL, env

DEBUG = False
SECRET_KEY = "test-only-key-0123456789-0123456789-0123456789-0123456789"  # noqa: S105
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only
ACCOUNT_EMAIL_VERIFICATION = "mandatory"

# Tests use their own Redis databases so a running dev server's data is untouched
# (the local Redis has 64 databases, so parallel checkouts can each take three).
# Two test runs at once (e.g. two checkouts) pick other numbers with these variables,
# because the cache fixture flushes its whole database.
_worker = int(env("PYTEST_XDIST_WORKER", default="gw0").lstrip("gw") or "0")
CACHES["default"]["LOCATION"] = f"{REDIS_URL}/{env.int('TEST_CACHE_DB', default=10) + _worker}"
CACHES["default"]["KEY_PREFIX"] = f"test{_worker}"
CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [f"{REDIS_URL}/{env.int('TEST_CHANNEL_DB', default=15)}"]
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"test{_worker}"
CELERY_BROKER_URL = f"{REDIS_URL}/{env.int('TEST_BROKER_DB', default=9)}"

# Static files straight from the finders (no collectstatic in dev and tests).
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
