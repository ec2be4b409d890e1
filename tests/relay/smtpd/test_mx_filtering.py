"""The MX's optional filters at RCPT: DNS blocklists of the client (a list served by dnsmasq) and greylisting
per domain (451, then the retry passes), with their exact replies; both off by default."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Domain
from relay.models import GreylistEntry, QueuedMessage
from relay.inbound.greylist import purge_expired
from tests.support.inbound import mta_client
from tests.support.smtp import send

pytestmark = pytest.mark.django_db(transaction=True)

SENDER = "someone@sender.example"
DATA = f"From: {SENDER}\r\nTo: info@alpha.test\r\nSubject: hello\r\n\r\nHi.\r\n".encode()


def transaction_from(mx, source: str = "127.0.0.1", recipient: str = "info@alpha.test") -> list[tuple[int, bytes]]:
    with mta_client(mx.port, source=source) as client:
        return send(client, sender=SENDER, recipients=[recipient], data=DATA)


def rcpt_reply(mx, *, source: str = "127.0.0.1") -> tuple[int, str]:
    with mta_client(mx.port, source=source) as client:
        assert client.docmd("MAIL", f"FROM:<{SENDER}>")[0] == 250
        code, text = client.docmd("RCPT", "TO:<info@alpha.test>")
        return code, text.decode()


@pytest.fixture
def listed_mx(mx_factory, cast, dns_server, settings):
    # bl.test lists 127.0.0.2 (RFC 5782 2.1: the reversed octets under the zone, answering 127.0.0.2);
    # down.test never answers.
    dns_server(host=["2.0.0.127.bl.test,127.0.0.2"], local=["bl.test"], silent=["down.test"])
    settings.DNS_TIMEOUT = 0.5
    settings.MX_DNSBL_ZONES = ["down.test", "bl.test"]
    return mx_factory()


def test_a_listed_client_is_refused_at_rcpt_naming_the_list(listed_mx):
    assert rcpt_reply(listed_mx, source="127.0.0.2") == (
        554, "5.7.1 Service unavailable; client host [127.0.0.2] blocked using bl.test")
    assert not QueuedMessage.objects.exists()


def test_an_unlisted_client_is_accepted_and_a_list_that_fails_refuses_nobody(listed_mx):
    # 127.0.0.1 is not in bl.test; down.test times out for every client: accepted all the same.
    assert transaction_from(listed_mx)[-1][0] == 250


def test_no_zones_no_lookups(mx_factory, cast, dns_server, settings):
    dns_server(host=["2.0.0.127.bl.test,127.0.0.2"])
    assert settings.MX_DNSBL_ZONES == []  # off by default
    assert transaction_from(mx_factory(), source="127.0.0.2")[-1][0] == 250


@pytest.fixture
def greylisting_mx(mx_factory, cast, dns_server):
    dns_server(txt=["sender.example,v=spf1 -all"])
    Domain.objects.filter(pk=cast.a.domain.pk).update(greylisting=True)
    return mx_factory(), cast


def test_a_new_triplet_is_greylisted_then_its_retry_after_the_delay_passes(greylisting_mx, settings):
    mx, cast = greylisting_mx
    settings.MX_GREYLIST_DELAY = 300
    code, text = rcpt_reply(mx)
    assert (code, text) == (451, "4.7.1 Greylisted: please try again in 300 seconds")
    # Too early: still refused, with the time left.
    code, text = rcpt_reply(mx, source="127.0.0.3")  # same /24: the same triplet
    assert code == 451 and text.startswith("4.7.1 Greylisted: please try again in 2")
    # The delay has passed (moved back, rather than waited for).
    GreylistEntry.objects.update(pass_after=timezone.now() - timedelta(seconds=1))
    assert transaction_from(mx)[-1][0] == 250
    entry = GreylistEntry.objects.get()
    assert entry.passed and entry.expires_at > timezone.now() + timedelta(days=settings.MX_GREYLIST_EXPIRE_DAYS - 1)
    # Known from now on: the next message goes straight through.
    assert transaction_from(mx)[-1][0] == 250


def test_greylisting_is_per_domain_and_off_by_default(greylisting_mx):
    mx, cast = greylisting_mx
    assert transaction_from(mx, recipient="info@bravo.test")[-1][0] == 250
    assert not GreylistEntry.objects.exists()


def test_expired_triplets_are_purged(greylisting_mx):
    mx, cast = greylisting_mx
    assert rcpt_reply(mx)[0] == 451
    assert purge_expired() == 0
    assert purge_expired(now=timezone.now() + timedelta(days=3)) == 1  # never retried within the window
