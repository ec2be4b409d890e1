"""Spam and virus checking of an inbound message at the end of DATA, before the commit: rspamd's normal worker
over its HTTP protocol (POST /checkv2), then the recipients' customers' allow and block lists and thresholds
(accounts.spam_models).

The policy read runs on the MX's database threads, the HTTP request on a plain thread (a slow rspamd must not hold
a database thread), the decision anywhere: `check_message` strings the three together for the MX's handler.

One reply and one copy serve every recipient of a transaction, so the strictest of their verdicts applies (as for
DMARC in relay.smtpd.mx): a customer who wants its own treatment of a sender gets it in its own transactions, which
is how senders' MTAs split recipients of different domains anyway.
"""

import asyncio
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import getaddresses
from functools import partial

import urllib3
from django.conf import settings
from django.db import DatabaseError

from accounts.models import Domain, SenderRule, SpamPolicy
from relay.inbound.rules import Accepted, header_block

log = logging.getLogger("relay.inbound")

# What the MX does with the message, mildest first: the strictest of the recipients' verdicts applies.
INBOX, JUNK, QUARANTINE, TEMPFAIL, REJECT = "inbox", "junk", "quarantine", "tempfail", "reject"
_SEVERITY = {INBOX: 0, JUNK: 1, QUARANTINE: 2, TEMPFAIL: 3, REJECT: 4}
NOT_SCANNED = "not scanned"
ALLOWED = "allow list"
BLOCKED = "block list"

# RFC 3463 5.7.1 "delivery not authorized, message refused"; 4.7.1 the same, temporarily (the sender retries).
REJECT_SPAM = "550 5.7.1 Message rejected as spam"
REJECT_BLOCKED = "550 5.7.1 Message rejected: the sender is blocked by the recipient"
TEMPFAIL_SPAM = "451 4.7.1 Message deferred by the spam filter, please try again later"
TEMPFAIL_UNSCANNED = "451 4.7.1 Spam filter unavailable, please try again later"
TEMPFAIL_POLICY = "451 4.3.0 Temporary lookup failure, please try again later"

# Fields that only we set: one arriving from outside could claim a verdict we never gave.
_OWN_FIELDS = re.compile(rb"^(x-spam-flag|x-spam-score|x-spam-status)[ \t]*:.*(\r\n[ \t].*)*\r\n", re.I | re.M)


@dataclass(frozen=True)
class Thresholds:
    mark: float | None = None
    reject: float | None = None
    quarantine: bool = False
    rule: str = ""  # allow, block or ''


@dataclass
class Scan:
    """rspamd's answer (action None: not scanned)."""

    action: str | None
    score: float | None = None
    required: float | None = None
    symbols: dict[str, float] = field(default_factory=dict)
    error: str = ""


@dataclass
class SpamVerdict:
    outcome: str  # INBOX, JUNK, QUARANTINE, TEMPFAIL or REJECT
    action: str  # rspamd's action, NOT_SCANNED, ALLOWED or BLOCKED: the message log's "spam" column
    score: float | None = None
    symbols: dict[str, float] = field(default_factory=dict)
    reply: str = ""  # for TEMPFAIL and REJECT
    headers: str = ""  # added above the content

    @property
    def marked(self) -> bool:
        return self.outcome in (JUNK, QUARANTINE)


def enabled() -> bool:
    return bool(settings.RSPAMD_URL)


def _bound(value: float | None, low: float, high: float) -> float | None:
    return None if value is None else min(max(value, low), high)


def sender_keys(mail_from: str, content: bytes) -> list[str]:
    """The envelope sender and the From: addresses, each as itself and as its domain, lower-case."""
    headers = header_block(content).decode("utf-8", "replace")
    values = re.findall(r"^from[ \t]*:(.*(?:\r\n[ \t].*)*)", headers, re.I | re.M)
    addresses = [mail_from] + [a for _, a in getaddresses([v.replace("\r\n", "") for v in values])]
    keys = []
    for address in addresses:
        address = address.strip().lower()
        if "@" in address:
            keys += [address, address.rpartition("@")[2]]
    return list(dict.fromkeys(keys))


def load_policies(recipients: list[Accepted], senders: list[str]) -> dict[str, Thresholds]:
    """Each recipient address's thresholds and sender rule (runs on a database thread)."""
    # The policy of an address is its domain's customer's (whoever's mailboxes an alias leads to).
    domain_names = {a.address: a.address.rpartition("@")[2] for a in recipients}
    domains = {name: (pk, customer_id) for name, pk, customer_id in Domain.objects.filter(
        name__in=set(domain_names.values())).values_list("name", "pk", "customer_id")}
    domain_ids = {name: pk for name, (pk, _) in domains.items()}
    customers = {address: domains[name][1] for address, name in domain_names.items() if name in domains}
    rows = SpamPolicy.objects.filter(customer_id__in=set(customers.values()), domain__isnull=True)
    by_customer = {p.customer_id: p for p in rows}
    by_domain = {p.domain_id: p for p in SpamPolicy.objects.filter(domain_id__in=set(domain_ids.values()))}
    rules: dict[int, dict[str, str]] = {}
    for customer_id, kind, value in SenderRule.objects.filter(
            customer_id__in=set(customers.values()), value__in=senders).values_list("customer_id", "kind", "value"):
        rules.setdefault(customer_id, {})[value] = kind
    policies = {}
    for accepted in recipients:
        customer_id = customers.get(accepted.address)
        own = by_customer.get(customer_id)
        domain = by_domain.get(domain_ids.get(domain_names[accepted.address]))
        low = own.min_score if own and own.min_score is not None else settings.SPAM_SCORE_MIN
        high = own.max_score if own and own.max_score is not None else settings.SPAM_SCORE_MAX
        mark = next((p.mark_score for p in (domain, own) if p and p.mark_score is not None), None)
        reject = next((p.reject_score for p in (domain, own) if p and p.reject_score is not None), None)
        matched = rules.get(customer_id, {})
        # The most precise rule wins (an address over its domain); at the same precision, block over allow.
        by_address = [matched[key] for key in senders if key in matched and "@" in key]
        level = by_address or [matched[key] for key in senders if key in matched]
        rule = SenderRule.Kind.BLOCK if SenderRule.Kind.BLOCK in level else (level[0] if level else "")
        policies[accepted.address] = Thresholds(mark=_bound(mark, low, high), reject=_bound(reject, low, high),
                                                quarantine=bool(domain and domain.quarantine), rule=rule)
    return policies


# Scans wait on rspamd, not on the interpreter: threads of their own, as many as the sessions that usually end
# their DATA together, so that a scan never queues behind others (asyncio's default pool has cores + 4 threads:
# bench/mx.py --rspamd measured 300 ms of queueing per message with it at 20 sessions).
SCAN_THREADS = 32
_scanners = ThreadPoolExecutor(max_workers=SCAN_THREADS, thread_name_prefix="relay-rspamd")
_pool = urllib3.PoolManager(maxsize=SCAN_THREADS, retries=False)


def scan(content: bytes, *, mail_from: str, recipients: list[str], client_ip: str, helo: str) -> Scan:
    """rspamd's verdict on the message; Scan(action=None) when rspamd is down, slow or answers nonsense."""
    # No Hostname header: the MX does not look the client's address up, and rspamd does it itself when not told;
    # no User header either (that is for authenticated submission, never port 25).
    headers = urllib3.HTTPHeaderDict({"IP": client_ip or "", "Helo": helo or "", "From": mail_from or "<>",
                                      "Content-Length": str(len(content))})
    for address in recipients:
        headers.add("Rcpt", address)
    if len(recipients) == 1:
        headers["Deliver-To"] = recipients[0]
    try:
        response = _pool.request("POST", settings.RSPAMD_URL.rstrip("/") + "/checkv2", body=content,
                                 headers=headers, timeout=urllib3.Timeout(total=settings.RSPAMD_TIMEOUT))
        if response.status != 200:
            return Scan(action=None, error=f"HTTP {response.status}")
        answer = json.loads(response.data)
        symbols = {name: float(s.get("score", 0)) for name, s in (answer.get("symbols") or {}).items()}
        return Scan(action=str(answer["action"]), score=float(answer["score"]),
                    required=float(answer.get("required_score") or 0), symbols=symbols)
    except (urllib3.exceptions.HTTPError, ValueError, KeyError, TypeError, AttributeError) as error:
        return Scan(action=None, error=type(error).__name__)


def learn(content: bytes, *, kind: str) -> str:
    """Teach rspamd's controller that a message is ham or spam (POST /learnham, /learnspam); '' when it learned,
    else why not (RSPAMD_PASSWORD goes in the Password header and nowhere else)."""
    if not settings.RSPAMD_CONTROLLER_URL:
        return "no rspamd controller is configured"
    try:
        response = _pool.request("POST", f"{settings.RSPAMD_CONTROLLER_URL.rstrip('/')}/learn{kind}", body=content,
                                 headers={"Password": settings.RSPAMD_PASSWORD},
                                 timeout=urllib3.Timeout(total=settings.RSPAMD_TIMEOUT))
    except urllib3.exceptions.HTTPError as error:
        return f"rspamd did not answer ({type(error).__name__})"
    if response.status in (200, 208):  # 208: learned as this kind already
        return ""
    if response.status == 204:
        return "rspamd skipped it (too short to learn from, or learned already)"
    try:
        reason = str(json.loads(response.data).get("error", ""))[:200]
    except (ValueError, AttributeError):
        reason = ""
    return f"rspamd refused it (HTTP {response.status}{': ' + reason if reason else ''})"


def _outcome(result: Scan, policy: Thresholds) -> str:
    if policy.rule == SenderRule.Kind.BLOCK:
        return REJECT
    if policy.rule == SenderRule.Kind.ALLOW or result.action is None:
        return INBOX
    score = result.score or 0.0
    rejected = score >= policy.reject if policy.reject is not None else result.action == "reject"
    if rejected:
        return QUARANTINE if policy.quarantine else REJECT
    if result.action in ("soft reject", "greylist"):
        return TEMPFAIL
    if policy.mark is not None:
        return JUNK if score >= policy.mark else INBOX
    return JUNK if result.action in ("add header", "rewrite subject", "reject") else INBOX


def decide(result: Scan, policies: dict[str, Thresholds]) -> SpamVerdict:
    rules = {p.rule for p in policies.values()}
    if result.action is None and rules != {SenderRule.Kind.ALLOW}:
        if rules == {SenderRule.Kind.BLOCK}:
            return SpamVerdict(outcome=REJECT, action=BLOCKED, reply=REJECT_BLOCKED)
        if settings.RSPAMD_FAIL == "tempfail":
            return SpamVerdict(outcome=TEMPFAIL, action=NOT_SCANNED, reply=TEMPFAIL_UNSCANNED)
        return SpamVerdict(outcome=INBOX, action=NOT_SCANNED,
                           headers=f"X-Spam-Status: Unknown, not scanned ({result.error or 'no answer'})\r\n")
    outcomes = [_outcome(result, p) for p in policies.values()] or [INBOX]
    outcome = max(outcomes, key=_SEVERITY.__getitem__)
    if rules == {SenderRule.Kind.ALLOW}:
        action = ALLOWED
    elif outcome == REJECT and SenderRule.Kind.BLOCK in rules:
        return SpamVerdict(outcome=REJECT, action=BLOCKED, score=result.score, symbols=result.symbols,
                           reply=REJECT_BLOCKED)
    else:
        action = result.action or NOT_SCANNED
    verdict = SpamVerdict(outcome=outcome, action=action, score=result.score, symbols=result.symbols)
    if outcome == REJECT:
        verdict.reply = REJECT_SPAM
    elif outcome == TEMPFAIL:
        verdict.reply = TEMPFAIL_SPAM
    elif result.score is not None:
        flag = "Yes" if verdict.marked else "No"
        verdict.headers = (("X-Spam-Flag: YES\r\n" if verdict.marked else "")
                           + f"X-Spam-Score: {result.score:.2f}\r\n"
                           + f"X-Spam-Status: {flag}, score={result.score:.2f} action={action}\r\n")
    else:
        verdict.headers = f"X-Spam-Status: No, sender on the allow list\r\n"
    return verdict


def strip_own_fields(content: bytes) -> bytes:
    head = header_block(content)
    return _OWN_FIELDS.sub(b"", head) + content[len(head):]


async def check_message(db, content: bytes, *, mail_from: str, recipients: list[Accepted], client_ip: str,
                        helo: str) -> SpamVerdict | None:
    """The spam verdict on one message (None: spam checking is off); `db` runs the policy read on the MX's database
    threads."""
    if not enabled():
        return None
    senders = sender_keys(mail_from, content)
    try:
        policies = await db(load_policies, recipients, senders)
    except DatabaseError as error:
        log.warning("the spam policies of a message from %s could not be read: %s", client_ip, type(error).__name__)
        return SpamVerdict(outcome=TEMPFAIL, action=NOT_SCANNED, reply=TEMPFAIL_POLICY)
    if policies and all(p.rule for p in policies.values()) and len({p.rule for p in policies.values()}) == 1:
        result = Scan(action=None)  # every recipient allows or blocks this sender: rspamd is not asked
    else:
        # Without the sender's own X-Spam fields (stripped again when it is stored): rspamd scores a forged
        # "X-Spam-Flag: YES" as spam.
        result = await asyncio.get_running_loop().run_in_executor(_scanners, partial(
            scan, strip_own_fields(content), mail_from=mail_from, recipients=[a.address for a in recipients],
            client_ip=client_ip, helo=helo))
        if result.action is None:
            log.warning("rspamd did not check a message from %s: %s", client_ip, result.error)
    return decide(result, policies)
