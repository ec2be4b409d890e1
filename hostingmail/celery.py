import os
import signal
import sys
import time
from pathlib import Path

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_init
from django.apps import apps
from django.conf import settings
from django.db import connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hostingmail.settings")

app = Celery("hostingmail")
app.config_from_object("django.conf:settings", namespace="CELERY")


def packages_with_tasks() -> list[str]:
    """Every package of the project's own apps that holds a tasks.py (accounts, relay.delivery, relay.submission):
    a package gains tasks by having the module, with no list here to keep in step. Task names are given
    explicitly (`name=`), so a module that moves keeps its tasks' names."""
    project = Path(__file__).resolve().parent.parent
    packages = []
    for config in apps.get_app_configs():
        root = Path(config.path)
        if root.is_relative_to(project):
            packages += sorted(".".join((config.name, *found.parent.relative_to(root).parts))
                               for found in root.rglob("tasks.py"))
    return packages


app.autodiscover_tasks(packages_with_tasks)
app.conf.beat_schedule = {
    # A customer's DNS changes without telling us: notice removed or altered records, verify pending domains.
    "accounts-recheck-domains": {"task": "accounts.tasks.recheck_domains", "schedule": 3600.0},  # DNS_RECHECK_SECONDS
    # Dovecot keeps mailbox usage in dovecot_quota; the panel shows it from Mailbox.used_*.
    "accounts-import-dovecot-quota": {"task": "accounts.tasks.import_dovecot_quota", "schedule": 300.0},
    # Sending-quota minute buckets older than the rolling day, AUTH failures older than their window.
    "accounts-purge-old-usage": {"task": "accounts.quota_tasks.purge_old_usage", "schedule": 900.0},
    # Hourly sending totals for the charts, kept after the minute buckets above are purged.
    "accounts-rollup-send-usage": {"task": "accounts.history_tasks.rollup_send_usage", "schedule": 3600.0},
    # Greylisting triplets never retried, or not seen again for MX_GREYLIST_EXPIRE_DAYS.
    "relay-purge-greylist": {"task": "relay.inbound_tasks.purge_greylist", "schedule": 3600.0},
    "relay-purge-old-auth-failures": {"task": "relay.lockout_tasks.purge_old_auth_failures", "schedule": 900.0},
    # Panel sign-in failures older than the throttling window, listings of sessions that ended.
    "accounts-purge-stale-sign-ins": {"task": "accounts.security_tasks.purge_stale_sign_ins", "schedule": 3600.0},
    # The queue in the database is the truth: due retries, expired leases and lost tasks go back to the workers.
    "relay-sweep-queue": {"task": "relay.tasks.sweep_queue", "schedule": 60.0},  # DELIVERY_SWEEP_SECONDS, below
    "relay-send-delay-warnings": {"task": "relay.tasks.send_delay_warnings", "schedule": 600.0},
    "relay-purge-old-messages": {"task": "relay.tasks.purge_old_messages", "schedule": 3600.0},
    # Held spam: deleted after QUARANTINE_RETENTION_DAYS; each mailbox told once a day what is held for it.
    "relay-purge-quarantine": {"task": "relay.tasks.purge_quarantine", "schedule": 3600.0},
    "relay-send-quarantine-digests": {"task": "relay.tasks.send_quarantine_digests", "schedule": 86400.0},
    # The webhook outbox in the database is the truth: retries come due, and events whose notice was lost
    # (broker or worker down when they were written) are sent.
    "accounts-sweep-webhooks": {"task": "accounts.tasks.sweep_webhooks", "schedule": 60.0},
    # The webhook delivery log past WEBHOOK_RETENTION_DAYS (as the message log's purge), used sign-in links.
    "accounts-purge-old-webhooks": {"task": "accounts.tasks.purge_old_webhooks", "schedule": 3600.0},
}


@app.on_after_configure.connect
def _delivery_sweep_interval(sender, **kwargs):
    # Django's settings cannot be read while this module is imported (the settings import the package).
    sender.conf.beat_schedule["relay-sweep-queue"]["schedule"] = settings.DELIVERY_SWEEP_SECONDS
    sender.conf.beat_schedule["accounts-recheck-domains"]["schedule"] = float(settings.DNS_RECHECK_SECONDS)


# Celery's Django fix-up closes a thread's database connections before and after every task whatever CONN_MAX_AGE
# says, unless told to close them only every so many tasks: that would be a new PostgreSQL session (TCP and
# authentication) or a new SQLite connection for every delivery, more work than the delivery itself. Workers
# treat a task as Django treats a request instead (close_old_connections, below).
app.conf.update(CELERY_DB_REUSE_MAX=sys.maxsize // 4)


@worker_init.connect
def _keep_sqlite_connections(**kwargs):
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3" and not database.get("CONN_MAX_AGE"):
        # A file: nothing on the other side times out, and opening it again costs its PRAGMAs each time.
        database["CONN_MAX_AGE"] = None


@worker_process_init.connect
def _pool_process_ignores_group_sigterm(**kwargs):
    # SIGTERM sent to the worker's whole process group (systemd's default KillMode, Ctrl-C's sibling `kill -TERM
    # -pgid`) reaches the prefork pool's processes at the same moment as the main process. A pool process that
    # dies of it while it holds the shared task queue's read lock (an idle one waits for the next task holding it)
    # leaves that lock taken for ever, and the main process then hangs in the pool's finaliser at exit ("beat:
    # Shutting down..." is its last line). The main process alone decides: its warm shutdown lets every pool
    # process finish its task and exit, and the pool processes die with it in any case (Celery sets their
    # parent-death signal to SIGKILL).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


# A connection that finished a task this recently is taken as alive without CONN_HEALTH_CHECKS' round trip: under
# load tasks follow each other at once, and the check would be one statement in ten of a delivery on PostgreSQL.
# One idle for longer is checked first, so a restarted database costs no failed task.
ALIVE_WITHOUT_CHECK = 1.0


@task_prerun.connect
def _before_task(task=None, **kwargs):
    # Closed when unusable or older than CONN_MAX_AGE, as at the start of a request.
    if task is None or not task.request.is_eager:
        for connection in connections.all(initialized_only=True):
            connection.close_if_unusable_or_obsolete()
            if connection.connection is not None and \
                    time.monotonic() - getattr(connection, "task_finished_at", 0) < ALIVE_WITHOUT_CHECK:
                connection.health_check_done = True


@task_postrun.connect
def _after_task(task=None, **kwargs):
    # Closed when broken (an error in the task), left in a transaction or too old, as at the end of a request.
    if task is None or not task.request.is_eager:
        for connection in connections.all(initialized_only=True):
            connection.close_if_unusable_or_obsolete()
            connection.task_finished_at = time.monotonic()
