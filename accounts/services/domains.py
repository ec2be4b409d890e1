"""Domains: adding one (with its DKIM key), verification, DNS checks stored, deletion."""

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import dnscheck
from accounts.dkim_keys import encrypt_private_key
from accounts.models import Customer, Domain, User
from accounts.normalize import domain_skeleton, domain_to_ascii, domain_to_unicode, normalize_domain
from accounts.services.audit_log import audit, snapshot
from accounts.services.logins import logins_end
from accounts.services.routes import routes_changed
from accounts.services.webhooks import event_record
from accounts.services.workers import notify_after_commit

RECHECK_DOMAIN = "accounts.tasks.recheck_domain"


def domain_create(*, actor: User | None, customer: Customer, name: str, verified: bool = False,
                  client_ip: str | None = None) -> Domain:
    ascii_name = normalize_domain(name)
    with transaction.atomic():
        # Lock the customer row so two concurrent adds cannot both take the last slot of the plan.
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        if Domain.objects.filter(name=ascii_name).exists():
            raise ValidationError({"name": _("The domain %(name)s is already registered here.")
                                           % {"name": name.strip()}})
        _check_not_confusable(ascii_name, typed=name.strip())
        count = customer.domains.count()
        if count >= customer.max_domains:
            raise ValidationError({"name": _("Your plan allows %(count)s domains and all are in use.")
                                           % {"count": customer.max_domains}})
        domain = Domain(name=ascii_name, customer=customer, dkim_selector=settings.DKIM_SELECTOR)
        domain.dkim_private_key, domain.dkim_public_key = dkim_keypair()
        if verified:
            domain.verified_at = timezone.now()
            domain.status = Domain.DomainStatus.ACTIVE
        domain.save()
        audit(actor=actor, action="domain.create", obj=domain, after=snapshot(domain), client_ip=client_ip)
        # Checked at once, not at the next hourly re-check: mail is DKIM-signed from the check that finds the key,
        # and a proof published before adding verifies the domain. A broker that is down delays it to that re-check.
        notify_after_commit(RECHECK_DOMAIN, args=[domain.pk])
    return domain


def _check_not_confusable(ascii_name: str, *, typed: str) -> None:
    """Refuse a name that reads as another hosted domain (a homograph: Cyrillic "а" in "pаypal.test")."""
    skeleton = domain_skeleton(ascii_name)
    # Hosted names it may be mistaken for: the look-alike in plain letters, and internationalised names (only
    # those can hold letters of other scripts) with the same skeleton.
    try:
        plain = {domain_to_ascii(skeleton)} - {ascii_name}
    except UnicodeError:
        plain = set()
    hosted = list(Domain.objects.filter(name__in=plain).values_list("name", flat=True)[:1])
    if not hosted:
        hosted = [other for other in Domain.objects.filter(name__contains="xn--").exclude(name=ascii_name)
                  .values_list("name", flat=True).iterator() if domain_skeleton(other) == skeleton][:1]
    if hosted:
        raise ValidationError({"name": _("The domain %(name)s can be mistaken for %(other)s, which is hosted here: a "
                                         "name that reads as another is refused.")
                                       % {"name": typed, "other": domain_to_unicode(hosted[0])}})


def dkim_keypair(bits: int | None = None) -> tuple[str, str]:
    """(private key as stored: its PEM encrypted by accounts.dkim_keys, public key as the base64 DER the DKIM TXT
    record's p= carries)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits or settings.DKIM_KEY_BITS)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return encrypt_private_key(private_pem), base64.b64encode(public_der).decode()


def domain_mark_verified(*, actor: User | None, domain: Domain, client_ip: str | None = None) -> Domain:
    with transaction.atomic():
        domain = Domain.objects.select_for_update().get(pk=domain.pk)
        if domain.verified_at:
            return domain
        before = snapshot(domain)
        domain.verified_at = timezone.now()
        if domain.status == Domain.DomainStatus.PENDING:
            domain.status = Domain.DomainStatus.ACTIVE
        domain.save(update_fields=["verified_at", "status"])
        audit(actor=actor, action="domain.verify", obj=domain, before=before, after=snapshot(domain), client_ip=client_ip)
    return domain


def domain_set_dmarc_reject_policy(*, actor: User | None, domain: Domain, policy: str,
                                   client_ip: str | None = None) -> Domain:
    """"reject": the MX refuses mail for the domain that fails its sender's DMARC p=reject; "mark": delivers it
    marked as spam (for a domain whose correspondents' mail arrives through forwarders that break DMARC)."""
    if policy not in Domain.DmarcRejectPolicy.values:
        raise ValidationError({"dmarc_reject_policy": _("Choose refuse or deliver marked.")})
    return _set_inbound_setting(actor=actor, domain=domain, field="dmarc_reject_policy", value=policy,
                                client_ip=client_ip)


def domain_set_greylisting(*, actor: User | None, domain: Domain, enabled: bool,
                           client_ip: str | None = None) -> Domain:
    """Greylisting of new senders at the MX for this domain (relay.inbound.greylist)."""
    return _set_inbound_setting(actor=actor, domain=domain, field="greylisting", value=bool(enabled),
                                client_ip=client_ip)


def _set_inbound_setting(*, actor: User | None, domain: Domain, field: str, value, client_ip: str | None) -> Domain:
    with transaction.atomic():
        domain = Domain.objects.select_for_update().get(pk=domain.pk)
        if getattr(domain, field) == value:
            return domain
        before = {field: getattr(domain, field)}
        setattr(domain, field, value)
        domain.save(update_fields=[field])
        routes_changed()  # the MX remembers both (Accepted.dmarc_reject, .greylisting)
        audit(actor=actor, action=f"domain.{field}", obj=domain, before=before, after={field: value},
              client_ip=client_ip)
    return domain


def domain_delete(*, actor: User | None, domain: Domain, client_ip: str | None = None) -> None:
    with transaction.atomic():
        before = snapshot(domain)
        audit(actor=actor, action="domain.delete", obj=domain, before=before, client_ip=client_ip)
        logins_end(customer_ids=[domain.customer_id])
        routes_changed()
        domain.delete()


def _dns_statuses(dns_status: dict) -> dict:
    return {kind: (dns_status or {}).get(kind, {}).get("status") for kind in dnscheck.KINDS}


def domain_record_dns(*, actor: User | None, domain: Domain, dns_status: dict, client_ip: str | None = None) -> Domain:
    """Store a check's result; a change of any record's status goes to the audit log as domain.dns_changed."""
    with transaction.atomic():
        domain = Domain.objects.select_for_update().get(pk=domain.pk)
        before = _dns_statuses(domain.dns_status)
        domain.dns_status = dns_status
        domain.dns_checked_at = timezone.now()
        domain.save(update_fields=["dns_status", "dns_checked_at"])
        after = _dns_statuses(dns_status)
        if before != after:
            audit(actor=actor, action="domain.dns_changed", obj=domain, before=before, after=after,
                  client_ip=client_ip)
            event_record(type="domain.dns_changed", customer_id=domain.customer_id,
                         payload={"domain": {"id": domain.pk, "name": domain.unicode_name}, "before": before,
                                  "after": after})
    return domain


def domain_check_now(*, actor: User | None, domain: Domain, client_ip: str | None = None) -> Domain:
    """Look for the ownership proof of a pending domain (verifying it when found), then check the records: a
    pending domain's too, so its owner sees each record's state before the proof is in and edits the zone once."""
    proof = (domain.dns_status or {}).get("verification")
    if not domain.is_verified:
        proof = dnscheck.check_verification(domain)
        if proof["status"] == "error":
            # Kept so the page can say why; a DNS that cannot be asked would only fail every record check too.
            return domain_record_dns(actor=actor, domain=domain, dns_status={"verification": proof},
                                     client_ip=client_ip)
        if proof["status"] == "found":
            domain = domain_mark_verified(actor=actor, domain=domain, client_ip=client_ip)
    status = dnscheck.check_records(domain)
    if proof:
        status["verification"] = proof
    return domain_record_dns(actor=actor, domain=domain, dns_status=status, client_ip=client_ip)
