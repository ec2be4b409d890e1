"""Every Celery task of accounts (scheduled in hostingmail/celery.py). Each takes ids and calls a service.

The names are explicit: they are what beat and the broker know the tasks by, kept as they were when the tasks
lived in modules of their own.
"""

from celery import shared_task

from accounts import quotas, sending_history, webhook_sender
from accounts.models import Domain
from accounts.services import api_keys, domains, login_links, mailboxes, security, webhooks


@shared_task(name="accounts.tasks.recheck_domains", ignore_result=True)
def recheck_domains() -> list[int]:
    """Fan out one re-check per domain: verified ones have their records checked, pending ones their proof."""
    ids = list(Domain.objects.exclude(status=Domain.DomainStatus.SUSPENDED).order_by("pk").values_list("pk", flat=True))
    for domain_id in ids:
        recheck_domain.delay(domain_id)
    return ids


@shared_task(name="accounts.tasks.recheck_domain", ignore_result=True)
def recheck_domain(domain_id: int) -> None:
    domain = Domain.objects.filter(pk=domain_id).first()
    if domain is None:  # deleted since it was queued
        return
    domains.domain_check_now(actor=None, domain=domain)


@shared_task(name="accounts.tasks.import_dovecot_quota", ignore_result=True)
def import_dovecot_quota() -> int:
    return mailboxes.mailboxes_import_dovecot_usage()


@shared_task(name="accounts.quota_tasks.purge_old_usage", ignore_result=True)
def purge_old_usage() -> int:
    return quotas.purge_old_usage()


@shared_task(name="accounts.security_tasks.purge_stale_sign_ins", ignore_result=True)
def purge_stale_sign_ins() -> dict[str, int]:
    return security.purge_stale()


@shared_task(name="accounts.history_tasks.rollup_send_usage", ignore_result=True)
def rollup_send_usage() -> int:
    return sending_history.rollup_send_usage()


@shared_task(name="accounts.tasks.deliver_webhooks", ignore_result=True)
def deliver_webhooks(delivery_ids: list[int]) -> None:
    webhook_sender.deliver_many(delivery_ids)


@shared_task(name="accounts.tasks.sweep_webhooks", ignore_result=True)
def sweep_webhooks() -> int:
    """Due retries, expired claims and deliveries whose notice was lost (broker or worker down) go out again."""
    ids = webhook_sender.due_ids()
    for start in range(0, len(ids), 20):
        deliver_webhooks.delay(ids[start:start + 20])
    return len(ids)


@shared_task(name="accounts.tasks.purge_old_webhooks", ignore_result=True)
def purge_old_webhooks() -> dict[str, int]:
    """The delivery log past WEBHOOK_RETENTION_DAYS, and the API's rows nothing reads any more: one-time sign-in
    links expired a day ago, Idempotency-Keys past API_IDEMPOTENCY_HOURS."""
    return {**webhooks.webhooks_purge_old(), "login_links": login_links.purge_used_login_links(),
            "idempotency_keys": api_keys.idempotency_keys_purge_old()}
