"""Domain ownership proof and DNS health (MX, SPF, DKIM, DMARC), looked up for real with dnspython (reads only:
accounts.services.domains stores the results).

The ownership proof is a TXT record at ``_hostingmail.<domain>`` rather than at the domain itself: the apex
already carries the SPF record (and often other providers' tokens), and a name of its own can be removed after
verification without touching anything else.
"""

import dns.exception
import dns.resolver
from django.conf import settings

from accounts.models import Domain

VERIFICATION_LABEL = "_hostingmail"
KINDS = ("mx", "spf", "dkim", "dmarc")
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


def expected_records(domain: Domain) -> list[dict]:
    """What the customer publishes: kind, name, type, value (and the value as zone-file strings)."""
    records = [
        {"kind": "mx", "name": domain.name, "type": "MX", "value": f"10 {_mx_host()}."},
        {"kind": "spf", "name": domain.name, "type": "TXT", "value": f"v=spf1 include:{settings.SPF_INCLUDE} ~all"},
        {"kind": "dkim", "name": f"{domain.dkim_selector}._domainkey.{domain.name}", "type": "TXT",
         "value": _dkim_value(domain)},
        {"kind": "dmarc", "name": f"_dmarc.{domain.name}", "type": "TXT", "value": DMARC_SUGGESTION},
    ]
    for record in records:
        if record["type"] == "TXT":
            record["strings"] = split_txt(record["value"])
    return records


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


_CHECKS = {"mx": _check_mx, "spf": _check_spf, "dkim": _check_dkim, "dmarc": _check_dmarc}


def check_records(domain: Domain) -> dict:
    """{kind: {"status": found|missing|wrong|error, "expected": str, "found": [str], ("error": str)}}."""
    res = resolver()
    expected = {r["kind"]: r["value"] for r in expected_records(domain)}
    result = {}
    for kind in KINDS:
        try:
            status, found = _CHECKS[kind](domain, res)
            result[kind] = {"status": status, "expected": expected[kind], "found": found}
        except LookupFailed as exc:
            result[kind] = {"status": "error", "expected": expected[kind], "found": [], "error": str(exc)}
    return result


def records_to_publish(domain: Domain) -> dict:
    """The ownership proof and, once verified, the records to publish, each with its status as last checked
    ("unchecked" before any check): what the domain page and the API show."""
    name, value = verification_record(domain)
    records = []
    for record in expected_records(domain) if domain.is_verified else []:
        state = (domain.dns_status or {}).get(record["kind"], {})
        records.append({**record, "status": state.get("status", "unchecked"), "found": state.get("found", []),
                        "error": state.get("error", "")})
    proof = (domain.dns_status or {}).get("verification", {})
    verification = {"name": name, "type": "TXT", "value": value, "status": proof.get("status", "unchecked"),
                    "found": proof.get("found", []), "error": proof.get("error", "")}
    return {"verification": verification, "records": records}


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
