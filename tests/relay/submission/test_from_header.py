"""The From: check at end of DATA sees the header fields a receiving MUA sees (RFC 5322 3.6: exactly one From)."""

import pytest

from relay.models import QueuedMessage
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
