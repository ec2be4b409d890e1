"""Names as stored: domains lower-case IDNA A-labels, local parts lower-case ASCII.

IDNA is IDNA 2008 with the UTS #46 mapping (what browsers and mail clients use), through the idna package: an
A-label that does not decode to a valid U-label (xn--zz) is no domain name.
"""

import re
import unicodedata

import idna
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


def domain_to_ascii(name: str) -> str:
    """The lower-case IDNA A-label form of a domain name given in Unicode or ASCII; UnicodeError if it has none."""
    try:
        return idna.encode(name, uts46=True, transitional=False).decode("ascii").lower()
    except idna.IDNAError as error:  # IDNAError is a UnicodeError; say so for callers that catch ValueError
        raise UnicodeError(str(error)) from None


def domain_to_unicode(name: str) -> str:
    """The Unicode form of a stored A-label name, for people; the name as stored if it is not valid IDNA."""
    try:
        return idna.decode(name, uts46=True)
    except (idna.IDNAError, UnicodeError):
        return name


# Characters of other scripts (and a few Latin ones) that read as a Latin letter: a small part of Unicode's
# confusables (UTS #39), the letters that homograph attacks on domain names use.
_CONFUSABLE = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "с": "c", "ԁ": "d", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j", "к": "k",
    "ӏ": "l", "м": "m", "п": "n", "о": "o", "р": "p", "ԛ": "q", "г": "r", "ѕ": "s", "т": "t", "ц": "u", "ս": "u",
    "у": "y", "ү": "y", "х": "x", "ԝ": "w", "ѡ": "w", "ь": "b",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "γ": "y", "ω": "w", "ϲ": "c", "ϳ": "j",
    # Latin look-alikes and Armenian
    "ı": "i", "ɩ": "i", "ɑ": "a", "ɡ": "g", "ℓ": "l", "ɵ": "o", "ȷ": "j", "օ": "o", "ց": "g", "ո": "n", "ʏ": "y",
})


def domain_skeleton(name: str) -> str:
    """What a domain name looks like, for comparing names: letters of other scripts that read as Latin ones are
    replaced by them (UTS #39 skeleton, in part). Two names with one skeleton are confusable."""
    text = unicodedata.normalize("NFKC", domain_to_unicode(name)).lower().translate(_CONFUSABLE)
    return unicodedata.normalize("NFC", text)


def domain_search_term(text: str) -> str:
    """What to look for among stored names when someone types a domain (or part of one): "bücher.test" finds
    "xn--bcher-kva.test"; text without an IDNA form is searched as typed, lower-cased."""
    try:
        return domain_to_ascii(text)
    except UnicodeError:
        return text.lower()


def normalize_domain(name: str) -> str:
    """Lower-case A-label for a domain given in Unicode or ASCII; ValidationError with a reason otherwise."""
    name = (name or "").strip().rstrip(".")
    if not name:
        raise ValidationError(_("Enter a domain name."), code="required")
    try:
        ascii_name = domain_to_ascii(name)
    except UnicodeError:
        raise ValidationError(_("“%(name)s” is not a valid domain name.") % {"name": name}, code="invalid") from None
    labels = ascii_name.split(".")
    if len(labels) < 2 or len(ascii_name) > 253:
        raise ValidationError(_("“%(name)s” is not a valid domain name: it needs at least two labels, like "
                                "example.com.") % {"name": name}, code="invalid")
    if not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise ValidationError(_("“%(name)s” is not a valid domain name.") % {"name": name}, code="invalid")
    return ascii_name


def normalize_local_part(local: str) -> str:
    local = (local or "").strip().lower()
    if not local:
        raise ValidationError(_("Enter the part before the @."), code="required")
    if len(local) > 64:
        raise ValidationError(_("The part before the @ can be at most 64 characters."), code="too_long")
    if not _LOCAL.match(local):
        raise ValidationError(
            _("Use letters, digits and . _ - + only; no dot at the start or end, and no two dots in a row."),
            code="invalid",
        )
    return local


def split_address(address: str) -> tuple[str, str] | None:
    """(local part, A-label domain) of an address, or None when it is not a plain address."""
    address = (address or "").strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1]
    local, sep, domain = address.rpartition("@")
    if not sep:
        return None
    try:
        return normalize_local_part(local), normalize_domain(domain)
    except ValidationError:
        return None


def login_key(login: str | None) -> str:
    """The one spelling of a login name that every sign-in limit counts under: an address as the account lookup
    reads it (angle brackets and trailing dots dropped, lower case, IDNA A-label domain), any other name stripped
    and lower-cased. Counting the typed string let each new spelling of one account start a fresh count."""
    login = (login or "").strip()
    parts = split_address(login) if "@" in login else None
    if parts is not None:
        return f"{parts[0]}@{parts[1]}"
    return login.lower()[:320]
