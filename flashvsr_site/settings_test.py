"""Settings for the test suite: the normal settings plus a fixed secret key and a fast password hasher.

The database still comes from DATABASE_URL, so the suite runs against PostgreSQL when it is set.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-any-deployment")

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
WHITENOISE_AUTOREFRESH = True  # serve straight from static/ without collectstatic
