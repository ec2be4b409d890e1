"""Settings for Celery worker, beat and relay processes a delivery test starts: the child settings (the test's own
database) with a real broker chosen by the test (HM_BROKER_URL; HM_BROKER_DIR for the filesystem broker) and a
task queue of the test's own (HM_TASK_QUEUE), so concurrent test runs never take each other's tasks."""

import os

from tests.support.child_settings import *  # noqa: F403

CELERY_BROKER_URL = os.environ.get("HM_BROKER_URL", "memory://")
if CELERY_BROKER_URL == "filesystem://":
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": os.environ["HM_BROKER_DIR"], "data_folder_out": os.environ["HM_BROKER_DIR"], "control_folder": os.environ["HM_BROKER_DIR"],
        "store_processed": False,
    }
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("HM_TASK_QUEUE", "celery")
