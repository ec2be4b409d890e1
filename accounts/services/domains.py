"""Domains: adding one (with its DKIM key), verification, DNS checks stored, deletion."""

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts import dnscheck
from accounts.dkim_keys import encrypt_private_key
from accounts.models import Customer, Domain, User
from accounts.normalize import domain_skeleton, domain_to_ascii, domain_to_unicode, normalize_domain
from accounts.services.audit_log import audit, snapshot
from accounts.services.logins import logins_end
from accounts.services.routes import routes_changed
from accounts.services.webhooks import event_record


def domain_create(*, actor: User | None, customer: Customer, name: str, verified: bool = False,
                  client_ip: str | None = None) -> Domain:
    ascii_name = normalize_domain(name)
    with transaction.atomic():
        # Lock the customer row so two concurrent adds cannot both take the last slot of the plan.
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        if Domain.objects.filter(name=ascii_name).exists():
            raise ValidationError({"name": f"The domain {name.strip()} is already registered here."})
        _check_not_confusable(ascii_name, typed=name.strip())
        count = customer.domains.count()
        if count >= customer.max_domains:
            raise ValidationError({"name": f"Your plan allows {customer.max_domains} domains and all are in use."})
        domain = Domain(name=ascii_name, customer=customer, dkim_selector=settings.DKIM_SELECTOR)
        domain.dkim_private_key, domain.dkim_public_key = dkim_keypair()
        if verified:
            domain.verified_at = timezone.now()
            domain.status = Domain.DomainStatus.ACTIVE
        domain.save()
        audit(actor=actor, action="domain.create", obj=domain, after=snapshot(domain), client_ip=client_ip)
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
        raise ValidationError({"name": f"The domain {typed} can be mistaken for {domain_to_unicode(hosted[0])}, which "
                                       "is hosted here: a name that reads as another is refused."})


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
        raise ValidationError({"dmarc_reject_policy": "Choose refuse or deliver marked."})
    with transaction.atomic():
        domain = Domain.objects.select_for_update().get(pk=domain.pk)
        if domain.dmarc_reject_policy == policy:
            return domain
        before = {"dmarc_reject_policy": domain.dmarc_reject_policy}
        domain.dmarc_reject_policy = policy
        domain.save(update_fields=["dmarc_reject_policy"])
        routes_changed()
        audit(actor=actor, action="domain.dmarc_reject_policy", obj=domain, before=before,
              after={"dmarc_reject_policy": policy}, client_ip=client_ip)
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
    """Look for the ownership proof (verifying the domain when found), then check the records of a verified one."""
    if not domain.is_verified:
        proof = dnscheck.check_verification(domain)
        if proof["status"] != "found":
            # Kept so the page can say why (missing, another token, DNS error); no record checks before the proof.
            return domain_record_dns(actor=actor, domain=domain, dns_status={"verification": proof},
                                     client_ip=client_ip)
        domain = domain_mark_verified(actor=actor, domain=domain, client_ip=client_ip)
    return domain_record_dns(actor=actor, domain=domain, dns_status=dnscheck.check_records(domain), client_ip=client_ip)
