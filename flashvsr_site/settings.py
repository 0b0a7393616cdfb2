"""Django settings, read from environment variables.

Every variable is listed with its default and meaning in docs/settings.md; add new ones there too.
"""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from gpu.params import (
    COLOR_FIX_METHODS,
    MODEL_VARIANTS,
    OUTPUT_CODECS,
    PARAMETER_LIMITS,
    SCALES,
    VARIANTS,
)

from .env import (
    database_from_url,
    env_bool,
    env_bytes,
    env_choice,
    env_float,
    env_header,
    env_int,
    env_list,
    env_str,
    read_secret,
)
from .logs import build_logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

# --- Core -----------------------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)

_DEV_SECRET_KEY = "django-insecure-flashvsr-development-key-never-use-in-production"
SECRET_KEY = read_secret("SECRET_KEY") or (_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set SECRET_KEY to a long random string (or SECRET_KEY_FILE to a file that "
        "contains one), or set DEBUG=1 for local development."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "django_q",
    "flashvsr_site.apps.SiteConfig",
    "tasks_app",
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
    "django_htmx.middleware.HtmxMiddleware",
    "flashvsr_site.middleware.HtmxLoginRedirectMiddleware",
    "flashvsr_site.middleware.TaskLogContextMiddleware",
]

ROOT_URLCONF = "flashvsr_site.urls"
WSGI_APPLICATION = "flashvsr_site.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
                "django.template.context_processors.i18n",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]

# --- HTTPS and cookies ------------------------------------------------------------------------------------
# FLASHVSR_HTTPS=1 declares that the site is reached over HTTPS only, usually through a proxy that ends TLS.
# It turns on secure cookies, the HTTPS redirect and one year of HSTS, and each of them has its own variable
# to override it. The default is off so that the local run over http://127.0.0.1:8000 can log in.

FLASHVSR_HTTPS = env_bool("FLASHVSR_HTTPS", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", FLASHVSR_HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", FLASHVSR_HTTPS)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", FLASHVSR_HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if FLASHVSR_HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# For example "X-Forwarded-Proto: https" when the proxy sets that header (and strips it from clients).
SECURE_PROXY_SSL_HEADER = env_header("SECURE_PROXY_SSL_HEADER")
USE_X_FORWARDED_HOST = env_bool("USE_X_FORWARDED_HOST", False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Database and cache ----------------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", "sqlite:///var/db.sqlite3")
DATABASES = {"default": database_from_url(DATABASE_URL, base_dir=BASE_DIR)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)

Q_BROKER = env_choice("Q_BROKER", "orm", ("orm", "redis"))
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

# django-q2 keeps cluster statistics in the cache, so every process must share it.
if Q_BROKER == "redis":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "flashvsr_cache"}
    }

# --- Authentication and internationalisation --------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = env_str("LANGUAGE_CODE", "en")
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media files ------------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# With DEBUG off, templates need the manifest that `collectstatic` writes to STATIC_ROOT: the local run script
# and every deployment run collectstatic. The finders still serve static/ directly, which tests rely on.
WHITENOISE_USE_FINDERS = True

MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"  # never served directly: downloads go through the ownership-checking view

# Uploads stream to a temporary file on the media volume, so storing one is a rename and not a copy.
FILE_UPLOAD_TEMP_DIR = str(MEDIA_ROOT / "tmp")
# Created here so a fresh checkout runs. If this fails (read-only or unmounted volume), Django's check
# files.E001 reports the missing folder.
try:
    Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
except OSError:
    pass
FILE_UPLOAD_HANDLERS = ["tasks_app.uploads.LimitedTemporaryFileUploadHandler"]
FILE_UPLOAD_PERMISSIONS = 0o640

# --- Upscaling defaults and limits --------------------------------------------------------------------------


def _limits(parameter: str) -> dict:
    minimum, maximum = PARAMETER_LIMITS[parameter]
    return {"minimum": minimum, "maximum": maximum}


FLASHVSR_MODEL_DIR = Path(env_str("FLASHVSR_MODEL_DIR", str(BASE_DIR / "models" / "FlashVSR-v1.1")))
DEFAULT_MODEL_VARIANT = env_choice("DEFAULT_MODEL_VARIANT", "tiny_long", VARIANTS)
FLASHVSR_DEFAULT_SCALE = int(env_choice("FLASHVSR_DEFAULT_SCALE", "4", tuple(str(s) for s in SCALES)))
FLASHVSR_DEFAULT_SPARSE_RATIO = env_float("FLASHVSR_DEFAULT_SPARSE_RATIO", 2.0, **_limits("sparse_ratio"))
FLASHVSR_DEFAULT_KV_RATIO = env_float("FLASHVSR_DEFAULT_KV_RATIO", 3.0, **_limits("kv_ratio"))
FLASHVSR_DEFAULT_LOCAL_RANGE = env_int("FLASHVSR_DEFAULT_LOCAL_RANGE", 11, **_limits("local_range"))
FLASHVSR_DEFAULT_COLOR_FIX = env_choice("FLASHVSR_DEFAULT_COLOR_FIX", "adain", COLOR_FIX_METHODS)
FLASHVSR_DEFAULT_SEED = env_int("FLASHVSR_DEFAULT_SEED", 0, **_limits("seed"))
FLASHVSR_DEFAULT_CODEC = env_choice("FLASHVSR_DEFAULT_CODEC", "h264", OUTPUT_CODECS)
FLASHVSR_DEFAULT_CRF = env_int("FLASHVSR_DEFAULT_CRF", 18, **_limits("crf"))
# The x264/x265 speed presets, fastest first.
ENCODER_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
FLASHVSR_DEFAULT_PRESET = env_choice("FLASHVSR_DEFAULT_PRESET", "medium", ENCODER_PRESETS)

FLASHVSR_MAX_UPLOAD_BYTES = env_bytes("FLASHVSR_MAX_UPLOAD_BYTES", 2 * 1024**3)
FLASHVSR_MAX_DURATION_SECONDS = env_float("FLASHVSR_MAX_DURATION_SECONDS", 3600.0, minimum=0.0)
FLASHVSR_MAX_SOURCE_PIXELS = env_int("FLASHVSR_MAX_SOURCE_PIXELS", 1920 * 1080, minimum=1)
FLASHVSR_MAX_OUTPUT_PIXELS = env_int("FLASHVSR_MAX_OUTPUT_PIXELS", 3840 * 2160, minimum=1)
# Tasks a user may have waiting in the queue at once; 0 turns the cap off.
FLASHVSR_MAX_QUEUED_TASKS_PER_USER = env_int("FLASHVSR_MAX_QUEUED_TASKS_PER_USER", 5, minimum=0)
# When set (for example /protected-media/), nginx sends downloads through X-Accel-Redirect. The view checks
# the owner, and nginx sends the file from an `internal` location that maps this prefix onto MEDIA_ROOT.
FLASHVSR_X_ACCEL_REDIRECT_PREFIX = env_str("FLASHVSR_X_ACCEL_REDIRECT_PREFIX", "")
if FLASHVSR_X_ACCEL_REDIRECT_PREFIX and not (
    FLASHVSR_X_ACCEL_REDIRECT_PREFIX.startswith("/") and FLASHVSR_X_ACCEL_REDIRECT_PREFIX.endswith("/")
):
    raise ImproperlyConfigured(
        f"FLASHVSR_X_ACCEL_REDIRECT_PREFIX={FLASHVSR_X_ACCEL_REDIRECT_PREFIX!r} is invalid: "
        "it must start and end with '/', for example /protected-media/."
    )

FLASHVSR_STREAMING_DECODE_THREADS = env_int("FLASHVSR_STREAMING_DECODE_THREADS", 2, minimum=1)
FLASHVSR_STREAMING_PREFETCH_FRAMES = env_int("FLASHVSR_STREAMING_PREFETCH_FRAMES", 32, minimum=1)
FLASHVSR_STREAMING_LQ_MAX_BYTES = env_bytes("FLASHVSR_STREAMING_LQ_MAX_BYTES", 0)
FLASHVSR_PREVIEW_INTERVAL_SECONDS = env_float("FLASHVSR_PREVIEW_INTERVAL_SECONDS", 5.0, minimum=0.5)
# Each gpu-cluster worker process loads these variants when it starts (tasks_app/preload.py); others load on
# their first task.
MODEL_VARIANTS_TO_PRELOAD = env_list("MODEL_VARIANTS_TO_PRELOAD", [])
_unknown_variants = sorted(set(MODEL_VARIANTS_TO_PRELOAD) - set(MODEL_VARIANTS))
if _unknown_variants:
    raise ImproperlyConfigured(
        f"MODEL_VARIANTS_TO_PRELOAD lists unknown variants {', '.join(_unknown_variants)}; "
        f"expected a comma-separated subset of {', '.join(MODEL_VARIANTS)}."
    )

TASK_RETENTION_DAYS = env_int("TASK_RETENTION_DAYS", 30, minimum=1)
# Each queue worker process refreshes its WorkerHeartbeat row this often. reconcile_tasks treats a running
# task as interrupted once both its worker's heartbeat and its own progress are older than the stale limit.
FLASHVSR_HEARTBEAT_SECONDS = env_float("FLASHVSR_HEARTBEAT_SECONDS", 5.0, minimum=0.5)
FLASHVSR_HEARTBEAT_STALE_SECONDS = env_float("FLASHVSR_HEARTBEAT_STALE_SECONDS", 60.0, minimum=1.0)
FLASHVSR_TASK_TIMEOUT_SECONDS = env_int("FLASHVSR_TASK_TIMEOUT_SECONDS", 6 * 3600, minimum=60)

# --- Task queue (django-q2) ---------------------------------------------------------------------------------
# The web process only enqueues. `Q_CLUSTER_NAME=gpu manage.py qcluster` runs GPU jobs, one at a time, and
# `Q_CLUSTER_NAME=maintenance manage.py qcluster` runs CPU housekeeping schedules. django-q2 reads this dict
# once at import, so tests cannot change it with override_settings.

Q_GPU_CLUSTER = "gpu"
Q_MAINTENANCE_CLUSTER = "maintenance"

_task_timeout = FLASHVSR_TASK_TIMEOUT_SECONDS
# django-q2 delivers a message again when it is not acknowledged within `retry` seconds. With queue_limit 1 a
# message can wait behind one running job, so retry must exceed timeout * (queue_limit + 1). The atomic claim
# in the job stops any duplicate that still arrives.
_gpu_retry = _task_timeout * 2 + 600

Q_CLUSTER = {
    # `name` is the signing salt and stats prefix, shared by every cluster of this site.
    "name": "flashvsr",
    "workers": 1,
    "queue_limit": 1,
    "timeout": 3600,
    "retry": 3600 * 2 + 600,
    "max_attempts": 1,
    "ack_failures": True,
    "save_limit": 1000,
    "catch_up": False,
    "ALT_CLUSTERS": {
        Q_GPU_CLUSTER: {
            "workers": 1,
            "queue_limit": 1,
            "timeout": _task_timeout,
            "retry": _gpu_retry,
            "max_attempts": 1,
            "ack_failures": True,
            "scheduler": False,
        },
        Q_MAINTENANCE_CLUSTER: {
            "workers": 1,
            "queue_limit": 2,
            "timeout": 1800,
            "retry": 1800 * 3 + 600,
            "max_attempts": 1,
            "ack_failures": True,
            "catch_up": False,
            "scheduler": True,
        },
    },
}
if Q_BROKER == "redis":
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 1

# --- Logging ------------------------------------------------------------------------------------------------

LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
# "keyvalue" writes one `key=value` line per record to stdout (for journald or a log collector); "plain" is
# easier to read in a terminal. Both carry the task id of the request or job being handled.
LOG_FORMAT = env_choice("LOG_FORMAT", "keyvalue", ("keyvalue", "plain"))
LOGGING = build_logging_config(level=LOG_LEVEL, log_format=LOG_FORMAT)
