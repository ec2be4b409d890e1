"""The message as it goes on the wire after DATA (RFC 5321 4.5.2), whatever line ends it was stored with."""

import pytest

from relay.delivery.smtpclient import dot_stuffed


@pytest.mark.parametrize("content, wire", [
    (b"Subject: x\r\n\r\nplain\r\n", b"Subject: x\r\n\r\nplain\r\n"),
    (b"Subject: x\r\n\r\nno final line end", b"Subject: x\r\n\r\nno final line end\r\n"),
    (b".first\r\nmiddle\r\n.\r\n..two\r\n", b"..first\r\nmiddle\r\n..\r\n...two\r\n"),
    (b"bare\nline\rfeeds\r\n.dot\n", b"bare\r\nline\r\nfeeds\r\n..dot\r\n"),
    (b"", b"\r\n"),
])
def test_line_ends_become_crlf_and_leading_dots_are_doubled(content, wire):
    assert dot_stuffed(content) == wire
