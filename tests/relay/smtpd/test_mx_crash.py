"""`manage.py runmx` killed with SIGKILL while remote MTAs send: nothing that got 250 is lost, nothing is
half-written (every stored message has all its recipient routes), and the restarted MX takes mail again."""

import signal
import smtplib
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import pytest
from django.db.models import Count

from relay.models import QueuedMessage
from tests.peers import free_port, wait_for_port
from tests.support.relays import ROOT, child_env
from tests.support.smtp import HOST, send

pytestmark = pytest.mark.django_db(transaction=True)

RECIPIENTS = ["info@alpha.test", "info@bravo.test", "info@direct.test"]


@dataclass
class Outcome:
    subject: str
    code: int | None = None  # None: the connection died before an answer
    text: str = ""


def start_runmx(relay_cert, dns_port: int, log_path):
    port, http = free_port(), free_port()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "runmx", "--listen", f"{HOST}:{port}", "--http",
             f"{HOST}:{http}", "--cert", str(relay_cert[0]), "--key", str(relay_cert[1]),
             "--processes", "1"],
            cwd=ROOT, env=child_env(DNS_NAMESERVERS="127.0.0.1", DNS_PORT=str(dns_port), DNS_TIMEOUT="2"),
            stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, proc=proc, timeout=30)
    wait_for_port(http, proc=proc, timeout=30)
    return proc, port


def sender_loop(port: int, worker: str, outcomes: list, stop: threading.Event):
    try:
        with smtplib.SMTP(HOST, port, local_hostname="mta.sender.example", timeout=20) as client:
            client.ehlo("mta.sender.example")
            for n in range(1000):
                if stop.is_set():
                    return
                outcome = Outcome(subject=f"inbound crash {worker}-{n}")
                outcomes.append(outcome)
                data = (f"From: someone@sender.example\r\nSubject: {outcome.subject}\r\n\r\n" + "x" * 70 + "\r\n")
                code, text = send(client, sender="someone@sender.example", recipients=RECIPIENTS,
                                  data=data.encode())[-1]
                outcome.code, outcome.text = code, text.decode()
    except (smtplib.SMTPException, OSError):
        return


def test_sigkill_of_the_mx_under_load_loses_nothing_accepted(cast, relay_cert, dns_server, tmp_path):
    dns = dns_server(txt=["sender.example,v=spf1 ip4:127.0.0.1 -all"])
    log_path = tmp_path / "runmx.log"
    outcomes: list[Outcome] = []
    for round_ in range(2):  # kill, restart, kill again
        proc, port = start_runmx(relay_cert, dns.port, log_path)
        stop = threading.Event()
        threads = [threading.Thread(target=sender_loop, args=(port, f"{round_}.{w}", outcomes, stop))
                   for w in range(4)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        start = sum(1 for o in outcomes if o.code == 250)
        while time.monotonic() < deadline and sum(1 for o in outcomes if o.code == 250) < start + 15:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)  # no cleanup of any kind
        proc.wait(10)
        stop.set()
        for thread in threads:
            thread.join(30)

    proc, port = start_runmx(relay_cert, dns.port, log_path)
    try:
        stored = {m.subject: m for m in QueuedMessage.objects.annotate(n=Count("recipients"))}
        accepted = [o for o in outcomes if o.code == 250]
        assert len(accepted) >= 30, log_path.read_text()[-3000:]
        assert any(o.code is None for o in outcomes)  # the kills cut sessions mid-message
        for o in accepted:
            assert o.subject in stored, f"{o.subject} was answered 250 but is not stored"
            assert o.text.endswith(f"queued as {stored[o.subject].queue_id}")
            assert stored[o.subject].direction == "inbound"
        assert {m.n for m in stored.values()} == {3}  # nothing half-written
        assert set(stored) <= {o.subject for o in outcomes}

        with smtplib.SMTP(HOST, port, local_hostname="mta.sender.example", timeout=20) as client:
            client.ehlo("mta.sender.example")
            reply = send(client, sender="someone@sender.example", recipients=["info@alpha.test"],
                         data=b"Subject: after the crash\r\n\r\nhi\r\n")[-1]
        assert reply[0] == 250, reply
    finally:
        proc.terminate()
        proc.wait(30)
