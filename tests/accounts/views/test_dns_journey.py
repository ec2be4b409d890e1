"""The DNS journey: every record from the moment a domain is added, what "Check now" found in the colour it
deserves, the autoconfig names the client settings rely on, and DKIM signing from the first check."""

import html
import io
import xml.etree.ElementTree as ET
from datetime import timedelta
from types import SimpleNamespace
from unittest import mock

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts import dnscheck
from accounts.models import Domain
from accounts.services.domains import domain_check_now, domain_create
from accounts.tasks import recheck_domain
from relay.delivery import dkim
from tests.accounts.test_dnscheck import INCLUDE, MX, published, silent_dns  # noqa: F401
from tests.support.delivery import queue

pytestmark = pytest.mark.django_db

PANEL = "panel.example.net"


@pytest.fixture(autouse=True)
def _names(settings):
    settings.MAIL_MX_HOST = MX
    settings.SPF_INCLUDE = INCLUDE
    settings.AUTOCONFIG_HOST = PANEL
    settings.RELAY_HOSTNAME = "smtp.example.net"
    settings.IMAP_HOSTNAME = "imap.example.net"
    settings.RELAY_PUBLIC_SUBMISSION_PORT = 587
    settings.RELAY_PUBLIC_SMTPS_PORT = 465


def client_records(domain) -> dict:
    """dnsmasq options publishing the autoconfig CNAMEs and SRV records exactly as expected_records() asks."""
    wanted = {r["kind"]: r for r in dnscheck.expected_records(domain) if not r["required"]}
    raw = []
    for kind in ("srv-submissions", "srv-submission", "srv-imaps", "srv-autodiscover"):
        priority, weight, port, target = wanted[kind]["value"].split()
        raw.append(f"--srv-host={wanted[kind]['name']},{target.rstrip('.')},{port},{priority},{weight}")
    return {"cname": [f"autoconfig.{domain.name},{PANEL}", f"autodiscover.{domain.name},{PANEL}"],
            "host": [f"{PANEL},127.0.0.1"], "raw": raw}


def check_now(client, domain):
    response = client.post(reverse("domain_check", args=[domain.pk]))
    assert response.status_code == 302
    [message] = list(get_messages(response.wsgi_request))
    return message.level_tag, message.message


# --- "Check now" says what it found -------------------------------------------------------------------------


def test_check_now_with_every_record_missing_is_a_warning_naming_them(client, cast, dns_server):
    dns_server(txt=["unrelated.test,v=spf1 -all"], local=["test"])
    client.force_login(cast.a.user)
    level, text = check_now(client, cast.a.domain)
    assert level == "warning"
    assert "Not found: MX, SPF, DKIM, DMARC." in text and "checked." not in text


def test_check_now_with_some_records_wrong_names_those(client, cast, dns_server):
    dns_server(**published(cast.a.domain, spf=("txt", f"{cast.a.domain.name},v=spf1 include:elsewhere.example -all"),
                           dmarc=None))
    client.force_login(cast.a.user)
    level, text = check_now(client, cast.a.domain)
    assert level == "warning"
    assert "Not found: DMARC." in text and "Found but not what to publish: SPF." in text
    assert "MX" not in text and "DKIM" not in text


def test_check_now_with_every_record_found_is_a_success(client, cast, dns_server):
    records = published(cast.a.domain)
    extra = client_records(cast.a.domain)
    dns_server(**records, **extra)
    client.force_login(cast.a.user)
    level, text = check_now(client, cast.a.domain)
    assert level == "success"
    assert text == "All records mail needs are in place for alpha.test: MX, SPF, DKIM, DMARC."


def test_check_now_with_only_the_client_setup_records_missing_says_so_in_a_success(client, cast, dns_server):
    dns_server(**published(cast.a.domain))
    client.force_login(cast.a.user)
    level, text = check_now(client, cast.a.domain)
    assert level == "success"
    assert "Not published (optional, for automatic client setup): autoconfig, autodiscover" in text


def test_check_now_that_cannot_ask_the_dns_is_an_error(client, cast, silent_dns):  # noqa: F811
    client.force_login(cast.a.user)
    level, text = check_now(client, cast.a.domain)
    assert level == "error" and text.startswith("The DNS could not be asked for MX")


def test_check_now_of_a_pending_domain_without_its_proof_is_a_warning(client, cast, dns_server):
    domain = domain_create(actor=None, customer=cast.a.customer, name="new.test")
    dns_server(**published(domain, mx=None))
    client.force_login(cast.a.user)
    level, text = check_now(client, domain)
    assert level == "warning"
    assert text.startswith("The ownership TXT record was not found yet.") and "Not found: MX." in text
    domain.refresh_from_db()
    assert domain.dns_status["spf"]["status"] == "found", "records are checked before the proof is in"


# --- every record from the start ----------------------------------------------------------------------------


def test_a_new_domain_shows_every_record_with_host_in_full_and_short_and_copy_buttons(client, cast):
    domain = domain_create(actor=None, customer=cast.a.customer, name="new.test")
    client.force_login(cast.a.user)
    response = client.get(reverse("domain_detail", args=[domain.pk]))
    body = html.unescape(response.content.decode())
    kinds = ["verification", "mx", "spf", "dkim", "dmarc", "autoconfig", "autodiscover", "srv-submissions",
             "srv-submission", "srv-imaps", "srv-autodiscover"]
    for kind in kinds:
        assert f'id="record-{kind}"' in body
        assert f'data-copy="#{kind}-value"' in body and f'data-copy="#{kind}-host"' in body
    rows = {r["kind"]: r for r in response.context["records"]}
    assert rows["dkim"]["short_name"] == f"{domain.dkim_selector}._domainkey"
    assert rows["mx"]["short_name"] == "@" and rows["dmarc"]["short_name"] == "_dmarc"
    assert rows["srv-submission"]["short_name"] == "_submission._tcp"
    assert f'<span class="mono" id="dkim-host">{domain.dkim_selector}._domainkey</span>' in body
    assert f"{domain.dkim_selector}._domainkey.new.test</div>" in body
    zone = response.context["zone_lines"].splitlines()
    assert zone[0] == f'_hostingmail.new.test. IN TXT "{dnscheck.verification_record(domain)[1]}"'
    assert "autoconfig.new.test. IN CNAME panel.example.net." in zone
    assert "_submission._tcp.new.test. IN SRV 0 1 587 smtp.example.net." in zone
    assert 'data-copy="#zone-lines"' in body and "Copy all as zone lines" in body


def test_the_page_says_when_the_background_check_comes_next(client, cast, settings):
    settings.DNS_RECHECK_SECONDS = 3600
    domain = cast.a.domain
    Domain.objects.filter(pk=domain.pk).update(dns_checked_at=timezone.now() - timedelta(minutes=20))
    domain.refresh_from_db()
    client.force_login(cast.a.user)
    body = client.get(reverse("domain_detail", args=[domain.pk])).content.decode()
    due = timezone.localtime(domain.dns_checked_at + timedelta(hours=1))
    assert "We re-check these records in the background" in body
    assert f"the next check is by {due:%Y-%m-%d %H:%M}" in body


def test_the_autoconfig_records_point_where_the_client_settings_are_served(client, cast):
    """The SRV records name the servers and ports the autoconfig document hands out, the CNAMEs the panel that
    serves it."""
    domain = cast.a.domain
    root = ET.fromstring(client.get(reverse("autoconfig"), {"emailaddress": f"x@{domain.name}"}).content)
    served = {(s.get("type"), s.findtext("socketType")): (s.findtext("hostname"), s.findtext("port"))
              for s in root.iter() if s.tag in ("incomingServer", "outgoingServer")}
    records = {r["kind"]: r["value"] for r in dnscheck.expected_records(domain)}
    for kind, key in (("srv-submissions", ("smtp", "SSL")), ("srv-submission", ("smtp", "STARTTLS")),
                      ("srv-imaps", ("imap", "SSL"))):
        host, port = served[key]
        assert records[kind] == f"0 1 {port} {host}."
    assert records["autoconfig"] == records["autodiscover"] == f"{PANEL}."
    assert records["srv-autodiscover"] == f"0 1 443 {PANEL}."


def test_published_autoconfig_records_are_found_and_others_are_wrong(cast, dns_server):
    domain = cast.a.domain
    extra = client_records(domain)
    extra["raw"][0] = extra["raw"][0].replace(",465,", ",2465,")
    dns_server(**extra)
    result = dnscheck.check_records(domain)
    assert {kind: result[kind]["status"] for kind in dnscheck.CLIENT_KINDS} == {
        "autoconfig": "found", "autodiscover": "found", "srv-submissions": "wrong", "srv-submission": "found",
        "srv-imaps": "found", "srv-autodiscover": "found"}
    assert result["srv-submissions"]["found"] == ["0 1 2465 smtp.example.net."]


# --- DKIM-signed from the first check -----------------------------------------------------------------------


def _message_from(domain, customer):
    tenant = SimpleNamespace(customer=customer, domain=domain, mailbox=None)
    return queue(tenant, "bob@b.test", mail_from=f"news@{domain.name}")


def test_domain_add_verified_is_checked_at_once_and_then_signs(cast, dns_server, django_capture_on_commit_callbacks):
    with mock.patch("accounts.services.workers.current_app.send_task") as send_task, \
            django_capture_on_commit_callbacks(execute=True):
        call_command("domain_add", cast.a.customer.name, "fresh.test", "--verified", stdout=io.StringIO())
    domain = Domain.objects.get(name="fresh.test")
    send_task.assert_called_once_with("accounts.tasks.recheck_domain", args=[domain.pk])
    message = _message_from(domain, cast.a.customer)
    assert dkim.sign_message(message) is False, "no check has seen the key yet"

    dns_server(**published(domain))
    recheck_domain(*send_task.call_args.kwargs["args"])
    domain.refresh_from_db()
    message.refresh_from_db()
    assert dnscheck.dkim_signs(domain)
    assert dkim.sign_message(message) is True and bytes(message.content).startswith(b"DKIM-Signature:")


def test_a_domain_added_in_the_panel_is_checked_at_once_and_verified_when_its_proof_is_there(
        client, cast, dns_server, django_capture_on_commit_callbacks):
    client.force_login(cast.a.user)
    with mock.patch("accounts.services.workers.current_app.send_task") as send_task, \
            django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("domain_add"), {"name": "early.test"})
    assert response.status_code == 302
    domain = Domain.objects.get(name="early.test")
    name, value = dnscheck.verification_record(domain)
    records = published(domain)
    records["txt"].append(f"{name},{value}")
    dns_server(**records)
    recheck_domain(*send_task.call_args.kwargs["args"])
    domain.refresh_from_db()
    assert domain.is_verified and dnscheck.dkim_signs(domain)
    assert dkim.sign_message(_message_from(domain, cast.a.customer)) is True
    body = client.get(reverse("domain_detail", args=[domain.pk])).content.decode()
    assert "DKIM signing" in body and "Mail from this domain is DKIM-signed" in body


def test_adding_a_domain_with_the_broker_down_still_works(client, cast, django_capture_on_commit_callbacks):
    client.force_login(cast.a.user)
    with mock.patch("accounts.services.workers.current_app.send_task", side_effect=OSError("connection refused")), \
            django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("domain_add"), {"name": "offline.test"}, follow=True)
    assert response.status_code == 200 and Domain.objects.filter(name="offline.test").exists()
    assert "offline.test was added" in response.content.decode()


def test_the_domain_page_says_why_mail_is_not_signed_yet(client, cast, dns_server):
    domain = cast.a.domain
    client.force_login(cast.a.user)
    body = client.get(reverse("domain_detail", args=[domain.pk])).content.decode()
    assert "DKIM not signing" in body and "has not been checked yet" in body
    dns_server(**published(domain, dkim=None))
    domain_check_now(actor=None, domain=domain)
    body = client.get(reverse("domain_detail", args=[domain.pk])).content.decode()
    assert "DKIM not signing" in body and "was not found at the last check" in body


def test_the_client_settings_promise_automatic_setup_only_with_the_records(client, cast):
    client.force_login(cast.a.user)
    body = client.get(reverse("mailbox_settings", args=[cast.a.mailbox.pk])).content.decode()
    assert "once alpha.test publishes its autoconfig and SRV records" in body
    assert f'href="{reverse("domain_detail", args=[cast.a.domain.pk])}#dns"' in body
