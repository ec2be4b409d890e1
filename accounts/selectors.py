"""Reads, scoped by tenant. Every view reaches objects through these: what a user may not see does not exist."""

from django.db.models import QuerySet

from accounts.models import AuditEntry, Customer, Domain, Mailbox, Reseller, SmtpCredential, User
from accounts.normalize import split_address


def resellers_visible_to(user: User) -> QuerySet[Reseller]:
    if user.is_support:
        return Reseller.objects.all()
    if user.role == User.Role.RESELLER and user.reseller_id:
        return Reseller.objects.filter(pk=user.reseller_id)
    return Reseller.objects.none()


def customers_visible_to(user: User) -> QuerySet[Customer]:
    qs = Customer.objects.select_related("reseller")
    if user.is_support:
        return qs
    if user.role == User.Role.RESELLER and user.reseller_id:
        return qs.filter(reseller_id=user.reseller_id)
    if user.role == User.Role.CUSTOMER and user.customer_id:
        return qs.filter(pk=user.customer_id)
    return qs.none()


def domains_visible_to(user: User) -> QuerySet[Domain]:
    qs = Domain.objects.select_related("customer", "customer__reseller")
    if user.is_support:
        return qs
    if user.role == User.Role.RESELLER and user.reseller_id:
        return qs.filter(customer__reseller_id=user.reseller_id)
    if user.role == User.Role.CUSTOMER and user.customer_id:
        return qs.filter(customer_id=user.customer_id)
    return qs.none()


def mailboxes_visible_to(user: User) -> QuerySet[Mailbox]:
    qs = Mailbox.objects.select_related("domain", "domain__customer")
    if user.role == User.Role.MAILBOX:
        return qs.filter(pk=user.mailbox_id) if user.mailbox_id else qs.none()
    return qs.filter(domain__in=domains_visible_to(user))


def credentials_visible_to(user: User) -> QuerySet[SmtpCredential]:
    qs = SmtpCredential.objects.select_related("domain", "mailbox", "mailbox__domain", "customer")
    if user.role == User.Role.MAILBOX:
        return qs.filter(mailbox_id=user.mailbox_id) if user.mailbox_id else qs.none()
    return qs.filter(domain__in=domains_visible_to(user))


def audit_visible_to(user: User) -> QuerySet[AuditEntry]:
    qs = AuditEntry.objects.select_related("actor")
    if user.is_support:
        return qs
    if user.role == User.Role.RESELLER and user.reseller_id:
        return qs.filter(reseller_id=user.reseller_id)
    if user.role == User.Role.CUSTOMER and user.customer_id:
        return qs.filter(customer_id=user.customer_id)
    return qs.none()


def mailbox_by_address(address: str) -> Mailbox | None:
    """The mailbox at an address given in any form (Unicode or A-label domain, any case), or None."""
    parts = split_address(address)
    if parts is None:
        return None
    local, domain = parts
    return (
        Mailbox.objects.select_related("domain", "domain__customer", "domain__customer__reseller")
        .filter(local_part=local, domain__name=domain)
        .first()
    )


def customer_usage(customer: Customer) -> dict:
    """Plan usage for the progress bars: used and limit for domains, mailboxes and allocated storage."""
    from django.db.models import Sum

    mailboxes = Mailbox.objects.filter(domain__customer=customer)
    storage = mailboxes.aggregate(total=Sum("quota_mb"))["total"] or 0
    return {
        "domains": {"used": customer.domains.count(), "limit": customer.max_domains},
        "mailboxes": {"used": mailboxes.count(), "limit": customer.max_mailboxes},
        "storage_mb": {"used": storage, "limit": customer.max_storage_mb},
    }


def mailboxes_managed_by(user: User) -> QuerySet[Mailbox]:
    """Mailboxes the user may administer (edit, disable, delete): a mailbox owner sees theirs but manages none."""
    if user.role == User.Role.MAILBOX:
        return Mailbox.objects.none()
    return mailboxes_visible_to(user)


def customer_overview(customer: Customer) -> dict:
    """What the dashboard shows: the customer's domains, mailboxes and live credentials, and plan usage."""
    from django.db.models import Count

    domains = Domain.objects.filter(customer=customer).annotate(mailbox_count=Count("mailboxes")).order_by("name")
    mailboxes = Mailbox.objects.filter(domain__customer=customer).select_related("domain")
    credentials = (SmtpCredential.objects.filter(customer=customer, revoked_at__isnull=True)
                   .select_related("domain", "mailbox", "mailbox__domain"))
    return {"customer": customer, "domains": domains, "mailboxes": mailboxes, "credentials": credentials,
            "usage": customer_usage(customer)}
