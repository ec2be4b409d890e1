"""Smart hosts: `smtp://user:pass@host:port?tls=starttls|none` or `smtps://user:pass@host:port`.

SMARTHOST_URL sends all mail through one host; a sender domain's `smarthost_url` (set by support) wins over it.
With a smart host the MX lookup is skipped.
"""

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

# tls: "starttls" (required), "none" (plain text) or "implicit" (smtps://, TLS from the first byte).
TLS_MODES = ("starttls", "none", "implicit")


class SmartHostError(ValueError):
    pass


@dataclass(frozen=True)
class SmartHost:
    host: str
    port: int
    tls: str = "starttls"
    username: str = ""
    password: str = ""
    verify: bool = True  # check the certificate against the host name

    def __repr__(self):  # never show the password in logs or tracebacks
        return f"SmartHost({self.host}:{self.port} tls={self.tls} user={self.username or '-'})"


def parse(url: str) -> SmartHost:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps"):
        raise SmartHostError(_("A smart host URL starts with smtp:// or smtps://, not %(scheme)s.") % {"scheme": parts.scheme or _("nothing")})
    if not parts.hostname:
        raise SmartHostError(_("The smart host URL names no host."))
    try:
        port = parts.port
    except ValueError:
        raise SmartHostError(_("The smart host port is not a number between 1 and 65535.")) from None
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"tls", "verify"}
    if unknown:
        raise SmartHostError(_("Unknown smart host option: %(options)s.") % {"options": ", ".join(sorted(unknown))})
    if parts.scheme == "smtps":
        if query.get("tls", "implicit") != "implicit":
            raise SmartHostError(_("smtps:// always uses implicit TLS; leave out tls=."))
        tls = "implicit"
    else:
        tls = query.get("tls", "starttls")
        if tls not in ("starttls", "none"):
            raise SmartHostError(_("tls= is starttls or none."))
    verify = query.get("verify", "yes")
    if verify not in ("yes", "no"):
        raise SmartHostError(_("verify= is yes or no."))
    username, password = unquote(parts.username or ""), unquote(parts.password or "")
    if username and tls == "none" and parts.hostname not in ("127.0.0.1", "::1", "localhost"):
        raise SmartHostError(_("Credentials are never sent to a smart host without TLS."))
    return SmartHost(host=parts.hostname, port=port or (465 if tls == "implicit" else 587), tls=tls,
                     username=username, password=password, verify=verify == "yes")


def for_domain(domain) -> SmartHost | None:
    """The smart host for mail from this sender domain (a Domain or None), or None for MX routing."""
    url = (getattr(domain, "smarthost_url", "") or settings.SMARTHOST_URL or "").strip()
    return parse(url) if url else None
