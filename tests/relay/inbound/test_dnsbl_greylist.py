"""The names a DNSBL is asked (RFC 5782) and the network greylisting keys a client by, without a server."""

from datetime import timedelta

import pytest
from django.utils import timezone

from relay.inbound.dnsbl import listing_zone, query_name
from relay.inbound.greylist import check_triplet, client_network, triplet_key
from relay.models import GreylistEntry
from relay.submission.policy import Reject


def test_query_names_reverse_octets_and_nibbles():
    assert query_name("192.0.2.99", "bl.example.") == "99.2.0.192.bl.example"
    assert query_name("::ffff:192.0.2.99", "bl.example") == "99.2.0.192.bl.example"
    assert query_name("2001:db8::1", "bl.example") == (
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example")


def test_no_zones_no_lookup():
    assert listing_zone("127.0.0.2", zones=[]) is None


def test_greylisting_keys_a_client_by_its_24_or_64():
    assert client_network("192.0.2.99") == "192.0.2.0/24"
    assert client_network("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert triplet_key("192.0.2.1", "A@Example.org", "info@alpha.test") == \
        triplet_key("192.0.2.200", "a@example.org", "INFO@alpha.test")
    assert triplet_key("192.0.3.1", "a@example.org", "info@alpha.test") != \
        triplet_key("192.0.2.1", "a@example.org", "info@alpha.test")


@pytest.mark.django_db
def test_a_known_triplet_is_renewed_at_most_once_a_day(settings):
    settings.MX_GREYLIST_DELAY, settings.MX_GREYLIST_EXPIRE_DAYS = 300, 35
    start = timezone.now()
    with pytest.raises(Reject, match="^451 4.7.1 Greylisted: please try again in 300 seconds$"):
        check_triplet("192.0.2.1", "a@example.org", "info@alpha.test", now=start)
    with pytest.raises(Reject, match="in 100 seconds"):
        check_triplet("192.0.2.9", "a@example.org", "info@alpha.test", now=start + timedelta(seconds=200))
    check_triplet("192.0.2.1", "a@example.org", "info@alpha.test", now=start + timedelta(seconds=301))
    first = GreylistEntry.objects.get().expires_at
    check_triplet("192.0.2.1", "a@example.org", "info@alpha.test", now=start + timedelta(hours=2))
    assert GreylistEntry.objects.get().expires_at == first  # not written again within the day
    later = start + timedelta(days=2)
    check_triplet("192.0.2.1", "a@example.org", "info@alpha.test", now=later)
    assert GreylistEntry.objects.get().expires_at == later + timedelta(days=35)
    # Not seen for longer than that: forgotten, and greylisted again.
    with pytest.raises(Reject):
        check_triplet("192.0.2.1", "a@example.org", "info@alpha.test", now=later + timedelta(days=36))
