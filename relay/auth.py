"""SMTP AUTH against the database: mailbox address + password, or credential username + secret.

An attempt is three steps, each synchronous and run off the event loop by the relay: `lookup` (database: lockout
and the account's current state), `verify` (Argon2, on the hashing threads), then `succeeded` or `failed`
(database: last use, or the failure count and delay). Every refusal looks the same to the client (535 5.7.8);
an unknown or unusable account still costs a hash, so timing does not tell either.

The account's state is read from the database at every AUTH, so a revocation or a suspension takes effect from
the next connection in every relay process. Only the result of the slow hash is remembered, per process: an
HMAC of a password that verified against a stored hash. A new password or secret means a new stored hash (new
salt), so a remembered result can never outlive the password it was for.
"""

import hashlib
import hmac
import ipaddress
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock

from django.utils import timezone

from accounts import hashing
from accounts.models import Domain, SmtpCredential, Status
from accounts.selectors import mailbox_by_address
from relay import lockout
from relay.policy import Principal


@dataclass(frozen=True)
class Candidate:
    """What the database says about a login name before the password is checked."""

    locked: bool = False
    stored_hash: str = ""  # empty: no such account, verify against the dummy hash
    principal: Principal | None = None  # None: the account exists but may not log in now


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


def _principal(*, kind: str, username: str, domain: Domain, credential=None, mailbox=None) -> Principal:
    customer = domain.customer
    return Principal(
        kind=kind, username=username, customer_id=customer.pk, customer_name=customer.name,
        domain_id=domain.pk, domain_name=domain.name, domain_can_send=domain.can_send,
        credential_id=credential.pk if credential else None, mailbox_id=mailbox.pk if mailbox else None,
        address=(mailbox.local_part, domain.name) if mailbox else None,
        max_recipients=customer.max_recipients, max_message_size=customer.max_message_size,
    )


def _mailbox_candidate(address: str) -> Candidate:
    mailbox = mailbox_by_address(address)
    if mailbox is None:
        return Candidate()
    usable = mailbox.is_active and mailbox.smtp_enabled and _tenant_active(mailbox.domain)
    principal = _principal(kind="mailbox", username=mailbox.address, domain=mailbox.domain, mailbox=mailbox)
    return Candidate(stored_hash=mailbox.password_hash, principal=principal if usable else None)


def _credential_candidate(username: str, client_ip: str) -> Candidate:
    credential = (SmtpCredential.objects
                  .select_related("domain", "domain__customer", "domain__customer__reseller", "mailbox")
                  .filter(username=username).first())
    if credential is None:
        return Candidate()
    usable = (
        credential.is_active and credential.revoked_at is None
        and (credential.expires_at is None or credential.expires_at > timezone.now())
        and _in_networks(client_ip, credential.allowed_networks)
        and (credential.mailbox is None or credential.mailbox.is_active)
        and _tenant_active(credential.domain)
    )
    mailbox = credential.mailbox
    if mailbox is not None:
        mailbox.domain = credential.domain
    principal = _principal(kind="credential", username=credential.username, domain=credential.domain,
                           credential=credential, mailbox=mailbox)
    return Candidate(stored_hash=credential.secret_hash, principal=principal if usable else None)


def lookup(*, username: str, client_ip: str) -> Candidate:
    """Database step: the lockout in force, and the account behind the name as it is right now."""
    if lockout.locked(client_ip=client_ip, username=username):
        return Candidate(locked=True)
    return _candidate(username, client_ip)


def _candidate(username: str, client_ip: str) -> Candidate:
    username = username.strip()
    if not username or len(username) > 320:
        return Candidate()
    if "@" in username:
        return _mailbox_candidate(username)
    return _credential_candidate(username, client_ip)


class VerifiedCache:
    """stored hash -> HMAC of the password that verified against it (bounded, least recently used out)."""

    def __init__(self, size: int = 10000):
        self.size = size
        self._key = secrets.token_bytes(32)
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = Lock()

    def _mac(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()

    def hit(self, stored_hash: str, password: str) -> bool:
        with self._lock:
            mac = self._items.get(stored_hash)
            if mac is None:
                return False
            self._items.move_to_end(stored_hash)
        return hmac.compare_digest(mac, self._mac(password))

    def remember(self, stored_hash: str, password: str) -> None:
        with self._lock:
            self._items[stored_hash] = self._mac(password)
            self._items.move_to_end(stored_hash)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


verified = VerifiedCache()


def verify(*, candidate: Candidate, password: str, valid_request: bool = True) -> bool:
    """Hashing step: True when the password is right and the account may log in now."""
    if candidate.locked:
        return False
    if not candidate.stored_hash or not password or not valid_request:
        hashing.check_dummy(password or "-")
        return False
    # Only an account that may log in answers early: a suspended one always costs the full hash, so its
    # refusal takes as long whether the password was right or not.
    if candidate.principal is not None and verified.hit(candidate.stored_hash, password):
        ok = True
    else:
        ok = hashing.check_hash(password, candidate.stored_hash)
        if ok:
            verified.remember(candidate.stored_hash, password)
    return ok and candidate.principal is not None


def succeeded(*, principal: Principal, client_ip: str) -> None:
    """Database step after a success: a credential's last use, shown in the panel."""
    if principal.credential_id is not None:
        SmtpCredential.objects.filter(pk=principal.credential_id).update(last_used_at=timezone.now(),
                                                                          last_used_ip=client_ip)


def failed(*, username: str, client_ip: str) -> LoginResult:
    """Database step after a failure: count it; the delay to answer after, and whether it locked out."""
    delay = lockout.record_failure(client_ip=client_ip, username=username)
    return LoginResult(locked=lockout.locked(client_ip=client_ip, username=username) is not None, delay=delay)


def authenticate(username: str, password: str, client_ip: str) -> Principal | None:
    """The principal if these credentials may log in now; no lockout bookkeeping (panel checks, tests)."""
    candidate = _candidate(username, client_ip)
    return candidate.principal if verify(candidate=candidate, password=password) else None


def check_login(*, username: str, password: str, client_ip: str, valid_request: bool = True) -> LoginResult:
    """All three steps in the calling thread (commands, tests); the relay runs them on separate pools."""
    candidate = lookup(username=username, client_ip=client_ip)
    if candidate.locked:
        return LoginResult(locked=True)
    if verify(candidate=candidate, password=password, valid_request=valid_request):
        succeeded(principal=candidate.principal, client_ip=client_ip)
        return LoginResult(principal=candidate.principal)
    return failed(username=username, client_ip=client_ip)
