"""A raw SMTP client for tests that send what smtplib refuses to: any octets, pipelined, TLS on demand."""

import base64
import socket
import ssl

from tests.support.smtp import HOST, client_context


class Closed(Exception):
    pass


class RawClient:
    def __init__(self, port: int, *, timeout: float = 10.0, implicit_tls: bool = False):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        if implicit_tls:
            self.sock = client_context().wrap_socket(self.sock)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        """One reply line with its CRLF; Closed when the server hangs up first."""
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed(self.buffer)
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line + b"\r\n"

    def reply(self) -> list[bytes]:
        """Every line of one reply (the last has a space after its code), CRLF removed."""
        lines = []
        while True:
            line = self.line()[:-2]
            lines.append(line)
            if line[3:4] != b"-":
                return lines

    def command(self, text: bytes | str) -> bytes:
        self.send((text.encode() if isinstance(text, str) else text) + b"\r\n")
        return self.reply()[-1]

    def starttls(self) -> None:
        assert self.command("STARTTLS").startswith(b"220"), "STARTTLS refused"
        self.sock = client_context().wrap_socket(self.sock)

    def login(self, user: str, password: str) -> None:
        blob = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        reply = self.command(f"AUTH PLAIN {blob}")
        assert reply.startswith(b"235"), reply

    def closed(self, wait: float = 3.0) -> bool:
        """Whether the server closes the connection within `wait` seconds (what it still sends is discarded)."""
        self.sock.settimeout(wait)
        try:
            while self.sock.recv(65536):
                pass
        except (TimeoutError, socket.timeout):
            return False
        except (ConnectionError, ssl.SSLError, OSError):
            return True
        return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def ready_session(port: int, login: tuple[str, str] | None = None, **options) -> RawClient:
    """Greeted, EHLO, STARTTLS, EHLO, and AUTH when given a login."""
    client = RawClient(port, **options)
    assert client.reply()[-1].startswith(b"220")
    client.command("EHLO client.test")
    client.starttls()
    client.command("EHLO client.test")
    if login is not None:
        client.login(*login)
    return client
