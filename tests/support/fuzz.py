"""A seeded random walk over the submission grammar, checking every reply the relay gives.

Each session starts on 587 or 465 and takes random steps: greetings, STARTTLS, AUTH (right, wrong, too long,
cancelled), MAIL/RCPT with mutated paths and parameters (NUL, CR, 8-bit, Unicode digits), whole messages (some
that must be accepted), junk lines, pipelined batches of one-reply commands, and abrupt hang-ups. What it checks
(RFC 5321 4.2, RFC 2034) is collected in a Findings object rather than asserted at once, so that one run reports
every kind of problem.
"""

import base64
import random
import re
import socket
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field

from tests.support.smtp import HOST, client_context

# A reply line: three digits, space or hyphen, text of printable US-ASCII (and HT), CRLF.
REPLY_LINE = re.compile(rb"^[2-5][0-9][0-9]([ -][\x20-\x7e\t]*)?\r\n$")
ENHANCED = re.compile(rb"^[45][0-9][0-9][ -][45]\.[0-9]{1,3}\.[0-9]{1,3}( |\r\n)")
CLOSING = (b"221", b"421", b"502 5.5.1 Too many unrecognized")
NASTY = [b"\x00", b"\r", b"\xff", b"\xc3\xa9", b"\xe2\x80\xae", b"\x1b[31m", b"\t", b"\x7f", b"%", b"!", b"\"", b"\\"]
DIGITS = ["10", "0", "-1", "\u00b2", "\u0663", "99999999999999999999999", "1e3", "", "0x10", "\uff11"]

# Every branch of the walk, as Walker.took names it: a run must take each one (a shorter run that leaves one out
# tests less of the grammar), and a branch added to the walk is added here.
GRAMMAR = frozenset({
    "submission", "implicit TLS", "QUIT", "mutated",
    "ehlo", "junk_line", "simple", "batch", "hang_up", "starttls", "auth", "long_auth", "mail", "message",
    *(f"STARTTLS with {n} NOOPs pipelined" for n in (0, 3, 5000)), "hang-up in the TLS handshake",
    *(f"AUTH {m} {r}" for m in ("PLAIN", "PLAIN-CHALLENGE", "LOGIN") for r in ("right", "wrong")),
    "AUTH answered", "AUTH cancelled", "AUTH accepted",
    *(f"line {k}" for k in ("NOOP", "RSET", "VRFY", "HELP", "MAIL", "RCPT", "unknown", "noop-arg", "EXPN")),
    *(f"parameter {p}" for p in ("SIZE", "BODY", "SMTPUTF8", "AUTH", "RET", "size")),
    "DATA good", "DATA mutated", "message accepted", "hang-up with RST", "hang-up after a line",
})


class Hang(Exception):
    pass


class Gone(Exception):
    pass


@dataclass
class Findings:
    sessions: int = 0
    accepted: int = 0  # "250 ... queued as" replies seen
    good_messages: int = 0  # messages sent that had to be accepted
    problems: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)
    replies: Counter = field(default_factory=Counter)
    steps: Counter = field(default_factory=Counter)  # the walk's branches taken (GRAMMAR lists them all)

    def problem(self, kind: str, example) -> None:
        self.problems[kind] += 1
        self.examples.setdefault(kind, example)

    def merge(self, other: "Findings") -> None:
        self.sessions += other.sessions
        self.accepted += other.accepted
        self.good_messages += other.good_messages
        self.problems.update(other.problems)
        self.replies.update(other.replies)
        self.steps.update(other.steps)
        for kind, example in other.examples.items():
            self.examples.setdefault(kind, example)


class Walker:
    def __init__(self, *, submission: int, smtps: int, login: tuple[str, str], recipient: str = "bob@example.org",
                 timeout: float = 10.0):
        self.submission, self.smtps, self.login, self.recipient = submission, smtps, login, recipient
        self.timeout = timeout
        self.domain = login[0].split("@")[1]

    # --- one session ---------------------------------------------------------------------------------------

    def session(self, seed: int, findings: Findings) -> None:
        rng = random.Random(seed)
        findings.sessions += 1
        self.rng, self.findings, self.seed = rng, findings, seed
        self.buffer, self.tls, self.authed, self.in_mail, self.closed = b"", False, False, False, False
        implicit = rng.random() < 0.3
        self.took("implicit TLS" if implicit else "submission")
        try:
            self.sock = socket.create_connection((HOST, self.smtps if implicit else self.submission),
                                                 timeout=self.timeout)
        except OSError as error:
            findings.problem("connect failed", repr(error))
            return
        try:
            if implicit:
                self.sock = client_context().wrap_socket(self.sock)
                self.tls = True
            self.expect(1, b"greeting")
            for _ in range(rng.randint(1, 14)):
                if self.closed:
                    break
                self.step()
            if not self.closed and rng.random() < 0.5:
                self.took("QUIT")
                self.command(b"QUIT")
        except Hang as hang:
            findings.problem("hang", (seed, str(hang)))
        except (Gone, ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            self.sock.close()

    def step(self) -> None:
        rng = self.rng
        choices = [(self.ehlo, 3), (self.junk_line, 3), (self.simple, 4), (self.batch, 2), (self.hang_up, 0.3)]
        if not self.tls:
            choices.append((self.starttls, 6))
        else:
            choices += [(self.auth, 3 if not self.authed else 0.3), (self.long_auth, 0.4)]
            if self.authed:
                choices += [(self.mail, 4), (self.message, 5 if not self.in_mail else 1)]
        actions, weights = zip(*choices)
        action = rng.choices(actions, weights)[0]
        self.took(action.__name__)
        action()

    # --- the steps -----------------------------------------------------------------------------------------

    def ehlo(self) -> None:
        self.command(self.rng.choice([b"EHLO", b"HELO", b"ehlo"]) + b" " + self.mutate(b"client.test"))

    def starttls(self) -> None:
        trailer = b"NOOP\r\n" * self.rng.choice([0, 0, 0, 3, 5000]) if self.rng.random() < 0.2 else b""
        self.took(f"STARTTLS with {trailer.count(b'NOOP')} NOOPs pipelined")
        self.send(b"STARTTLS\r\n" + trailer)
        reply = self.expect(1, b"STARTTLS")[-1]
        if not reply.startswith(b"220"):
            return
        if self.rng.random() < 0.05:  # hang up in the handshake
            self.took("hang-up in the TLS handshake")
            self.sock.shutdown(socket.SHUT_RDWR)
            raise Gone
        started = time.monotonic()
        try:
            self.sock = client_context().wrap_socket(self.sock)
        except (ssl.SSLError, ConnectionError, OSError):
            if time.monotonic() - started > self.timeout * 0.9:
                raise Hang("TLS handshake after STARTTLS") from None
            raise Gone from None
        self.tls, self.authed, self.in_mail = True, False, False

    def auth(self) -> None:
        user, password = self.login
        right = self.rng.random() < 0.7
        if not right:
            password = password + "x"
        mechanism = self.rng.choice(["PLAIN", "PLAIN-CHALLENGE", "LOGIN"])
        self.took(f"AUTH {mechanism} {'right' if right else 'wrong'}")
        if mechanism == "PLAIN":
            blob = base64.b64encode(f"\0{user}\0{password}".encode())
            reply = self.command(b"AUTH PLAIN " + blob)
        elif mechanism == "PLAIN-CHALLENGE":
            if not self.command(b"AUTH PLAIN").startswith(b"334"):
                return
            answer = base64.b64encode(f"\0{user}\0{password}".encode()) if self.rng.random() < 0.8 else b"*"
            self.took("AUTH cancelled" if answer == b"*" else "AUTH answered")
            reply = self.command(answer)
        else:
            if not self.command(b"AUTH LOGIN").startswith(b"334"):
                return
            if not self.command(base64.b64encode(user.encode())).startswith(b"334"):
                return
            reply = self.command(base64.b64encode(password.encode()))
        if reply.startswith(b"235"):
            self.took("AUTH accepted")
            self.authed = True

    def long_auth(self) -> None:
        if not self.command(b"AUTH PLAIN").startswith(b"334"):
            return
        self.send(b"A" * self.rng.randint(12200, 40000))
        if self.rng.random() < 0.5:
            time.sleep(0.01)
        self.send(self.rng.choice([b"QUIT", b"NOOP", b"MAIL FROM:<" + self.login[0].encode() + b">"]) + b"\r\n")
        self.expect(1, b"long AUTH answer")

    def simple(self) -> None:
        self.command(self.simple_line())

    def simple_line(self) -> bytes:
        rng = self.rng
        kind = rng.choice(["NOOP", "RSET", "VRFY", "HELP", "MAIL", "RCPT", "unknown", "noop-arg", "EXPN"])
        self.took(f"line {kind}")
        if kind == "VRFY":
            return b"VRFY " + self.mutate(rng.choice([b"user@", b"user", b"<a@b>", b"@", b""]))
        if kind == "MAIL":
            return self.mail_line()
        if kind == "RCPT":
            return b"RCPT TO:<" + self.mutate(self.recipient.encode()) + b">" + self.params()
        if kind == "unknown":
            return self.mutate(rng.choice([b"ATRN", b"XYZZY", b"A\rTRN", b"DATA2", b"\xffNOOP"]))
        if kind == "noop-arg":
            return b"NOOP " + self.mutate(b"x")
        return kind.encode()

    def mail_line(self) -> bytes:
        sender = self.login[0].encode() if self.rng.random() < 0.6 else self.mutate(self.login[0].encode())
        if self.rng.random() < 0.1:
            sender = b"\xff\xfe" + sender
        return b"MAIL FROM:<" + sender + b">" + self.params()

    def params(self) -> bytes:
        rng = self.rng
        params = []
        for _ in range(rng.choice([0, 0, 1, 2])):
            name = rng.choice(["SIZE", "BODY", "SMTPUTF8", "AUTH", "RET", "size"])
            self.took(f"parameter {name}")
            if name.upper() == "SIZE":
                params.append(f"{name}={rng.choice(DIGITS)}".encode())
            elif name == "BODY":
                params.append(b"BODY=" + rng.choice([b"8BITMIME", b"7BIT", b"BINARYMIME", b"\xff"]))
            elif name == "AUTH":
                params.append(b"AUTH=<>")
            else:
                params.append(name.encode())
        return b"".join(b" " + p for p in params)

    def mail(self) -> None:
        if self.command(self.mail_line()).startswith(b"250"):
            self.in_mail = True

    def message(self) -> None:
        """A transaction; with the right sender and a clean content it must be accepted."""
        rng = self.rng
        good = rng.random() < 0.6
        if self.in_mail:
            self.command(b"RSET")
            self.in_mail = False
        sender = self.login[0].encode()
        if not self.command(b"MAIL FROM:<" + sender + b">" + (self.params() if not good else b"")).startswith(b"250"):
            return
        self.in_mail = True
        if not self.command(b"RCPT TO:<" + self.recipient.encode() + b">").startswith(b"250"):
            return
        if not self.command(b"DATA").startswith(b"354"):
            return
        self.took("DATA good" if good else "DATA mutated")
        header_from = sender if good or rng.random() < 0.5 else self.mutate(sender)
        body = b"Hello.\r\n" if good else self.mutate(b"..dots and \x00 nul\r\n.\r\nend") + b"\r\n"
        content = b"From: " + header_from + b"\r\nSubject: fuzz " + str(self.seed).encode() + b"\r\n\r\n" + body
        if not good:
            content = content.replace(b"\r\n.\r\n", b"\r\n..\r\n")
        stuffed = content.replace(b"\r\n.", b"\r\n..")
        self.send(stuffed + (b"" if stuffed.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        reply = self.expect(1, b"end of DATA")[-1]
        self.in_mail = False
        if reply.startswith(b"250"):
            self.took("message accepted")
        if good and header_from == sender:
            self.findings.good_messages += 1
            if not reply.startswith((b"250", b"451 4.7.1")):  # a sending limit may be reached
                self.findings.problem("good message refused", (self.seed, reply))

    def junk_line(self) -> None:
        rng = self.rng
        raw = bytes(rng.choice(list(range(1, 256))) for _ in range(rng.randint(0, 60)))
        raw = raw.replace(b"\n", b"")
        self.command(rng.choice([raw, b"", b"\x00", b"MAIL\x00FROM:<a@b>", b" " * 5, b"\r"]))

    def batch(self) -> None:
        lines = [self.simple_line() for _ in range(self.rng.randint(2, 12))]
        self.send(b"".join(line + b"\r\n" for line in lines))
        self.expect(len(lines), b"pipelined batch")

    def hang_up(self) -> None:
        rst = self.rng.random() < 0.5
        self.took("hang-up with RST" if rst else "hang-up after a line")
        if rst:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
        else:
            self.send(self.simple_line() + b"\r\n")
        self.sock.close()
        raise Gone

    def took(self, branch: str) -> None:
        self.findings.steps[branch] += 1

    # --- wire ----------------------------------------------------------------------------------------------

    def mutate(self, value: bytes) -> bytes:
        rng = self.rng
        if rng.random() < 0.5:
            return value
        self.took("mutated")
        value = bytearray(value)
        for _ in range(rng.randint(1, 3)):
            position = rng.randint(0, len(value))
            value[position:position] = rng.choice(NASTY)
        return bytes(value).replace(b"\n", b"")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: bytes) -> bytes:
        self.send(line + b"\r\n")
        return self.expect(1, line)[-1]

    def expect(self, count: int, sent: bytes) -> list[bytes]:
        """Read `count` replies to what was sent; check each line; after a closing reply nothing more may come."""
        finals = []
        while len(finals) < count:
            line = self.line(sent)
            self.findings.replies[line[:3]] += 1
            if not REPLY_LINE.match(line):
                self.findings.problem("malformed reply line", (self.seed, sent[:80], line[:200]))
            if line[:1] in b"45" and not ENHANCED.match(line):
                self.findings.problem("no enhanced status code", (self.seed, sent[:80], line[:200]))
            if line.startswith(b"451 4.3.0"):
                self.findings.problem("internal error", (self.seed, sent[:80], line[:200]))
            if line.startswith(b"250 2.0.0 Ok: queued as"):
                self.findings.accepted += 1
            if line[3:4] == b"-":
                continue
            finals.append(line)
            if line.startswith(CLOSING):
                self.closed = True
                self.after_close(sent)
                raise Gone
        return finals

    def after_close(self, sent: bytes) -> None:
        try:
            self.sock.settimeout(3)
            while True:
                chunk = self.buffer or self.sock.recv(65536)
                self.buffer = b""
                if not chunk:
                    return
                self.findings.problem("reply after a closing reply", (self.seed, sent[:80], chunk[:200]))
        except (TimeoutError, socket.timeout):
            self.findings.problem("not closed after a closing reply", (self.seed, sent[:80]))
        except (ConnectionError, ssl.SSLError, OSError):
            return

    def line(self, sent: bytes) -> bytes:
        while b"\r\n" not in self.buffer:
            try:
                chunk = self.sock.recv(65536)
            except (TimeoutError, socket.timeout):
                raise Hang(repr(sent[:80])) from None
            if not chunk:
                if self.buffer:
                    self.findings.problem("reply without CRLF", (self.seed, sent[:80], self.buffer[:200]))
                raise Gone
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        if b"\r" in line or b"\n" in line:
            self.findings.problem("bare CR or LF in a reply", (self.seed, sent[:80], line[:200]))
        return line + b"\r\n"
