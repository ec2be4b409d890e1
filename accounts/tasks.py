"""Periodic work on accounts: DNS re-checks of domains, and Dovecot's quota usage copied into the panel."""

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from accounts import dnscheck
from accounts.models import Domain, DovecotQuota, Mailbox


@shared_task(ignore_result=True)
def recheck_domains() -> list[int]:
    """Fan out one re-check per domain: verified ones have their records checked, pending ones their proof."""
    ids = list(Domain.objects.exclude(status=Domain.DomainStatus.SUSPENDED).order_by("pk").values_list("pk", flat=True))
    for domain_id in ids:
        recheck_domain.delay(domain_id)
    return ids


@shared_task(ignore_result=True)
def recheck_domain(domain_id: int) -> None:
    domain = Domain.objects.filter(pk=domain_id).first()
    if domain is None:  # deleted since it was queued
        return
    dnscheck.domain_check_now(actor=None, domain=domain)


@shared_task(ignore_result=True)
def import_dovecot_quota() -> int:
    """Copy Dovecot's quota dict rows (username = the mailbox address) into Mailbox.used_*; returns rows matched."""
    by_domain: dict[str, dict[str, DovecotQuota]] = {}
    for row in DovecotQuota.objects.all():
        local, _, domain = row.username.lower().rpartition("@")
        by_domain.setdefault(domain, {})[local] = row
    now = timezone.now()
    changed = []
    for domain, rows in by_domain.items():
        for mailbox in Mailbox.objects.filter(domain__name=domain, local_part__in=list(rows)).only("pk", "local_part"):
            row = rows[mailbox.local_part]
            mailbox.used_bytes = max(row.bytes, 0)
            mailbox.used_messages = max(row.messages, 0)
            mailbox.usage_updated_at = now
            changed.append(mailbox)
    with transaction.atomic():
        Mailbox.objects.bulk_update(changed, ["used_bytes", "used_messages", "usage_updated_at"], batch_size=500)
    return len(changed)
