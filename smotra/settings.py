"""Django settings, derived entirely from the configuration file and environment (smotra.config).

Every knob has a safe development default; production differs only by configuration.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ

from smotra import __version__
from smotra.config import get_config

BASE_DIR = Path(__file__).resolve().parent.parent
SMOTRA = get_config()
SMOTRA_VERSION = __version__

SECRET_KEY = SMOTRA.auth.jwt_secret
DEBUG = os.environ.get("SMOTRA_DEBUG", "") == "1"
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("SMOTRA_ALLOWED_HOSTS", "*").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("SMOTRA_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from our static files: no CDN
    "django_prometheus",
    "axes",
    "smotra",
    "tenants",
    "endpoints",
    "agents",
    "results",
    "alerting",
    "healthchecks",
]

MIDDLEWARE = [
    "smotra.middleware.RequestIdMiddleware",
    "smotra.middleware.AccessLogMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "smotra.middleware.CorsMiddleware",
    "smotra.middleware.BodySizeLimitMiddleware",
    # The agent data plane stops here: what follows is for people's routes (smotra/middleware.py).
    "smotra.middleware.AgentRoutesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as axes asks: it turns the admin's locked-out login into its 429 page (and the metrics
    # and access log above see that 429). API views answer their own JSON 429 (tenants.api.views).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "smotra.urls"
WSGI_APPLICATION = "smotra.wsgi.application"
AUTH_USER_MODEL = "tenants.User"

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


# ---------------------------------------------------------------------------------------------
# Database. Gunicorn runs `server.workers` processes of `server.threads` threads; Django keeps one
# connection per thread, so at most workers x threads connections are open (max_open_conns caps it).


def _database() -> dict:
    pool = SMOTRA.pool
    if SMOTRA.database_url:
        db = environ.Env.db_url_config(SMOTRA.database_url)
    elif SMOTRA.database_type == "postgres":
        pg = SMOTRA.postgres_config
        db = {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": pg.host,
            "PORT": pg.port,
            "USER": pg.username,
            "PASSWORD": pg.password,
            "NAME": pg.database,
            "OPTIONS": {"sslmode": pg.sslmode},
        }
    else:
        db = {"ENGINE": "django.db.backends.sqlite3", "NAME": SMOTRA.sqlite_config.filepath}
    # conn_max_lifetime -> CONN_MAX_AGE (0 in the file means "no limit" in Go, None in Django);
    # max_idle_conns 0 -> do not keep connections between requests at all.
    if pool.max_idle_conns == 0:
        db["CONN_MAX_AGE"] = 0
    else:
        db["CONN_MAX_AGE"] = pool.conn_max_lifetime or None
    # A kept connection is checked before reuse, so one the server closed while idle is replaced
    # (on PostgreSQL without a round trip: smotra.postgresql).
    db["CONN_HEALTH_CHECKS"] = True
    options = db.setdefault("OPTIONS", {})
    if db["ENGINE"].endswith("sqlite3"):
        _sqlite_options(db, options)
    else:
        db["ENGINE"] = "smotra.postgresql"
        options.setdefault("connect_timeout", max(1, int(SMOTRA.postgres_config.connect_timeout)))
        options.setdefault("application_name", "smotra")
    return db


def _sqlite_options(db: dict, options: dict) -> None:
    """WAL lets readers run beside the single writer; IMMEDIATE takes the write lock up front so
    concurrent transactions queue (busy timeout) instead of failing with 'database is locked'."""
    if db["NAME"] != ":memory:":
        Path(db["NAME"]).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        test_name = str(Path(db["NAME"]).with_name("test_" + Path(db["NAME"]).name))
        db.setdefault("TEST", {}).setdefault("NAME", os.environ.get("SMOTRA_TEST_SQLITE_PATH", test_name))
    options.setdefault("transaction_mode", "IMMEDIATE")
    options.setdefault("timeout", 20)
    options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# State shared by workers (rate limits, rendered configurations, key lookups) lives in our own
# database tables, so nothing here needs to be shared; SMOTRA_CACHE_URL (e.g. redis://) swaps in a
# shared cache for Django's own uses (none needed by default).
CACHES = {
    "default": environ.Env.cache_url_config(SMOTRA.cache_url)
    if SMOTRA.cache_url
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
}

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# The Docker image runs collectstatic into SMOTRA_STATIC_ROOT; elsewhere whitenoise serves the
# admin's assets straight from the installed apps, so `serve` needs no collectstatic step.
STATIC_ROOT = os.environ.get("SMOTRA_STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = False

# Our own parser enforces results.max_body_bytes on API bodies; this guards form posts (admin).
DATA_UPLOAD_MAX_MEMORY_SIZE = SMOTRA.results.max_body_bytes
APPEND_SLASH = True

if SMOTRA.server.environment == "production":
    SESSION_COOKIE_SECURE = os.environ.get("SMOTRA_INSECURE_COOKIES", "") != "1"
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if SMOTRA.server.trusted_proxies:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

LOGIN_URL = "admin:login"

# ---------------------------------------------------------------------------------------------
# Login throttling (django-axes) for POST /auth/token and the admin login: 5 failures within 15
# minutes lock that username (from any address) and, separately, that client address (for any
# username); while locked, even the right password is refused, and each refused try restarts the
# 15 minutes. Attempts live in the database (AccessAttempt), so every gunicorn worker shares them.

# AxesStandaloneBackend comes first: it refuses a locked-out attempt before a password is hashed.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # two separate counters, not the pair
AXES_CLIENT_IP_CALLABLE = "smotra.http.client_address"  # honours server.trusted_proxies
# A success must not clear the counters: it would also clear its address's counter, so a sprayer
# holding one valid account could reset the per-address limit at will.
AXES_RESET_ON_SUCCESS = False
# Axes would also keep a row per successful admin login, never pruned; the access log has them.
AXES_DISABLE_ACCESS_LOG = True

# ---------------------------------------------------------------------------------------------
# API

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["smotra.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "smotra.api.pagination.PagePagination",
    "EXCEPTION_HANDLER": "smotra.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "smotra.api.schema.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Smotra API",
    "DESCRIPTION": "Distributed reachability monitoring: agent onboarding, data plane and management.",
    "VERSION": __version__,
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs pages load their scripts from our own static files, so they work without internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "PREPROCESSING_HOOKS": ["smotra.api.schema.only_canonical_prefix"],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "AgentStatusEnum": "agents.models.AgentStatus",
        "ClaimStatusEnum": ["pending_claim", "claimed"],
        "RegistrationStatusEnum": ["pending_claim"],
        "TopologyTypeEnum": "endpoints.models.TopologyType",
        "CheckTypeEnum": ["ping", "tcpconnect", "udpconnect", "httpget", "traceroute", "plugin"],
    },
}

# ---------------------------------------------------------------------------------------------
# Metrics: django-prometheus; multiprocess aggregation is switched on by `serve` (see smotra.serving).

PROMETHEUS_EXPORT_MIGRATIONS = False

# ---------------------------------------------------------------------------------------------
# Logging: one line per record, JSON or text, each carrying the request id.

_LEVELS = {"debug": "DEBUG", "info": "INFO", "warn": "WARNING", "error": "ERROR"}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "smotra.logging.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "smotra.logging.JsonFormatter"},
        "text": {"()": "smotra.logging.TextFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": SMOTRA.logging.format,
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": _LEVELS[SMOTRA.logging.level]},
    "loggers": {
        # Our access log replaces Django's per-request warnings; its 500 tracebacks still reach the log.
        "django.request": {"level": "ERROR", "propagate": True},
        "django.server": {"level": "WARNING", "propagate": True},
        "django.db.backends": {"level": "INFO"},
        # Axes announces itself at every start of every command, and each failed login at info.
        "axes": {"level": "WARNING"},
    },
}

# Email for the alerting email channel (config ``email.*``); with no host, mail is written to the
# console (the server's log) so nothing is lost silently.
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if SMOTRA.email.host
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = SMOTRA.email.host or "localhost"
EMAIL_PORT = SMOTRA.email.port
EMAIL_HOST_USER = SMOTRA.email.username
EMAIL_HOST_PASSWORD = SMOTRA.email.password
EMAIL_USE_TLS = SMOTRA.email.use_tls
EMAIL_TIMEOUT = SMOTRA.alerts.delivery_timeout
DEFAULT_FROM_EMAIL = SMOTRA.email.from_address
