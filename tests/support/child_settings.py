"""Settings for relay/worker processes a test starts: the test settings, on the very database of that test.

pytest-django renames the database for the test run (test_…, or the TEST NAME file for SQLite); the parent
passes the live connection settings in HM_TEST_DATABASE (JSON) so the child opens the same database.
"""

import json
import os

from tests.settings import *  # noqa: F403

if os.environ.get("HM_TEST_DATABASE"):
    DATABASES = {"default": json.loads(os.environ["HM_TEST_DATABASE"])}
