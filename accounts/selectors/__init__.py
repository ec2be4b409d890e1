"""Reads, scoped by tenant. Every view reaches objects through these: what a user may not see does not exist."""

from django.db.models import Count, Q, QuerySet, Sum

from accounts.models import (
    Alias, AuditEntry, Customer, Domain, Mailbox, Reseller, SmtpCredential, Status, User, WebhookDelivery,
    WebhookEndpoint,
)
from accounts.normalize import split_address


def resellers_visible_to(user: User) -> QuerySet[Reseller]:
    if user.is_support:
        return Reseller.objects.all()
    if user.role == User.Role.RESELLER and user.reseller_id:
        return Reseller.objects.filter(pk=user.reseller_id)
    return Reseller.objects.none()


def by_tenant(qs: QuerySet, user: User, *, reseller: str, customer: str) -> QuerySet:
    """The rows a user may see: support every row (no filter at all), a reseller admin those whose `reseller` lookup
    is their reseller, a customer user those whose `customer` lookup is their customer, anyone else none. The
    lookups end on indexed ids (joins on foreign keys, never an IN over a subquery the database runs per count)."""
    if user.is_support:
        return qs
    if user.role == User.Role.RESELLER and user.reseller_id:
        return qs.filter(**{reseller: user.reseller_id})
    if user.role == User.Role.CUSTOMER and user.customer_id:
        return qs.filter(**{customer: user.customer_id})
    return qs.none()


def customers_visible_to(user: User) -> QuerySet[Customer]:
    return by_tenant(Customer.objects.select_related("reseller"), user, reseller="reseller_id", customer="pk")


def domains_visible_to(user: User) -> QuerySet[Domain]:
    return by_tenant(Domain.objects.select_related("customer", "customer__reseller"), user,
                      reseller="customer__reseller_id", customer="customer_id")


def panel_users_visible_to(user: User) -> QuerySet[User]:
    """Customers' panel users (not mailbox owners, not staff) of the customers the user administers."""
    qs = User.objects.filter(role=User.Role.CUSTOMER, customer__isnull=False).select_related("customer")
    return by_tenant(qs, user, reseller="customer__reseller_id", customer="customer_id")


def mailboxes_visible_to(user: User) -> QuerySet[Mailbox]:
    qs = Mailbox.objects.select_related("domain", "domain__customer")
    if user.role == User.Role.MAILBOX:
        return qs.filter(pk=user.mailbox_id) if user.mailbox_id else qs.none()
    return by_tenant(qs, user, reseller="domain__customer__reseller_id", customer="domain__customer_id")


def credentials_visible_to(user: User) -> QuerySet[SmtpCredential]:
    qs = SmtpCredential.objects.select_related("domain", "mailbox", "mailbox__domain", "customer")
    if user.role == User.Role.MAILBOX:
        return qs.filter(mailbox_id=user.mailbox_id) if user.mailbox_id else qs.none()
    return by_tenant(qs, user, reseller="domain__customer__reseller_id", customer="domain__customer_id")


def aliases_visible_to(user: User) -> QuerySet[Alias]:
    """Aliases of the customers a user administers (a mailbox owner administers none)."""
    qs = Alias.objects.select_related("domain", "domain__customer")
    if user.role == User.Role.MAILBOX:
        return qs.none()
    return by_tenant(qs, user, reseller="domain__customer__reseller_id", customer="domain__customer_id")


def webhook_endpoints_visible_to(user: User) -> QuerySet[WebhookEndpoint]:
    """A customer's own endpoints; a reseller admin's: the reseller's and its customers'; support: all."""
    qs = WebhookEndpoint.objects.select_related("customer", "reseller")
    if user.is_support:
        return qs
    if user.role == User.Role.RESELLER and user.reseller_id:
        return qs.filter(Q(reseller_id=user.reseller_id) | Q(customer__reseller_id=user.reseller_id))
    if user.role == User.Role.CUSTOMER and user.customer_id:
        return qs.filter(customer_id=user.customer_id)
    return qs.none()


def webhook_deliveries_of(endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    """An endpoint's delivery log, newest first (the endpoint comes through webhook_endpoints_visible_to)."""
    return endpoint.deliveries.select_related("event").order_by("-created_at", "-id")


def with_mailbox_counts(domains: list[Domain]) -> list[Domain]:
    """Sets `mailbox_count` on each of a page's domains with one grouped query over those ids only."""
    counts = dict(Mailbox.objects.filter(domain_id__in=[d.pk for d in domains]).order_by()
                  .values_list("domain_id").annotate(n=Count("id")))
    for domain in domains:
        domain.mailbox_count = counts.get(domain.pk, 0)
    return domains


def users_managed_by(user: User) -> QuerySet[User]:
    """Panel users whose password this user may set: support any user, a reseller admin its customers' users."""
    qs = User.objects.select_related("customer", "reseller")
    if user.is_support:
        return qs
    if user.role == User.Role.RESELLER and user.reseller_id:
        return qs.filter(customer__reseller_id=user.reseller_id, role=User.Role.CUSTOMER)
    return qs.none()


def audit_visible_to(user: User) -> QuerySet[AuditEntry]:
    return by_tenant(AuditEntry.objects.select_related("actor"), user, reseller="reseller_id", customer="customer_id")


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
    domains = Domain.objects.filter(customer=customer).annotate(mailbox_count=Count("mailboxes")).order_by("name")
    mailboxes = Mailbox.objects.filter(domain__customer=customer).select_related("domain")
    credentials = (SmtpCredential.objects.filter(customer=customer, revoked_at__isnull=True)
                   .select_related("domain", "mailbox", "mailbox__domain"))
    return {"customer": customer, "domains": domains, "mailboxes": mailboxes, "credentials": credentials,
            "usage": customer_usage(customer)}


def may_sign_in(user: User) -> bool:
    """False for users whose customer, mailbox or mailbox's domain is suspended."""
    if not user.is_active:
        return False
    if user.customer_id and not Customer.objects.filter(pk=user.customer_id, status=Status.ACTIVE).exists():
        return False
    if user.mailbox_id:
        return Mailbox.objects.filter(pk=user.mailbox_id, is_active=True,
                                      domain__customer__status=Status.ACTIVE).exists()
    return True

