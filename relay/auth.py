"""SMTP AUTH against the database: mailbox address + password, or credential username + secret.

`check_login` is synchronous (ORM and Argon2): the relay runs it in a worker thread. Every refusal looks the
same to the client (535 5.7.8), and an unknown username costs a dummy hash so timing does not tell either.
Nothing verified is cached: each connection checks the database again, so a revocation or a suspension takes
effect from the next connection in every relay process.
"""

import ipaddress
from dataclasses import dataclass

from django.utils import timezone

from accounts import hashing
from accounts.models import Domain, Mailbox, SmtpCredential, Status
from accounts.selectors import mailbox_by_address
from relay import lockout
from relay.policy import Principal


@dataclass(frozen=True)
class LoginResult:
    principal: Principal | None = None
    locked: bool = False  # the client address or the username is locked out: answer 421 and disconnect
    delay: float = 0.0  # seconds to wait before answering a failure


def _tenant_active(domain: Domain) -> bool:
    customer = domain.customer
    if customer.status != Status.ACTIVE or domain.status == Domain.DomainStatus.SUSPENDED:
        return False
    return customer.reseller is None or customer.reseller.status == Status.ACTIVE


def _in_networks(client_ip: str, networks: str) -> bool:
    if not networks.strip():
        return True
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    for item in networks.split():
        try:
            if address in ipaddress.ip_network(item, strict=False):
                return True
        except ValueError:
            continue
    return False


def _principal(*, kind: str, username: str, domain: Domain, credential: SmtpCredential | None = None,
               mailbox: Mailbox | None = None) -> Principal:
    customer = domain.customer
    return Principal(
        kind=kind, username=username, customer_id=customer.pk, customer_name=customer.name,
        domain_id=domain.pk, domain_name=domain.name, domain_can_send=domain.can_send,
        credential_id=credential.pk if credential else None, mailbox_id=mailbox.pk if mailbox else None,
        address=(mailbox.local_part, domain.name) if mailbox else None,
        max_recipients=customer.max_recipients, max_message_size=customer.max_message_size,
    )


def _mailbox_login(address: str, password: str) -> Principal | None:
    mailbox = mailbox_by_address(address)
    if mailbox is None:
        hashing.check_dummy(password)
        return None
    if not hashing.check_hash(password, mailbox.password_hash):
        return None
    if not (mailbox.is_active and mailbox.smtp_enabled and _tenant_active(mailbox.domain)):
        return None
    return _principal(kind="mailbox", username=mailbox.address, domain=mailbox.domain, mailbox=mailbox)


def _credential_login(username: str, secret: str, client_ip: str) -> Principal | None:
    credential = (SmtpCredential.objects
                  .select_related("domain", "domain__customer", "domain__customer__reseller", "mailbox")
                  .filter(username=username).first())
    if credential is None:
        hashing.check_dummy(secret)
        return None
    if not hashing.check_hash(secret, credential.secret_hash):
        return None
    now = timezone.now()
    if not credential.is_active or credential.revoked_at is not None:
        return None
    if credential.expires_at is not None and credential.expires_at <= now:
        return None
    if not _in_networks(client_ip, credential.allowed_networks):
        return None
    if credential.mailbox is not None and not credential.mailbox.is_active:
        return None
    if not _tenant_active(credential.domain):
        return None
    SmtpCredential.objects.filter(pk=credential.pk).update(last_used_at=now, last_used_ip=client_ip)
    mailbox = credential.mailbox
    if mailbox is not None:
        mailbox.domain = credential.domain
    return _principal(kind="credential", username=credential.username, domain=credential.domain,
                      credential=credential, mailbox=mailbox)


def authenticate(username: str, password: str, client_ip: str) -> Principal | None:
    """The principal for these credentials, or None for any reason at all."""
    username = username.strip()
    if not username or not password or len(username) > 320:
        hashing.check_dummy(password or "-")
        return None
    if "@" in username:
        return _mailbox_login(username, password)
    return _credential_login(username, password, client_ip)


def check_login(*, username: str, password: str, client_ip: str, valid_request: bool = True) -> LoginResult:
    """One AUTH attempt: refuse a locked-out address/username, verify, and count a failure.

    valid_request False (e.g. a PLAIN authorization identity that differs from the login) fails like a wrong
    password, after the same dummy hash.
    """
    if lockout.locked(client_ip=client_ip, username=username):
        return LoginResult(locked=True)
    if valid_request:
        principal = authenticate(username, password, client_ip)
    else:
        hashing.check_dummy(password or "-")
        principal = None
    if principal is not None:
        return LoginResult(principal=principal)
    delay = lockout.record_failure(client_ip=client_ip, username=username)
    return LoginResult(locked=lockout.locked(client_ip=client_ip, username=username) is not None, delay=delay)
