"""SRS: forwarded mail's envelope sender, and bounces to it routed back (hash and age checked) or refused."""

import time

import pytest
import srslib

from accounts import srs
from accounts.selectors.recipients import RecipientRefused, resolve_recipient

pytestmark = pytest.mark.django_db


def test_round_trip():
    address = srs.srs_forward("Alice@Example.org", domain="alpha.test")
    assert address.startswith("SRS0=") and address.endswith("=example.org=Alice@alpha.test")
    assert srs.srs_reverse(address) == "Alice@example.org"
    # Hashes are compared without regard to case (libsrs2): a relay that lower-cases the address changes nothing.
    assert srs.srs_reverse(address.lower()).lower() == "alice@example.org"


def test_the_null_sender_stays_null():
    assert srs.srs_forward("", domain="alpha.test") == ""


def test_a_forged_hash_is_refused():
    address = srs.srs_forward("alice@example.org", domain="alpha.test")
    _, hash_, rest = address.split("=", 2)
    forged = f"SRS0={'AAAA' if hash_.upper() != 'AAAA' else 'BBBB'}={rest}"
    with pytest.raises(srs.SrsInvalid):
        srs.srs_reverse(forged)
    with pytest.raises(srs.SrsInvalid):
        srs.srs_reverse("SRS0=xxxx=AB=example.org=alice@alpha.test")
    with pytest.raises(srs.SrsInvalid):
        srs.srs_reverse("alice@alpha.test")


def test_another_secret_is_refused_unless_it_is_a_previous_one(settings):
    settings.SRS_SECRET = "the old secret"
    address = srs.srs_forward("alice@example.org", domain="alpha.test")
    settings.SRS_SECRET = "the new secret"
    with pytest.raises(srs.SrsInvalid):
        srs.srs_reverse(address)
    settings.SRS_PREVIOUS_SECRETS = ["the old secret"]
    assert srs.srs_reverse(address) == "alice@example.org"


def test_an_expired_address_is_refused(settings, monkeypatch):
    settings.SRS_MAX_AGE_DAYS = 5
    now = time.time()
    with monkeypatch.context() as patch:
        patch.setattr(srslib.time, "time", lambda: now - 6 * 86400)
        old = srs.srs_forward("alice@example.org", domain="alpha.test")
    with monkeypatch.context() as patch:
        patch.setattr(srslib.time, "time", lambda: now - 4 * 86400)
        recent = srs.srs_forward("alice@example.org", domain="alpha.test")
    assert srs.srs_reverse(recent) == "alice@example.org"
    with pytest.raises(srs.SrsInvalid):
        srs.srs_reverse(old)


def test_srs1_goes_back_to_the_first_hop():
    first_hop = "SRS0=HHHH=TT=example.org=alice@forwarder.example"
    address = srs.srs_forward(first_hop, domain="alpha.test")
    assert address.startswith("SRS1=")
    assert srs.srs_reverse(address) == first_hop


def test_rcpt_to_a_valid_srs_address_routes_to_the_original_sender(cast):
    address = srs.srs_forward("alice@example.org", domain="alpha.test")
    route = resolve_recipient(address)
    assert (route.mailbox_ids, route.external) == ((), ("alice@example.org",))


def test_rcpt_to_a_forged_srs_address_is_refused(cast):
    with pytest.raises(RecipientRefused) as caught:
        resolve_recipient("SRS0=xxxx=AB=example.org=alice@alpha.test")
    assert caught.value.reply == "550 5.1.1 Invalid or expired SRS address"
    # At a domain we do not host it is no bounce of ours: no relaying.
    with pytest.raises(RecipientRefused) as caught:
        resolve_recipient(srs.srs_forward("alice@example.org", domain="example.net"))
    assert caught.value.reply == "554 5.7.1 Relay access denied"
