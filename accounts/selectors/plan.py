"""Reads for the customer's plan page: a constant number of queries per page."""

from django.db.models import OuterRef, Sum

from accounts import quotas
from accounts.models import Customer, Domain, Mailbox, SendUsage
from accounts.selectors.reseller import subtotal


def customer_plan(customer: Customer) -> dict:
    """The plan page: every domain and mailbox with its own limits, and what the plan has left to split."""
    domains = list(Domain.objects.filter(customer=customer).annotate(
        allocated_mb=subtotal(Mailbox.objects.filter(domain=OuterRef("pk")), "domain", Sum("quota_mb"))
    ).order_by("name"))
    mailboxes = list(Mailbox.objects.filter(domain__customer=customer).select_related("domain"))
    allocated = sum(m.quota_mb for m in mailboxes)
    sent = quotas.usage(scope=SendUsage.Scope.CUSTOMER, scope_id=customer.pk)
    domain_sent = quotas.usage_many(scope=SendUsage.Scope.DOMAIN, scope_ids=[d.pk for d in domains])
    mailbox_sent = quotas.usage_many(scope=SendUsage.Scope.MAILBOX, scope_ids=[m.pk for m in mailboxes])
    for d in domains:
        d.sent = domain_sent[d.pk]
    for m in mailboxes:
        m.sent = mailbox_sent[m.pk]
    return {
        "customer": customer, "domains": domains, "mailboxes": mailboxes,
        "usage": {
            "storage_mb": {"used": allocated, "limit": customer.max_storage_mb},
            "domain_storage_mb": {"used": sum(d.max_storage_mb or 0 for d in domains), "limit": customer.max_storage_mb},
            "domains": {"used": len(domains), "limit": customer.max_domains},
            "mailboxes": {"used": len(mailboxes), "limit": customer.max_mailboxes},
            "hour": {"used": sent["hour"], "limit": customer.send_per_hour},
            "day": {"used": sent["day"], "limit": customer.send_per_day},
        },
    }
