"""Client settings: a page per mailbox and per credential, and the machine-readable setups mail clients fetch.

Thunderbird autoconfig (config-v1.1.xml), Outlook autodiscover (POX, schema 2006a) and an Apple configuration
profile (.mobileconfig). None of them ever carries a password or secret.
"""

import plistlib
import uuid
import xml.etree.ElementTree as ET

from defusedxml import ElementTree as defused_et
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from accounts.context_processors import brand_for
from accounts.models import Domain
from accounts.normalize import split_address
from accounts.views.common import _get_credential_for_user, _get_mailbox_for_user

_AUTODISCOVER_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
_OUTLOOK_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
_MAX_AUTODISCOVER_BODY = 16 * 1024


def relay_settings() -> dict:
    return {
        "host": settings.RELAY_HOSTNAME,
        "submission_port": settings.RELAY_PUBLIC_SUBMISSION_PORT,
        "smtps_port": settings.RELAY_PUBLIC_SMTPS_PORT,
        "imap_host": settings.IMAP_HOSTNAME,
        "imap_port": settings.IMAP_PORT,
    }


# --- pages -------------------------------------------------------------------------------------------------


@login_required
def mailbox_settings(request, pk):
    mailbox = _get_mailbox_for_user(request, pk, manage=False)
    return render(request, "accounts/clients/settings.html", {
        "mailbox": mailbox, "domain": mailbox.domain, "address": mailbox.address, "username": mailbox.address,
        "relay": relay_settings(),
        "password_hint": _("the mailbox password"), "smtp_off": not mailbox.smtp_enabled,
    })


@login_required
def credential_settings(request, pk):
    credential = _get_credential_for_user(request, pk)
    return render(request, "accounts/clients/settings.html", {
        "credential": credential, "mailbox": credential.mailbox, "domain": credential.domain,
        "username": credential.username,
        "address": credential.mailbox.address if credential.mailbox_id else "",
        "relay": relay_settings(), "password_hint": _("the secret shown when the credential was created"),
    })


# --- Apple configuration profile ---------------------------------------------------------------------------


def _mobileconfig(*, address: str, display_name: str, smtp_username: str, title: str) -> bytes:
    relay = relay_settings()
    # Stable UUIDs: installing the profile again replaces the account instead of adding a second one.
    profile_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"hostingmail:{relay['host']}:{address}:{smtp_username}")
    account_uuid = uuid.uuid5(profile_uuid, "mail")
    identifier = ".".join(reversed(relay["host"].split("."))) + ".hostingmail"
    account = {
        "PayloadType": "com.apple.mail.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{identifier}.mail.{account_uuid}",
        "PayloadUUID": str(account_uuid).upper(),
        "PayloadDisplayName": address,
        "EmailAccountDescription": address,
        "EmailAccountName": display_name or address,
        "EmailAccountType": "EmailTypeIMAP",
        "EmailAddress": address,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "IncomingMailServerHostName": relay["imap_host"],
        "IncomingMailServerPortNumber": relay["imap_port"],
        "IncomingMailServerUseSSL": True,
        "IncomingMailServerUsername": address,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": relay["host"],
        "OutgoingMailServerPortNumber": relay["smtps_port"],
        "OutgoingMailServerUseSSL": True,
        "OutgoingMailServerUsername": smtp_username,
        "OutgoingPasswordSameAsIncomingPassword": smtp_username == address,
    }
    profile = {
        "PayloadContent": [account],
        "PayloadDisplayName": f"{title}: {address}",
        "PayloadDescription": _("Mail settings for %(address)s. You will be asked for the password.") % {
            "address": address},
        "PayloadIdentifier": f"{identifier}.{profile_uuid}",
        "PayloadOrganization": title,
        "PayloadRemovalDisallowed": False,
        "PayloadType": "Configuration",
        "PayloadUUID": str(profile_uuid).upper(),
        "PayloadVersion": 1,
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML)


def _profile_response(body: bytes, address: str) -> HttpResponse:
    response = HttpResponse(body, content_type="application/x-apple-aspen-config")
    filename = address.replace("@", "_at_").replace('"', "")
    response["Content-Disposition"] = f'attachment; filename="{filename}.mobileconfig"'
    return response


def _brand_title(mailbox) -> str:
    return brand_for(mailbox.domain.customer.reseller)["title"]


@login_required
def mailbox_mobileconfig(request, pk):
    mailbox = _get_mailbox_for_user(request, pk, manage=False)
    body = _mobileconfig(address=mailbox.address, display_name=mailbox.display_name, smtp_username=mailbox.address,
                         title=_brand_title(mailbox))
    return _profile_response(body, mailbox.address)


@login_required
def credential_mobileconfig(request, pk):
    credential = _get_credential_for_user(request, pk)
    if credential.mailbox is None:
        raise Http404("A domain-wide credential has no mailbox to set up")
    mailbox = credential.mailbox
    body = _mobileconfig(address=mailbox.address, display_name=mailbox.display_name,
                         smtp_username=credential.username, title=_brand_title(mailbox))
    return _profile_response(body, mailbox.address)


# --- Thunderbird autoconfig and Outlook autodiscover (public: mail clients ask before signing in) ------------


def _hosted_domain(address: str) -> tuple[str, Domain]:
    """(address, domain) for an address at a domain hosted here; 404 otherwise."""
    parts = split_address(address)
    if parts is None:
        raise Http404("Not an e-mail address")
    domain = Domain.objects.select_related("customer__reseller").filter(
        name=parts[1], status=Domain.DomainStatus.ACTIVE).first()
    if domain is None:
        raise Http404("Not a domain hosted here")
    return f"{parts[0]}@{parts[1]}", domain


def _xml_response(root: ET.Element) -> HttpResponse:
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return HttpResponse(body, content_type="application/xml; charset=utf-8")


def _sub(parent: ET.Element, tag: str, text=None, **attrs) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = str(text)
    return element


@require_GET
def autoconfig(request):
    """Thunderbird's config-v1.1.xml for ?emailaddress=; without it, for the autoconfig.<domain> host asked."""
    address = request.GET.get("emailaddress", "")
    if not address:
        host = request.get_host().split(":")[0].lower()
        address = "user@" + host.removeprefix("autoconfig.")
    address, domain = _hosted_domain(address)
    relay, title = relay_settings(), brand_for(domain.customer.reseller)["title"]
    root = ET.Element("clientConfig", version="1.1")
    provider = _sub(root, "emailProvider", id=domain.name)
    _sub(provider, "domain", domain.name)
    _sub(provider, "displayName", f"{title} ({domain.unicode_name})")
    _sub(provider, "displayShortName", title)
    incoming = _sub(provider, "incomingServer", type="imap")
    for tag, value in (("hostname", relay["imap_host"]), ("port", relay["imap_port"]), ("socketType", "SSL"),
                       ("authentication", "password-cleartext"), ("username", "%EMAILADDRESS%")):
        _sub(incoming, tag, value)
    for port, socket_type in ((relay["smtps_port"], "SSL"), (relay["submission_port"], "STARTTLS")):
        outgoing = _sub(provider, "outgoingServer", type="smtp")
        for tag, value in (("hostname", relay["host"]), ("port", port), ("socketType", socket_type),
                           ("authentication", "password-cleartext"), ("username", "%EMAILADDRESS%")):
            _sub(outgoing, tag, value)
    return _xml_response(root)


def _autodiscover_address(request) -> str:
    if request.method == "GET":
        return request.GET.get("emailaddress") or request.GET.get("Email") or ""
    body = request.body
    if len(body) > _MAX_AUTODISCOVER_BODY:
        raise ValueError("unacceptable request body")
    # The parser refuses any DTD (and so any entity) in whatever encoding the body declares: a byte search
    # for "<!DOCTYPE" misses UTF-16. DTDForbidden and the other defusedxml errors are ValueErrors.
    root = defused_et.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "EMailAddress" and element.text:
            return element.text.strip()
    raise ValueError("no EMailAddress in the request")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def autodiscover(request):
    """Outlook's POX autodiscover: the IMAP and SMTP settings for the EMailAddress in the request."""
    try:
        address = _autodiscover_address(request)
    except (ValueError, ET.ParseError):
        return HttpResponseBadRequest("Send an Autodiscover request with an EMailAddress.", content_type="text/plain")
    address, domain = _hosted_domain(address)
    relay = relay_settings()
    root = ET.Element("Autodiscover", xmlns=_AUTODISCOVER_RESPONSE)
    response = _sub(root, "Response", xmlns=_OUTLOOK_RESPONSE)
    account = _sub(response, "Account")
    _sub(account, "AccountType", "email")
    _sub(account, "Action", "settings")
    servers = (("IMAP", relay["imap_host"], relay["imap_port"]), ("SMTP", relay["host"], relay["smtps_port"]))
    for kind, host, port in servers:
        protocol = _sub(account, "Protocol")
        for tag, value in (("Type", kind), ("Server", host), ("Port", port), ("LoginName", address),
                           ("DomainRequired", "off"), ("SPA", "off"), ("SSL", "on"), ("AuthRequired", "on")):
            _sub(protocol, tag, value)
    return _xml_response(root)
