"""The From: check at end of DATA sees the header fields a receiving MUA sees (RFC 5322 3.6: exactly one From)."""

import email.policy

import pytest

from relay.models import QueuedMessage
from relay.submission import accept
from relay.submission.accept import parse_headers
from tests.support.smtp import send, submission_client

pytestmark = pytest.mark.django_db(transaction=True)

OWN = "info@alpha.test"


@pytest.fixture
def client(relay, login):
    with submission_client(relay.submission, auth=login) as client:
        yield client


def _data(header_lines: str) -> bytes:
    return (header_lines + "To: bob@example.org\r\nSubject: hi\r\n\r\nbody\r\n").encode()


@pytest.mark.parametrize("headers", [
    # Obsolete syntax (RFC 5322 4.5.3): white space before the colon is still the From field to an MUA.
    f"From: {OWN}\r\nFrom : <ceo@bank.test>\r\n",
    f"From : <ceo@bank.test>\r\nFrom: {OWN}\r\n",
    "From\t: <ceo@bank.test>\r\n",
    f"FROM: {OWN}\r\nfrom:{OWN}\r\n",
    # First line: not an mbox "From " envelope line, but a From field.
    "From : <ceo@bank.test>\r\n",
    f"From: {OWN}\r\nX-Note: x\r\nFrom: <ceo@bank.test>\r\n",
])
def test_a_second_or_hidden_from_field_is_refused(client, headers):
    code, reply = send(client, sender=OWN, recipients=["bob@example.org"], data=_data(headers))[-1]
    assert code in (550, 554), reply
    assert reply[:5] in (b"5.7.1", b"5.6.0"), reply
    assert not QueuedMessage.objects.exists()


@pytest.mark.parametrize("value", [f"<{OWN}", "undisclosed-recipients:;", "", f"{OWN} <", "<@>", "Info"])
def test_a_malformed_from_field_is_refused(client, value):
    code, reply = send(client, sender=OWN, recipients=["bob@example.org"], data=_data(f"From: {value}\r\n"))[-1]
    assert code in (550, 554) and reply[:5] in (b"5.7.1", b"5.6.0"), reply
    assert not QueuedMessage.objects.exists()


@pytest.mark.parametrize("value", [OWN, f'"Alpha Info" <{OWN}>', f"{OWN} (the shop)", f"=?utf-8?q?J=C3=B6rg?= <{OWN}>",
                                   f"Jörg <{OWN}>"])
def test_one_well_formed_own_from_is_accepted(client, value):
    data = _data(f"From: {value}\r\n")
    assert send(client, sender=OWN, recipients=["bob@example.org"], data=data)[-1][0] == 250
    assert QueuedMessage.objects.get().header_from == OWN


def test_a_folded_from_field_is_read_whole():
    headers = parse_headers(b"From: Alpha\r\n <ceo@bank.test>\r\nSubject: folded\r\n subject\r\n\r\nbody")
    assert headers.from_addresses == ["ceo@bank.test"]
    assert headers.subject == "folded subject"


def test_header_lines_after_the_blank_line_are_body():
    headers = parse_headers(f"From: {OWN}\r\n\r\nFrom : <ceo@bank.test>\r\n".encode())
    assert headers.from_addresses == [OWN] and headers.from_problem == ""


PLAIN = [OWN, f"<{OWN}>", f"Alpha Info <{OWN}>", f"Alpha  Info<{OWN}>", "a.b-c+d@x-y.test",
         "a!#$%&'*+/=?^_`{|}~-@b.test", "<a@b>", "a@-b", "a@b-", "Name\t<a@b.test>"]
NOT_PLAIN = ["a..b@c", ".a@b", "a.@b", "a@b..c", "a@.b", "a@b.", "x@[192.0.2.1]", '"q"@b.test', "A. Name <a@b.test>",
             "a@b.test, c@d.test", "Name <a@b.test> (c)", "<a@b.test", "a@b.test>", "Jörg <a@b.test>",
             "=?utf-8?q?J=C3=B6rg?= <a@b.test>", "Name<a@b.test>x", "<a@b.test> <c@d.test>", "a@b@c.test",
             "group: a@b.test;", "<@route:a@b.test>", "a b@c.test"]


@pytest.mark.parametrize("value", PLAIN + NOT_PLAIN)
def test_the_plain_from_forms_read_as_the_header_parser_reads_them(value):
    """The relay reads a From: in a plain form without the email package's parser: it must give that parser's
    answer, and leave every other form to it."""
    header = email.policy.default.header_factory("from", value)
    plain = accept._plain_from(value)
    assert (plain is not None) == (value in PLAIN)
    if plain is not None:
        assert not header.defects and [g.display_name for g in header.groups] == [None]
        assert plain == [f"{a.username}@{a.domain}" for a in header.addresses]


def test_a_short_plain_header_is_read_on_the_event_loop_and_any_other_on_a_thread():
    def quick(head: bytes):
        return parse_headers(head + b"\r\n\r\nbody", quick=True)

    assert quick(f"From: Alpha <{OWN}>\r\nSubject: hi".encode()).from_addresses == [OWN]
    assert quick(b"From: A. Name <info@alpha.test>") is None
    assert quick(f"From: {OWN}\r\nSubject: =?utf-8?q?h=C3=A9?=".encode()) is None
    assert quick(f"From: {OWN}\r\nX-Long: {'x' * accept.QUICK_HEADER_SECTION}".encode()) is None
    assert parse_headers(f"From: {OWN}\r\nSubject: =?utf-8?q?h=C3=A9?=\r\n\r\n".encode()).subject == "hé"
