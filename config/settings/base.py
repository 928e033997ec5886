"""Settings shared by every environment; everything that differs comes from env vars."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

SECRET_KEY = env("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "rest_framework",
    "rest_framework_gis",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "allauth",
    "allauth.account",
    "django_tiles_gl",
    "apps.core",
    "apps.accounts",
    "apps.workspaces",
    "apps.maps",
    "apps.layers",
    "apps.comments",
    "apps.collaboration",
    "apps.jobs",
    "apps.tiles",
    "apps.imports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "apps.workspaces.middleware.WorkspaceScopeResetMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: PostGIS through psycopg 3 with Django's connection pool -------
# Defaults point at the project-local services `make run` starts; production requires both URLs.
LOCAL_DATABASE_URL = "postgres://meridian:meridian@127.0.0.1:55432/meridian"
DATABASES = {"default": env.db_url("DATABASE_URL", default=LOCAL_DATABASE_URL)}
DATABASES["default"]["ENGINE"] = "django.contrib.gis.db.backends.postgis"
DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool owns connection reuse
DATABASES["default"]["OPTIONS"] = {
    # Per session, so they hold on a managed PostgreSQL too: low-zoom cluster tiles sort and
    # group tens of thousands of points (the 4 MB default spills them to disk), and JIT
    # compilation would add tens of milliseconds to short, latency-bound tile statements.
    "options": "-c work_mem=32MB -c jit=off",
    "pool": {
        "min_size": env.int("DB_POOL_MIN", default=1),
        "max_size": env.int("DB_POOL_MAX", default=10),
        "timeout": 10,
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, Celery broker (separate logical databases) --
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:56379").rstrip("/")
REDIS_CACHE_DB = env.int("REDIS_CACHE_DB", default=1)
REDIS_CHANNEL_DB = env.int("REDIS_CHANNEL_DB", default=2)
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"{REDIS_URL}/{REDIS_CACHE_DB}",
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="meridian"),
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
    }
}
# Pub/sub: a group_send is one PUBLISH, and each process fans it out to its own
# consumers. The list-based RedisChannelLayer writes one entry per group member
# and pops them one Redis round trip at a time per process, which capped a busy
# map's fan-out (bench-realtime). Trade-off: a message published while a
# process's subscription is reconnecting is lost; map events carry a gapless seq,
# so a socket fills such a gap from the log at the next event (PROTOCOL.md).
# Pub/sub keeps no group membership in Redis, so none expires under a long-lived
# socket (the list layer's group_expiry) and none outlives a dead process.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            "hosts": [f"{REDIS_URL}/{REDIS_CHANNEL_DB}"],
            "prefix": env("CHANNEL_PREFIX", default="meridian"),
        },
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=f"{REDIS_URL}/0")
CELERY_RESULT_BACKEND = None  # results live on the Job row, not in Redis
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 60 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 55 * 60
# Must exceed the longest time limit, or Redis redelivers a task still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
CELERY_TASK_DEFAULT_QUEUE = "celery"

# --- Auth: email login through django-allauth ---------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", default="mandatory")
ACCOUNT_UNIQUE_EMAIL = True
LOGIN_REDIRECT_URL = "/"
LOGIN_URL = "/accounts/login/"
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Meridian <noreply@meridian.localhost>")
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- REST API -----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "apps.core.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {"anon": "120/min", "user": "1200/min"},
    "DEFAULT_VERSIONING_CLASS": None,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Meridian API",
    "DESCRIPTION": "Collaborative web-GIS workspaces: maps, layers, features, comments, jobs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from our own static files: pinned, and working offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "WorkspaceRoleEnum": "apps.workspaces.models.Role",
        "InvitableRoleEnum": [("admin", "Admin"), ("editor", "Editor"), ("viewer", "Viewer")],
    },
}
# Request bodies above this are refused before parsing (bulk feature uploads
# go through imports, which stream to disk).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=10 * 1024 * 1024)
API_MAX_PAGE_SIZE = 1000
FEATURE_BULK_MAX = 5000

# --- Imports (apps/imports) ------------------------------------------------------
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=1024**3)
IMPORT_MAX_UNCOMPRESSED_BYTES = env.int("IMPORT_MAX_UNCOMPRESSED_BYTES", default=4 * 1024**3)
IMPORT_MAX_ARCHIVE_MEMBERS = 1000
IMPORT_MAX_COMPRESSION_RATIO = 250  # for archive members over 1 MiB
IMPORT_READ_TIMEOUT_SECONDS = 30 * 60
# One feature with more vertices is refused (apps/imports/limits.py): it would stall repair, tiles and browsers.
IMPORT_MAX_VERTICES_PER_FEATURE = env.int("IMPORT_MAX_VERTICES_PER_FEATURE", default=500_000)
# A new layer imported with at least this many features gets a partition of layers_feature of its
# own, loaded before it is indexed (apps/layers/storage.py); smaller ones go to the shared partition.
IMPORTS_OWN_PARTITION_MIN_FEATURES = env.int("IMPORTS_OWN_PARTITION_MIN_FEATURES", default=50_000)
EXPORT_SYNC_MAX_FEATURES = env.int("EXPORT_SYNC_MAX_FEATURES", default=50_000)
# An export job's file is downloadable this long after the job finished, then deleted (apps/jobs/retention.py).
EXPORT_RETENTION_HOURS = env.int("EXPORT_RETENTION_HOURS", default=24)
# A tile archive (MBTiles / PMTiles) covering more tiles than this is refused with a 400 (apps/tiles/archives.py).
EXPORT_TILES_MAX_TILES = 100_000
# Point layers at least this large get a point table (apps/tiles/pointtable.py) for filtered cluster tiles.
TILES_POINT_TABLE_MIN_FEATURES = env.int("TILES_POINT_TABLE_MIN_FEATURES", default=50_000)
# Where the tiling job writes point columns (apps/tiles/pointcolumns.py) for web processes to map: a POSIX
# filesystem that web and tiling workers share (default: MEDIA_ROOT/tiles/points). A web node without them
# answers the same tiles from the point table, slower.
TILES_POINT_COLUMNS_ROOT = env("TILES_POINT_COLUMNS_ROOT", default="")

# --- Fetching user-supplied URLs (apps/core/fetch/, DESIGN §11) ------------------
FETCH_MAX_BYTES = env.int("FETCH_MAX_BYTES", default=IMPORT_MAX_BYTES)
FETCH_TIMEOUT_SECONDS = env.float("FETCH_TIMEOUT_SECONDS", default=30.0)  # connect, and silence between reads
FETCH_DEADLINE_SECONDS = env.float("FETCH_DEADLINE_SECONDS", default=15 * 60.0)  # whole fetch, < task limit
FETCH_MAX_REDIRECTS = 5
# Networks a fetch may reach although they are not global (CIDRs). Empty in production:
# only tests (a local server on 127.0.0.1) and self-hosters with internal data servers set it.
FETCH_ALLOWED_NETWORKS = env.list("FETCH_ALLOWED_NETWORKS", default=[])
try:  # a typo fails at startup, not at the first fetch
    [ipaddress.ip_network(network, strict=False) for network in FETCH_ALLOWED_NETWORKS]
except ValueError as exc:
    raise ImproperlyConfigured(f"FETCH_ALLOWED_NETWORKS: {exc}") from None

CELERY_TASK_ROUTES = {
    "imports.run": {"queue": "imports"},
    "exports.run": {"queue": "imports"},
    "exports.tile_archive": {"queue": "tiling"},
    "tiles.layer_tiling": {"queue": "tiling"},
}

# --- GeoDjango ----------------------------------------------------------------
# gis.W001: GDAL 3.6 cannot be told to refuse file/network access from a
# malicious SRS. Mitigation (DESIGN §1): user input never reaches GDAL as an SRS
# string or path — only integer EPSG codes present in spatial_ref_sys are
# accepted (apps/core/geometry.py), and imports open files through an allow-list.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]

# --- i18n / static ------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
MEDIA_URL = "/media/"

# --- Basemap: django-tiles-gl serves this OpenMapTiles MBTiles under /basemap/ ---
# `manage.py build_basemap` writes the offline demo file here; production points it at a planet file.
MBTILES_DATABASE = Path(env("MBTILES_DATABASE", default=str(BASE_DIR / "var" / "basemap" / "meridian.mbtiles")))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
