"""War Room settings.

Everything that differs between machines comes from the environment (or a `.env` file
beside manage.py), read through django-environ. With no `DATABASE_URL` and no `REDIS_URL`
the product runs on embedded defaults: SQLite in `WARROOM_DATA_DIR` and an embedded
redis-server that `manage.py serve` (and the test suite) start themselves.
"""

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env(
    "SECRET_KEY",
    # Only the embedded default may run without one; production sets SECRET_KEY.
    default="insecure-embedded-default-change-me-in-production-0123456789",
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The public address of the web UI, used in links that leave the product (cards, SMS, email).
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

DATA_DIR = Path(env("WARROOM_DATA_DIR", default=str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "warroom",
    "roster",
    "incidents",
    "notifications",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "warroom.urls"
ASGI_APPLICATION = "warroom.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'warroom.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Three processes share the file: take the write lock when a transaction starts (so two
    # writers queue instead of failing on a lock upgrade) and wait for it rather than erroring.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"}
    )
    # A file, not :memory:, so that tests with several threads share one database; one per
    # test run, so that two runs on one machine do not share it.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"warroom-test-{os.getpid()}.sqlite3")
    }
else:
    # A pool of connections per process (psycopg's), not one connection per request or per
    # socket call: a PostgreSQL connect costs more than most of our queries, and under ASGI
    # each request runs on a thread of its own, so a per-thread persistent connection
    # (CONN_MAX_AGE) would be opened anew for every request anyway. The pool hands out only
    # healthy connections. DATABASE_POOL=0 turns it off (e.g. behind PgBouncer in
    # transaction mode, with CONN_MAX_AGE instead).
    if env.bool("DATABASE_POOL", default=True):
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DATABASE_POOL_MIN", default=1),
            "max_size": env.int("DATABASE_POOL_MAX", default=10),
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10),
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0
    else:
        DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    # A connection that broke while idle (a restarted server, a terminated backend) is
    # noticed before it is used, in the pool as well.
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, channel layer, cache --------------------------------------------------
EMBEDDED_REDIS_PORT = env.int("EMBEDDED_REDIS_PORT", default=6380)
REDIS_URL = env("REDIS_URL", default=f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "warroom",
    }
}

# A socket waits for events in a BZPOPMIN that Redis holds open for up to 5 s
# (channels-redis's RedisChannelLayer.brpop_timeout), then asks again. redis-py 8 stops
# reading after 5 s by default, so an idle page's receive failed with "Timeout reading"
# and its socket dropped. Read for longer than Redis holds the command, yet short enough
# to notice a Redis that stopped answering. The URL still gives host, password and db.
CHANNEL_LAYER_READ_TIMEOUT = 15
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": CHANNEL_LAYER_READ_TIMEOUT}],
            "prefix": "warroom:asgi",
        },
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Three queues, each with workers of its own (see notifications.outbox.queue): pages and
# the group first, other messages, and the scheduler (sweeper, follow-ups, heartbeat), so
# that a slow provider never delays a deadline and a busy scheduler never delays a page.
CELERY_TASK_DEFAULT_QUEUE = "messages"
CELERY_TASK_ROUTES = {
    "notifications.tasks.sweep": {"queue": "scheduler"},
    "notifications.tasks.follow_up": {"queue": "scheduler"},
    "warroom.tasks.heartbeat": {"queue": "scheduler"},
    "alerts.tasks.heartbeats_check": {"queue": "scheduler"},
}
CELERY_TIMEZONE = "UTC"
# Anything that waits longer than a minute lives in the database and is picked up by the
# scheduler; broker ETAs are redelivered by Redis after its visibility timeout.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
WORKER_HEARTBEAT_EVERY = env.int("WORKER_HEARTBEAT_EVERY", default=10)
WORKER_HEARTBEAT_STALE_AFTER = env.int("WORKER_HEARTBEAT_STALE_AFTER", default=60)
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {
        "task": "warroom.tasks.heartbeat",
        "schedule": timedelta(seconds=WORKER_HEARTBEAT_EVERY),
    },
}

# --- Auth, API ----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an unauthenticated request is told how to authenticate (401).
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "incidents.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "War Room API",
    "DESCRIPTION": "Declare and run production faults: roles, check-in, tasks, mitigation plans, updates.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Served from our own static files: the docs work with no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- I18N, time ---------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = env("TIME_ZONE", default="UTC")

# --- Static -------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Serve app and project static files straight from their folders too, so that a process
# started without `collectstatic` (a test server, a second web machine) still has them.
WHITENOISE_USE_FINDERS = True
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Security in production ---------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- Notifications: providers, outbox, receipts (owned by the notifications app) ---------
# A provider is on when its credentials are set; otherwise the sandbox transport keeps its
# messages in the database (the default of `make run`). Base URLs are settings so that a
# proxy or the loopback provider (`python -m tools.fakeprovider`) can stand in.
DINGTALK_API_BASE = env("DINGTALK_API_BASE", default="https://api.dingtalk.com").rstrip("/")
DINGTALK_OAPI_BASE = env("DINGTALK_OAPI_BASE", default="https://oapi.dingtalk.com").rstrip("/")
DINGTALK_APP_KEY = env("DINGTALK_APP_KEY", default="")
DINGTALK_APP_SECRET = env("DINGTALK_APP_SECRET", default="")
DINGTALK_ROBOT_CODE = env("DINGTALK_ROBOT_CODE", default="")
DINGTALK_SCENE_TEMPLATE_ID = env("DINGTALK_SCENE_TEMPLATE_ID", default="")
DINGTALK_CARD_TEMPLATE_ID = env("DINGTALK_CARD_TEMPLATE_ID", default="")
DINGTALK_CARD_CALLBACK_SECRET = env("DINGTALK_CARD_CALLBACK_SECRET", default="")
DINGTALK_CARD_CALLBACK_ROUTE_KEY = env("DINGTALK_CARD_CALLBACK_ROUTE_KEY", default="warroom-check-in")
ALIYUN_SMS_ENDPOINT = env("ALIYUN_SMS_ENDPOINT", default="https://dysmsapi.aliyuncs.com").rstrip("/")
ALIYUN_VOICE_ENDPOINT = env("ALIYUN_VOICE_ENDPOINT", default="https://dyvmsapi.aliyuncs.com").rstrip("/")
ALIYUN_ACCESS_KEY_ID = env("ALIYUN_ACCESS_KEY_ID", default="")
ALIYUN_ACCESS_KEY_SECRET = env("ALIYUN_ACCESS_KEY_SECRET", default="")
ALIYUN_SMS_SIGN_NAME = env("ALIYUN_SMS_SIGN_NAME", default="")
ALIYUN_SMS_TEMPLATE_CODE = env("ALIYUN_SMS_TEMPLATE_CODE", default="")
ALIYUN_TTS_CODE = env("ALIYUN_TTS_CODE", default="")
ALIYUN_VOICE_SHOW_NUMBER = env("ALIYUN_VOICE_SHOW_NUMBER", default="")
# SmsReport / VoiceReport pushes are unsigned: the secret path segment is their only guard.
# Empty turns the receipt endpoints off (404).
ALIYUN_RECEIPT_SECRET = env("ALIYUN_RECEIPT_SECRET", default="")
# Email goes through Django's email backend; it is on when EMAIL_HOST is set.
EMAIL_HOST = env("EMAIL_HOST", default="")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="War Room <warroom@localhost>")
# Generic outgoing webhook: JSON POST signed with HMAC-SHA256 (header X-WarRoom-Signature).
NOTIFY_WEBHOOK_URL = env("NOTIFY_WEBHOOK_URL", default="")
NOTIFY_WEBHOOK_SECRET = env("NOTIFY_WEBHOOK_SECRET", default="")
# Outbox behaviour.
NOTIFY_HTTP_CONNECT_TIMEOUT = env.float("NOTIFY_HTTP_CONNECT_TIMEOUT", default=3.05)
NOTIFY_HTTP_READ_TIMEOUT = env.float("NOTIFY_HTTP_READ_TIMEOUT", default=10.0)
# A page tries one method this many times before the person's next method; after the last
# method it starts over at the first (after a pause) while some method failed only for now.
NOTIFY_MAX_ATTEMPTS = env.int("NOTIFY_MAX_ATTEMPTS", default=4)
# Messages (notifications, group messages, the group itself) are retried with capped
# backoff until delivered, no longer needed, or this many seconds old: outages are outlasted.
NOTIFY_RETRY_HORIZON = env.int("NOTIFY_RETRY_HORIZON", default=24 * 3600)
# All the HTTP requests of one send (a token, then the message) get this many seconds in all.
NOTIFY_SEND_BUDGET = env.float("NOTIFY_SEND_BUDGET", default=15.0)
# This many failures in a row of one provider, none refused and no success between, is an outage.
NOTIFY_OUTAGE_AFTER = env.int("NOTIFY_OUTAGE_AFTER", default=5)
# During an outage messages are held; one probe per this many seconds tests the provider.
NOTIFY_OUTAGE_PROBE_EVERY = env.int("NOTIFY_OUTAGE_PROBE_EVERY", default=10)
# The sweeper and the scheduler take at most this many rows of each kind per run.
NOTIFY_SWEEP_BATCH = env.int("NOTIFY_SWEEP_BATCH", default=200)
NOTIFY_BACKOFF_BASE = env.int("NOTIFY_BACKOFF_BASE", default=15)  # seconds, doubled per attempt
NOTIFY_BACKOFF_MAX = env.int("NOTIFY_BACKOFF_MAX", default=300)
NOTIFY_LEASE_SECONDS = env.int("NOTIFY_LEASE_SECONDS", default=60)
# How long an unconfirmed SMS / call waits for its receipt before the next paging method is used.
NOTIFY_RECEIPT_WAIT_SECONDS = env.int("NOTIFY_RECEIPT_WAIT_SECONDS", default=300)
NOTIFY_SWEEP_EVERY = env.int("NOTIFY_SWEEP_EVERY", default=10)
# How often the scheduler looks for due follow-ups: first pages, re-pages, escalation steps,
# commander replacement, repeated notifications, task and progress reminders.
NOTIFY_FOLLOW_UP_EVERY = env.int("NOTIFY_FOLLOW_UP_EVERY", default=10)
# The language of messages to groups (a person's messages are in his own preferred language).
NOTIFY_GROUP_LANGUAGE = env("NOTIFY_GROUP_LANGUAGE", default=LANGUAGE_CODE)
CELERY_BEAT_SCHEDULE.update(
    {
        "notifications-sweep": {
            "task": "notifications.tasks.sweep",
            "schedule": timedelta(seconds=NOTIFY_SWEEP_EVERY),
            # A sweep or follow-up still queued when the next is due is only waste: drop it.
            "options": {"expires": NOTIFY_SWEEP_EVERY},
        },
        "notifications-follow-up": {
            "task": "notifications.tasks.follow_up",
            "schedule": timedelta(seconds=NOTIFY_FOLLOW_UP_EVERY),
            "options": {"expires": NOTIFY_FOLLOW_UP_EVERY},
        },
    }
)
# --- end of notifications settings --------------------------------------------------------

# --- Alerts: monitoring integrations ------------------------------------------------------
# Two businesses alerting within this many seconds of each other, one depending on the
# other: the dependency becomes a suspected cause of the dependant's fault.
ALERTS_SUSPECT_WINDOW = env.int("ALERTS_SUSPECT_WINDOW", default=15 * 60)
# How often the scheduler looks for heartbeat integrations that stopped calling.
ALERTS_HEARTBEAT_CHECK_EVERY = env.int("ALERTS_HEARTBEAT_CHECK_EVERY", default=30)
CELERY_BEAT_SCHEDULE["alerts-heartbeats"] = {
    "task": "alerts.tasks.heartbeats_check",
    "schedule": timedelta(seconds=ALERTS_HEARTBEAT_CHECK_EVERY),
    "options": {"expires": ALERTS_HEARTBEAT_CHECK_EVERY},
}
