"""Domain ownership proof and DNS health (MX, SPF, DKIM, DMARC, and the names mail clients set themselves up from),
looked up for real with dnspython (reads only: accounts.services.domains stores the results).

The ownership proof is a TXT record at ``_hostingmail.<domain>`` rather than at the domain itself: the apex
already carries the SPF record (and often other providers' tokens), and a name of its own can be removed after
verification without touching anything else.
"""

from datetime import datetime, timedelta

import dns.exception
import dns.resolver
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from accounts.models import Domain

VERIFICATION_LABEL = "_hostingmail"
KINDS = ("mx", "spf", "dkim", "dmarc")
# The names Thunderbird (autoconfig), Outlook (autodiscover) and RFC 6186/8314 clients (SRV) look up to set
# themselves up: checked and shown like the others, but mail flows without them.
CLIENT_KINDS = ("autoconfig", "autodiscover", "srv-submissions", "srv-submission", "srv-imaps", "srv-autodiscover")
# The labels stay English in what the API and dns_check give; the domain page translates them when it shows them.
LABELS = {"verification": gettext_noop("ownership"), "mx": "MX", "spf": "SPF", "dkim": "DKIM", "dmarc": "DMARC",
          "autoconfig": "autoconfig", "autodiscover": "autodiscover", "srv-submissions": "SMTP (SSL/TLS) SRV",
          "srv-submission": "SMTP (STARTTLS) SRV", "srv-imaps": "IMAP SRV", "srv-autodiscover": "autodiscover SRV"}
DMARC_SUGGESTION = "v=DMARC1; p=quarantine; adkim=r; aspf=r"
# A TXT character-string holds at most 255 octets (RFC 1035 3.3); longer values are published as several.
TXT_CHUNK = 255


class LookupFailed(Exception):
    """The DNS could not say yes or no (timeout, SERVFAIL, refused): not the same as a missing record."""


def resolver() -> dns.resolver.Resolver:
    """The resolver for verification, record checks and MX routing, as configured by DNS_* settings."""
    nameservers = list(settings.DNS_NAMESERVERS)
    res = dns.resolver.Resolver(configure=not nameservers)
    if nameservers:
        res.nameservers = nameservers
    res.port = settings.DNS_PORT
    res.timeout = settings.DNS_TIMEOUT
    res.lifetime = settings.DNS_TIMEOUT
    res.cache = None
    return res


def lookup(name: str, rdtype: str, *, res: dns.resolver.Resolver | None = None) -> list:
    """The records of one type at a name; [] when the name or the type does not exist; LookupFailed otherwise."""
    try:
        return list((res or resolver()).resolve(name, rdtype, search=False))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.Timeout:
        raise LookupFailed(f"No answer from the DNS for {name} {rdtype} within {settings.DNS_TIMEOUT:g} s.") from None
    except (dns.resolver.NoNameservers, dns.exception.DNSException, OSError) as exc:
        raise LookupFailed(f"The DNS lookup of {name} {rdtype} failed: {exc}") from None


def txt_values(name: str, *, res: dns.resolver.Resolver | None = None) -> list[str]:
    # One TXT record may be several character-strings; SPF, DKIM and DMARC read them concatenated (RFC 7208 3.3,
    # RFC 6376 3.6.2.2).
    return [b"".join(r.strings).decode("utf-8", "replace") for r in lookup(name, "TXT", res=res)]


def split_txt(value: str) -> list[str]:
    """A TXT value cut into the character-strings a zone file needs (each at most 255 octets)."""
    return [value[i:i + TXT_CHUNK] for i in range(0, len(value), TXT_CHUNK)] or [""]


def verification_record(domain: Domain) -> tuple[str, str]:
    return f"{VERIFICATION_LABEL}.{domain.name}", settings.VERIFICATION_TXT_PREFIX + domain.verification_token


def _mx_host() -> str:
    return settings.MAIL_MX_HOST.rstrip(".").lower()


def _dkim_value(domain: Domain) -> str:
    return f"v=DKIM1; k=rsa; p={domain.dkim_public_key}"


def _host(name: str) -> str:
    return name.rstrip(".").lower()


def _client_records(domain: Domain) -> list[dict]:
    """What clients.autoconfig and clients.autodiscover answer to (on the panel's AUTOCONFIG_HOST), and the SRV
    records for the servers they hand out: submission over implicit TLS and STARTTLS (RFC 8314 5.1, RFC 6186),
    IMAP over implicit TLS, and Outlook's autodiscover SRV."""
    panel, relay, imap = _host(settings.AUTOCONFIG_HOST), _host(settings.RELAY_HOSTNAME), _host(settings.IMAP_HOSTNAME)
    name = domain.name
    return [
        {"kind": "autoconfig", "name": f"autoconfig.{name}", "type": "CNAME", "value": f"{panel}."},
        {"kind": "autodiscover", "name": f"autodiscover.{name}", "type": "CNAME", "value": f"{panel}."},
        {"kind": "srv-submissions", "name": f"_submissions._tcp.{name}", "type": "SRV",
         "value": f"0 1 {settings.RELAY_PUBLIC_SMTPS_PORT} {relay}."},
        {"kind": "srv-submission", "name": f"_submission._tcp.{name}", "type": "SRV",
         "value": f"0 1 {settings.RELAY_PUBLIC_SUBMISSION_PORT} {relay}."},
        {"kind": "srv-imaps", "name": f"_imaps._tcp.{name}", "type": "SRV",
         "value": f"0 1 {settings.IMAP_PORT} {imap}."},
        {"kind": "srv-autodiscover", "name": f"_autodiscover._tcp.{name}", "type": "SRV", "value": f"0 1 443 {panel}."},
    ]


def short_name(name: str, domain: Domain) -> str:
    """The host as most DNS providers' forms ask for it: relative to the zone, "@" for the zone itself."""
    if name == domain.name:
        return "@"
    return name.removesuffix("." + domain.name)


def expected_records(domain: Domain) -> list[dict]:
    """What the customer publishes: kind, name (and its short form), type, value (and the value as zone-file
    strings), whether mail needs it (`required`) and the zone-file line."""
    records = [
        {"kind": "mx", "name": domain.name, "type": "MX", "value": f"10 {_mx_host()}."},
        {"kind": "spf", "name": domain.name, "type": "TXT", "value": f"v=spf1 include:{settings.SPF_INCLUDE} ~all"},
        {"kind": "dkim", "name": f"{domain.dkim_selector}._domainkey.{domain.name}", "type": "TXT",
         "value": _dkim_value(domain)},
        {"kind": "dmarc", "name": f"_dmarc.{domain.name}", "type": "TXT", "value": DMARC_SUGGESTION},
    ]
    for record in records:
        record["required"] = True
    records += [{**record, "required": False} for record in _client_records(domain)]
    for record in records:
        if record["type"] == "TXT":
            record["strings"] = split_txt(record["value"])
        _describe(record, domain)
    return records


def _describe(record: dict, domain: Domain) -> None:
    record["label"] = LABELS[record["kind"]]
    record["short_name"] = short_name(record["name"], domain)
    value = record["value"]
    if record["type"] == "TXT":
        value = " ".join(f'"{chunk}"' for chunk in split_txt(value))
    record["zone_line"] = f'{record["name"]}. IN {record["type"]} {value}'


def _tags(value: str) -> dict[str, str]:
    """Tag=value pairs of a DKIM or DMARC record (RFC 6376 3.2), whitespace removed from the values."""
    tags = {}
    for part in value.split(";"):
        key, sep, val = part.partition("=")
        if sep:
            tags[key.strip().lower()] = "".join(val.split())
    return tags


def _check_mx(domain: Domain, res) -> tuple[str, list[str]]:
    records = lookup(domain.name, "MX", res=res)
    found = [f"{r.preference} {r.exchange.to_text()}" for r in records]
    if not records:
        return "missing", found
    ours = any(r.exchange.to_text().rstrip(".").lower() == _mx_host() for r in records)
    return ("found" if ours else "wrong"), found


def _check_spf(domain: Domain, res) -> tuple[str, list[str]]:
    found = [v for v in txt_values(domain.name, res=res) if v.lower().split(" ", 1)[0] == "v=spf1"]
    if not found:
        return "missing", found
    wanted = {f"include:{settings.SPF_INCLUDE}".lower(), f"redirect={settings.SPF_INCLUDE}".lower()}
    # Two SPF records are a permanent error for every receiver (RFC 7208 4.5): as wrong as a missing include.
    ok = len(found) == 1 and any(term.lower() in wanted for term in found[0].split())
    return ("found" if ok else "wrong"), found


def _check_dkim(domain: Domain, res) -> tuple[str, list[str]]:
    found = txt_values(f"{domain.dkim_selector}._domainkey.{domain.name}", res=res)
    if not found:
        return "missing", found
    ours = "".join(domain.dkim_public_key.split())
    ok = any(_tags(v).get("p") == ours and _tags(v).get("k", "rsa") == "rsa" for v in found)
    return ("found" if ok else "wrong"), found


def _check_dmarc(domain: Domain, res) -> tuple[str, list[str]]:
    found = [v for v in txt_values(f"_dmarc.{domain.name}", res=res) if v.replace(" ", "").upper().startswith("V=DMARC1")]
    if not found:
        return "missing", found
    # More than one DMARC record means none applies (RFC 7489 6.6.3); p= is required.
    ok = len(found) == 1 and _tags(found[0]).get("p", "").lower() in {"none", "quarantine", "reject"}
    return ("found" if ok else "wrong"), found


def _check_exact(record: dict, res) -> tuple[str, list[str]]:
    """A CNAME or SRV record: found when one of the answers is the one expected (names compared without case)."""
    found = [r.to_text() for r in lookup(record["name"], record["type"], res=res)]
    if not found:
        return "missing", found
    ok = any(value.lower() == record["value"].lower() for value in found)
    return ("found" if ok else "wrong"), found


_CHECKS = {"mx": _check_mx, "spf": _check_spf, "dkim": _check_dkim, "dmarc": _check_dmarc}


def check_records(domain: Domain) -> dict:
    """{kind: {"status": found|missing|wrong|error, "expected": str, "found": [str], ("error": str)}}."""
    res = resolver()
    wanted = {r["kind"]: r for r in expected_records(domain)}
    expected = {kind: record["value"] for kind, record in wanted.items()}
    result = {}
    for kind in (*KINDS, *CLIENT_KINDS):
        try:
            if kind in _CHECKS:
                status, found = _CHECKS[kind](domain, res)
            else:
                status, found = _check_exact(wanted[kind], res)
            result[kind] = {"status": status, "expected": expected[kind], "found": found}
        except LookupFailed as exc:
            result[kind] = {"status": "error", "expected": expected[kind], "found": [], "error": str(exc)}
    return result


def records_to_publish(domain: Domain) -> dict:
    """The ownership proof and every record to publish, from the moment the domain is added (so the zone is edited
    once), each with its status as last checked ("unchecked" before any check): what the domain page, the API and
    dns_check show. A verified domain's proof is no longer looked up: it keeps the status it was verified with."""
    name, value = verification_record(domain)
    records = []
    for record in expected_records(domain):
        state = (domain.dns_status or {}).get(record["kind"], {})
        records.append({**record, "status": state.get("status", "unchecked"), "found": state.get("found", []),
                        "error": state.get("error", "")})
    proof = (domain.dns_status or {}).get("verification", {})
    verification = {"kind": "verification", "name": name, "type": "TXT", "value": value,
                    "status": "found" if domain.is_verified else proof.get("status", "unchecked"),
                    "found": proof.get("found", []), "error": proof.get("error", ""), "required": True,
                    "strings": split_txt(value)}
    _describe(verification, domain)
    return {"verification": verification, "records": records, "dkim": dkim_state(domain)}


def dkim_signs(domain: Domain | None) -> bool:
    """Whether outgoing mail from the domain is DKIM-signed: it has a key and the last check found its record
    published (a signature whose key receivers cannot find would only fail). The worker's signing decision."""
    if domain is None or not domain.dkim_private_key or not domain.dkim_selector:
        return False
    return ((domain.dns_status or {}).get("dkim") or {}).get("status") == "found"


_DKIM_WHY = {"missing": gettext_noop("its DKIM record was not found at the last check"),
             "wrong": gettext_noop("the DKIM record found is not this domain's key"),
             "error": gettext_noop("the DNS could not be asked at the last check"),
             "unchecked": gettext_noop("its DKIM record has not been checked yet")}


def dkim_state(domain: Domain, *, localized: bool = False) -> dict:
    """What the domain page says about signing: {"signing": bool, "text": str}. The text is English (the API's
    and dns_check's) unless localized: then it is in the active language, for the panel."""
    tr = gettext if localized else str
    if dkim_signs(domain):
        return {"signing": True, "text": tr(gettext_noop("Mail from this domain is DKIM-signed: its DKIM record was "
                                                          "found."))}
    status = ((domain.dns_status or {}).get("dkim") or {}).get("status", "unchecked")
    why = _DKIM_WHY.get(status, gettext_noop("its DKIM record is not confirmed"))
    text = tr(gettext_noop("Mail from this domain is not DKIM-signed yet: %(why)s. It is signed from the first check "
                           "that finds the record."))
    return {"signing": False, "text": text % {"why": tr(why)}}


def check_verification(domain: Domain) -> dict:
    """The ownership proof as a record status: found, missing, wrong (another token of ours) or error."""
    name, value = verification_record(domain)
    try:
        found = txt_values(name)
    except LookupFailed as exc:
        return {"status": "error", "expected": value, "found": [], "error": str(exc)}
    if value in found:
        status = "found"
    elif any(v.startswith(settings.VERIFICATION_TXT_PREFIX) for v in found):
        status = "wrong"
    else:
        status = "missing"
    return {"status": status, "expected": value, "found": found}


def next_check(domain: Domain, *, now: datetime | None = None) -> datetime:
    """When the background re-check (beat, every DNS_RECHECK_SECONDS) looks at the domain again at the latest."""
    now = now or timezone.now()
    due = (domain.dns_checked_at or domain.created_at) + timedelta(seconds=settings.DNS_RECHECK_SECONDS)
    return max(due, now)
