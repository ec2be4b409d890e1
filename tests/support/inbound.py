"""The MX (relay.smtpd.mx) for tests: run_relay with the Mx server in a thread of the test process, on a free
port, against this test's database; and smtplib sessions to it as a remote MTA would open them."""

import smtplib
import threading
from dataclasses import dataclass, field
from pathlib import Path

from relay.smtpd.mx import Mx, MxConfig
from relay.smtpd.server import run_relay
from tests.support.smtp import HOST, client_context


@dataclass
class RunningMx:
    mx: Mx
    port: int
    thread: threading.Thread
    stop_event: threading.Event = field(default_factory=threading.Event)

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the MX did not stop"


def start_mx_server(cert: Path, key: Path, **options) -> RunningMx:
    config = MxConfig(cert=cert, key=key, mx=(HOST, options.pop("port", 0)), grace=options.pop("grace", 5.0),
                      **options)
    started, holder, errors = threading.Event(), {}, []
    stop_event = threading.Event()

    def ready(mx):
        holder["mx"] = mx
        started.set()

    def target():
        try:
            run_relay(config, ready=ready, stop_event=stop_event, install_signals=False, server_class=Mx)
        except BaseException as error:  # surfaced to the test below
            errors.append(error)
            started.set()

    thread = threading.Thread(target=target, name="mx", daemon=True)
    thread.start()
    assert started.wait(15), "the MX did not start"
    if errors:
        raise errors[0]
    mx = holder["mx"]
    return RunningMx(mx=mx, port=mx.ports["mx"], thread=thread, stop_event=stop_event)


def mta_client(port: int, *, ehlo: str = "mta.sender.example", starttls: bool = False,
               source: str | None = None) -> smtplib.SMTP:
    """A remote MTA's session: EHLO, and STARTTLS when asked (opportunistic on port 25); from the loopback
    address `source` when given (127.0.0.2, ...)."""
    client = smtplib.SMTP(HOST, port, local_hostname=ehlo, timeout=20,
                          source_address=(source, 0) if source else None)
    client.ehlo(ehlo)
    if starttls:
        client.starttls(context=client_context())
        client.ehlo(ehlo)
    return client
