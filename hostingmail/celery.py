import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hostingmail.settings")

app = Celery("hostingmail")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.beat_schedule = {
    # A customer's DNS changes without telling us: notice removed or altered records, verify pending domains.
    "accounts-recheck-domains": {"task": "accounts.tasks.recheck_domains", "schedule": 3600.0},
    # Dovecot keeps mailbox usage in dovecot_quota; the panel shows it from Mailbox.used_*.
    "accounts-import-dovecot-quota": {"task": "accounts.tasks.import_dovecot_quota", "schedule": 300.0},
}
