"""Local delivery: an inbound message's hosted-mailbox recipients handed to Dovecot over LMTP (RFC 2033).

One LMTP transaction per message carries all its local recipients; after DATA, LMTP answers once per accepted
recipient, so each mailbox's outcome is its own (one full mailbox does not fail the others). Each worker thread
keeps its session with Dovecot for the next message for LMTP_REUSE_SECONDS. Delivery is at
least once: a worker killed after Dovecot's replies but before their commit leaves the message to be delivered
again when its lease runs out (LMTP has no transaction identifier a second delivery could be matched against).
"""

import re
import smtplib
import threading
import time

from django.conf import settings

from relay.models import QueuedMessage, Recipient

_EOLS = re.compile(rb"(?:\r\n|\n|\r(?!\n))")
_DOTS = re.compile(rb"(?m)^\.")


def connect() -> smtplib.LMTP:
    """A session with LMTP_URL: a unix socket path (optionally 'unix:/path') or HOST:PORT."""
    url = settings.LMTP_URL.removeprefix("unix:").removeprefix("lmtp://")
    if url.startswith("/"):
        client = smtplib.LMTP(timeout=settings.LMTP_TIMEOUT)
        client.connect(url)
    else:
        host, _, port = url.rpartition(":")
        client = smtplib.LMTP(timeout=settings.LMTP_TIMEOUT)
        client.connect(host.strip("[]"), int(port))
    client.ehlo_or_helo_if_needed()
    return client


_kept = threading.local()


def _session() -> tuple[smtplib.LMTP, bool]:
    """(session, reused): the one this thread kept from its last delivery when it is recent enough (as Postfix's LMTP
    client caches its connections: no connect, LHLO and QUIT per message), else a new one."""
    kept, _kept.session = getattr(_kept, "session", None), None
    if kept is not None:
        client, url, used = kept
        if url == settings.LMTP_URL and time.monotonic() - used < settings.LMTP_REUSE_SECONDS:
            return client, True
        _close(client)
    return connect(), False


def _keep(client: smtplib.LMTP) -> None:
    if settings.LMTP_REUSE_SECONDS > 0:
        _kept.session = (client, settings.LMTP_URL, time.monotonic())
    else:
        _close(client)


def _reset(client: smtplib.LMTP) -> bool:
    try:
        return client.rset()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


def _close(client: smtplib.LMTP) -> None:
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        pass
    client.close()


def _payload(content: bytes) -> bytes:
    data = _DOTS.sub(b"..", _EOLS.sub(b"\r\n", content))
    return data + (b"" if data.endswith(b"\r\n") else b"\r\n") + b".\r\n"


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def deliver_local(message: QueuedMessage, recipients: list[Recipient]) -> list[tuple[Recipient, int | None, str]]:
    """(recipient, code, reply) for each recipient; code None when Dovecot could not be reached or the
    session broke before that recipient's answer (a temporary failure: retried)."""
    answers: dict[int, tuple[int | None, str]] = {}
    client, done = None, False
    try:
        client, reused = _session()
        options = []
        if not message.content.isascii() and client.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        if not all(a.isascii() for a in [message.mail_from, *(r.address for r in recipients)]):
            # Dovecot 2.3's LMTP does not advertise SMTPUTF8 (RFC 6531) but takes UTF-8 paths as they are; the
            # MX already required SMTPUTF8 from the client for them.
            if client.has_extn("smtputf8"):
                options.append("SMTPUTF8")
            client.command_encoding = "utf-8"
        try:
            code, reply = client.mail(message.mail_from, options)
        except (smtplib.SMTPServerDisconnected, OSError):
            if not reused:
                raise
            # The kept session was closed by Dovecot meanwhile: nothing of this message was sent on it.
            client.close()
            client, reused = connect(), False
            code, reply = client.mail(message.mail_from, options)
        if code != 250:
            done = _reset(client)
            return [(r, code, _text(reply)) for r in recipients]
        accepted = []
        for recipient in recipients:
            code, reply = client.rcpt(recipient.address)
            if code == 250:
                accepted.append(recipient)
            else:
                answers[recipient.pk] = (code, _text(reply))
        code, reply = client.docmd("DATA") if accepted else (None, "")
        if code == 354:
            client.send(_payload(message.content))
            # RFC 2033 4.2: one reply per recipient accepted at RCPT, in their order.
            for recipient in accepted:
                code, reply = client.getreply()
                answers[recipient.pk] = (code, _text(reply))
            done = True
        else:
            for recipient in accepted:
                answers[recipient.pk] = (code, _text(reply))
            done = _reset(client)
    except (smtplib.SMTPException, OSError) as error:
        failure = f"LMTP {settings.LMTP_URL}: {error}"
        for recipient in recipients:
            answers.setdefault(recipient.pk, (None, failure))
    finally:
        if client is not None and done:  # a whole transaction, its replies all read: the session is in step
            _keep(client)
        elif client is not None:
            client.close()
    return [(r, *answers.get(r.pk, (None, "no reply from LMTP"))) for r in recipients]
