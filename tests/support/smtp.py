"""SMTP clients for tests: smtplib sessions to a relay on loopback, a message to send, swaks."""

import base64
import shutil
import smtplib
import ssl
import subprocess

import pytest

HOST = "127.0.0.1"


def client_context() -> ssl.SSLContext:
    # The test certificate is self-signed: the client checks TLS works, not who signed it.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def submission_client(port: int, *, auth: tuple[str, str] | None = None, ehlo: str = "client.test") -> smtplib.SMTP:
    """smtplib on the STARTTLS port: EHLO, STARTTLS, EHLO, and AUTH PLAIN when given (user, password)."""
    client = smtplib.SMTP(HOST, port, local_hostname=ehlo, timeout=20)
    client.starttls(context=client_context())
    client.ehlo(ehlo)
    if auth is not None:
        code, reply = auth_plain(client, *auth)
        assert code == 235, (code, reply)
    return client


def smtps_client(port: int, *, auth: tuple[str, str] | None = None, ehlo: str = "client.test") -> smtplib.SMTP_SSL:
    client = smtplib.SMTP_SSL(HOST, port, local_hostname=ehlo, timeout=20, context=client_context())
    client.ehlo(ehlo)
    if auth is not None:
        code, reply = auth_plain(client, *auth)
        assert code == 235, (code, reply)
    return client


def auth_plain(client: smtplib.SMTP, user: str, password: str, authzid: str = "") -> tuple[int, bytes]:
    blob = base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()
    return client.docmd("AUTH", f"PLAIN {blob}")


def message(*, sender: str, to: str = "someone@example.org", subject: str = "Hello", body: str = "Hi there.\r\n",
            extra: str = "") -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n{extra}\r\n{body}").encode()


def send(client: smtplib.SMTP, *, sender: str, recipients: list[str], data: bytes,
         mail_options: str = "") -> list[tuple[int, bytes]]:
    """MAIL, RCPT..., DATA with docmd so every reply is returned, not raised."""
    replies = [client.docmd("MAIL", f"FROM:<{sender}>{(' ' + mail_options) if mail_options else ''}")]
    replies += [client.docmd("RCPT", f"TO:<{r}>") for r in recipients]
    if all(code < 300 for code, _ in replies):
        code, reply = client.docmd("DATA")
        replies.append((code, reply))
        if code == 354:
            payload = data.replace(b"\r\n.", b"\r\n..")
            client.send(payload + (b"" if payload.endswith(b"\r\n") else b"\r\n") + b".\r\n")
            replies.append(client.getreply())
    return replies


def swaks(port: int, *args: str, tls: str = "--tls", timeout: float = 30) -> subprocess.CompletedProcess:
    """Run swaks against the relay; fails (not skips) when swaks is missing."""
    binary = shutil.which("swaks")
    if binary is None:
        pytest.fail("swaks is not installed (Debian package swaks)")
    return subprocess.run([binary, "--server", HOST, "--port", str(port), tls, "--helo", "client.test",
                           "--timeout", "20", *args], capture_output=True, text=True, timeout=timeout)
