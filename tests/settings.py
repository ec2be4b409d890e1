"""Test settings: the real settings, with cheap hashes and an on-disk SQLite test database.

Relay and worker processes started by tests inherit DJANGO_SETTINGS_MODULE and DATABASE_URL, so they see the
same database as the test that started them.
"""

from hostingmail.settings import *  # noqa: F403
from hostingmail.settings import DATABASES, VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MAIL_HASH_TIME_COST = 1
MAIL_HASH_MEMORY_KIB = 1024
DKIM_KEY_BITS = 1024
# Tasks are queued on an in-process broker nobody consumes: tests call delivery functions directly or start real
# worker processes, so an accepted message never wanders off to the network by itself.
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_URL = "memory://"
DELIVERY_ALLOW_PRIVATE = True
WEBHOOK_ALLOW_PRIVATE = True
RELAY_HOSTNAME = "relay.test"

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["NAME"] = str(VAR_DIR / "test-run.sqlite3")
    # A file, not memory, so relay processes started by a test open the same database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

VAR_DIR.mkdir(parents=True, exist_ok=True)
