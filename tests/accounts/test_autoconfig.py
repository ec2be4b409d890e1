"""Machine-readable client setup: Thunderbird autoconfig, Outlook autodiscover, Apple configuration profiles."""

import plistlib
import xml.etree.ElementTree as ET

import pytest
from django.urls import reverse

from accounts.services.credentials import credential_create
from accounts.services.domains import domain_create
from tests.support.permissions import MANAGE, assert_matrix, mailbox_user

pytestmark = pytest.mark.django_db
OUTLOOK = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
REQUEST = """<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request><EMailAddress>{address}</EMailAddress>
  <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"""


def _servers(root, kind):
    return [{child.tag: child.text for child in server} for server in root.iter(kind)]


@pytest.mark.parametrize("path", ["/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml"])
def test_thunderbird_autoconfig_for_a_hosted_address(client, cast, settings, path):
    settings.RELAY_HOSTNAME, settings.IMAP_HOSTNAME = "smtp.provider.test", "imap.provider.test"
    settings.RELAY_PUBLIC_SUBMISSION_PORT, settings.RELAY_PUBLIC_SMTPS_PORT, settings.IMAP_PORT = 587, 465, 1993
    response = client.get(path, {"emailaddress": "Info@ALPHA.test"})
    assert response.status_code == 200 and response["Content-Type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    assert root.find("emailProvider").get("id") == "alpha.test" and root.findtext("emailProvider/domain") == "alpha.test"
    incoming = _servers(root, "incomingServer")
    assert incoming == [{"hostname": "imap.provider.test", "port": "1993", "socketType": "SSL",
                         "authentication": "password-cleartext", "username": "%EMAILADDRESS%"}]
    outgoing = _servers(root, "outgoingServer")
    assert [(s["hostname"], s["port"], s["socketType"]) for s in outgoing] == [
        ("smtp.provider.test", "465", "SSL"), ("smtp.provider.test", "587", "STARTTLS")]


def test_autoconfig_takes_the_domain_from_the_autoconfig_host(client, cast, settings):
    settings.ALLOWED_HOSTS = ["autoconfig.alpha.test"]
    response = client.get("/mail/config-v1.1.xml", HTTP_HOST="autoconfig.alpha.test")
    assert ET.fromstring(response.content).findtext("emailProvider/domain") == "alpha.test"


def test_autoconfig_answers_nothing_for_foreign_or_pending_domains(client, cast):
    domain_create(actor=None, customer=cast.a.customer, name="pending.test")
    for address in ("someone@example.org", "x@pending.test", "not-an-address", ""):
        assert client.get("/mail/config-v1.1.xml", {"emailaddress": address}).status_code == 404, address


def test_autoconfig_uses_the_resellers_brand(client, cast):
    cast.reseller_a.panel_title = "Alpha & Sons Mail"
    cast.reseller_a.save()
    root = ET.fromstring(client.get("/mail/config-v1.1.xml", {"emailaddress": "info@alpha.test"}).content)
    assert root.findtext("emailProvider/displayShortName") == "Alpha & Sons Mail"


@pytest.mark.parametrize("path", ["/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"])
def test_outlook_autodiscover_post(client, cast, settings, path):
    settings.RELAY_HOSTNAME, settings.RELAY_PUBLIC_SMTPS_PORT = "smtp.provider.test", 465
    client.enforce_csrf_checks = True  # Outlook sends no CSRF token
    response = client.post(path, REQUEST.format(address="info@alpha.test"), content_type="text/xml")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}Autodiscover"
    account = root.find(f"{OUTLOOK}Response/{OUTLOOK}Account")
    assert account.findtext(f"{OUTLOOK}AccountType") == "email" and account.findtext(f"{OUTLOOK}Action") == "settings"
    protocols = {p.findtext(f"{OUTLOOK}Type"): p for p in account.findall(f"{OUTLOOK}Protocol")}
    smtp = protocols["SMTP"]
    assert smtp.findtext(f"{OUTLOOK}Server") == "smtp.provider.test" and smtp.findtext(f"{OUTLOOK}Port") == "465"
    assert smtp.findtext(f"{OUTLOOK}SSL") == "on" and smtp.findtext(f"{OUTLOOK}LoginName") == "info@alpha.test"
    assert protocols["IMAP"].findtext(f"{OUTLOOK}Port") == "993"


def test_outlook_autodiscover_get_and_bad_requests(client, cast):
    response = client.get("/autodiscover/autodiscover.xml", {"emailaddress": "info@alpha.test"})
    assert response.status_code == 200 and ET.fromstring(response.content) is not None
    assert client.post("/autodiscover/autodiscover.xml", "<not xml", content_type="text/xml").status_code == 400
    bomb = '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'
    assert client.post("/autodiscover/autodiscover.xml", bomb, content_type="text/xml").status_code == 400
    unknown = REQUEST.format(address="who@example.org")
    assert client.post("/autodiscover/autodiscover.xml", unknown, content_type="text/xml").status_code == 404


def test_mailbox_mobileconfig_is_a_plist_profile_without_a_password(client, cast, settings):
    settings.RELAY_HOSTNAME, settings.RELAY_PUBLIC_SMTPS_PORT = "smtp.provider.test", 465
    client.force_login(cast.a.user)
    response = client.get(reverse("mailbox_mobileconfig", args=[cast.a.mailbox.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/x-apple-aspen-config"
    assert 'filename="info_at_alpha.test.mobileconfig"' in response["Content-Disposition"]
    profile = plistlib.loads(response.content)
    assert profile["PayloadType"] == "Configuration" and profile["PayloadVersion"] == 1
    account = profile["PayloadContent"][0]
    assert account["PayloadType"] == "com.apple.mail.managed" and account["EmailAddress"] == "info@alpha.test"
    assert account["OutgoingMailServerHostName"] == "smtp.provider.test"
    assert account["OutgoingMailServerPortNumber"] == 465 and account["OutgoingMailServerUseSSL"] is True
    assert account["OutgoingMailServerUsername"] == "info@alpha.test" and account["OutgoingPasswordSameAsIncomingPassword"]
    assert not any("Password" in key and key != "OutgoingPasswordSameAsIncomingPassword" for key in account)
    # The same profile again replaces the installed one: stable identifiers.
    again = plistlib.loads(client.get(reverse("mailbox_mobileconfig", args=[cast.a.mailbox.pk])).content)
    assert again["PayloadUUID"] == profile["PayloadUUID"]


def test_credential_mobileconfig_uses_the_credential_for_sending(client, cast):
    credential = credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox).credential
    client.force_login(cast.a.user)
    account = plistlib.loads(client.get(reverse("credential_mobileconfig", args=[credential.pk])).content)["PayloadContent"][0]
    assert account["OutgoingMailServerUsername"] == credential.username
    assert account["OutgoingPasswordSameAsIncomingPassword"] is False
    domain_wide = credential_create(actor=None, domain=cast.a.domain).credential
    assert client.get(reverse("credential_mobileconfig", args=[domain_wide.pk])).status_code == 404


def test_mobileconfig_permission_matrix(client, cast):
    credential = credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox).credential
    own = {**MANAGE, "mailbox_owner": 200}
    assert_matrix(client, cast, reverse("mailbox_mobileconfig", args=[cast.a.mailbox.pk]), own)
    assert_matrix(client, cast, reverse("credential_mobileconfig", args=[credential.pk]), own)


def test_mailbox_owner_gets_only_their_own_profile(client, cast):
    client.force_login(mailbox_user(cast.b.mailbox))
    assert client.get(reverse("mailbox_mobileconfig", args=[cast.a.mailbox.pk])).status_code == 404
    assert client.get(reverse("mailbox_mobileconfig", args=[cast.b.mailbox.pk])).status_code == 200


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_outlook_autodiscover_refuses_a_dtd_whatever_the_encoding(client, cast, encoding):
    # A byte search for "<!DOCTYPE" misses UTF-16; the parser itself must refuse DTDs and entities.
    declared = "utf-16" if encoding.startswith("utf-16") else "utf-32"
    text = (f'<?xml version="1.0" encoding="{declared}"?>'
            '<!DOCTYPE a [<!ENTITY who "info@alpha.test">]>'
            '<Autodiscover><Request><EMailAddress>&who;</EMailAddress></Request></Autodiscover>')
    body = text.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):
        body = ("\ufeff" + text).encode(encoding)
    response = client.post("/autodiscover/autodiscover.xml", body, content_type="text/xml")
    assert response.status_code == 400
    assert b"alpha" not in response.content


def test_outlook_autodiscover_reads_a_utf16_request(client, cast):
    body = REQUEST.replace("utf-8", "utf-16").format(address="info@alpha.test").encode("utf-16")
    response = client.post("/autodiscover/autodiscover.xml", body, content_type="text/xml")
    assert response.status_code == 200
