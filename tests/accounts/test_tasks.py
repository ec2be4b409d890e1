"""accounts/tasks.py: every task beat schedules is registered under the name the schedule and the broker use."""

from hostingmail.celery import app

# The names tasks had when they lived in modules of their own: queued messages and beat schedules carry them.
NAMES = {
    "accounts.tasks.recheck_domains", "accounts.tasks.recheck_domain", "accounts.tasks.import_dovecot_quota",
    "accounts.quota_tasks.purge_old_usage", "accounts.security_tasks.purge_stale_sign_ins",
    "accounts.history_tasks.rollup_send_usage",
    "accounts.tasks.deliver_webhooks", "accounts.tasks.sweep_webhooks", "accounts.tasks.purge_old_webhooks",
}


def test_every_accounts_task_keeps_its_name():
    app.loader.import_default_modules()
    assert {name for name in app.tasks if name.startswith("accounts.")} == NAMES


def test_every_scheduled_task_is_registered():
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert scheduled <= set(app.tasks), scheduled - set(app.tasks)
