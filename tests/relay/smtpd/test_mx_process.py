"""`manage.py runmx` on the relay's machinery: processes sharing the port, /health, SIGHUP, SIGTERM; the PROXY
protocol from a trusted load balancer gives the real client address (in the Received line and to SPF)."""

import signal
import smtplib
import subprocess
import sys
import time
import urllib.request

import pytest

from relay.models import QueuedMessage
from tests.peers import free_port, wait_for_port
from tests.relay.smtpd.test_proxy import ProxiedSMTP, proxy_v1
from tests.support.relays import ROOT, child_env
from tests.support.smtp import HOST, send

pytestmark = pytest.mark.django_db(transaction=True)


def test_runmx_two_processes_health_sighup_and_sigterm(cast, relay_cert, dns_server, tmp_path):
    dns = dns_server(txt=["sender.example,v=spf1 ip4:127.0.0.1 -all"])
    port, http = free_port(), free_port()
    log = tmp_path / "runmx.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "runmx", "--listen", f"{HOST}:{port}", "--http",
             f"{HOST}:{http}", "--cert", str(relay_cert[0]), "--key", str(relay_cert[1]), "--processes", "2"],
            cwd=ROOT, env=child_env(DNS_NAMESERVERS="127.0.0.1", DNS_PORT=str(dns.port)), stdout=out,
            stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc=proc, timeout=60)
        wait_for_port(http, proc=proc, timeout=60)
        deadline = time.monotonic() + 60  # both processes ready (signals handled) before the SIGHUP below
        while log.read_text().count("MX listening") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        with urllib.request.urlopen(f"http://{HOST}:{http}/health", timeout=10) as response:
            assert (response.status, response.read()) == (200, b"ok\n")
        proc.send_signal(signal.SIGHUP)  # the supervisor passes it on: certificates reloaded, nothing dropped
        time.sleep(0.5)
        for n in range(4):  # the kernel spreads connections over both processes
            with smtplib.SMTP(HOST, port, local_hostname="mta.sender.example", timeout=20) as client:
                client.ehlo("mta.sender.example")
                assert "AUTH" not in client.ehlo_resp.decode()
                reply = send(client, sender="someone@sender.example", recipients=["info@alpha.test"],
                             data=f"Subject: process {n}\r\n\r\nhi\r\n".encode())[-1]
                assert reply[0] == 250, (reply, log.read_text())
        assert QueuedMessage.objects.filter(direction="inbound").count() == 4
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.terminate()  # the supervisor stops its processes too
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    assert "supervising 2" in log.read_text()


def test_proxy_header_from_a_trusted_balancer_gives_the_real_client(mx_factory, cast, dns_server):
    # SPF allows 203.0.113.9 only: it passes only if the MX checks the address the PROXY header carries.
    dns_server(txt=["sender.example,v=spf1 ip4:203.0.113.9 -all"])
    mx = mx_factory(proxy_from=["127.0.0.1"])
    with ProxiedSMTP(proxy_v1(), HOST, mx.port, local_hostname="mta.sender.example", timeout=10) as client:
        client.ehlo("mta.sender.example")
        reply = send(client, sender="someone@sender.example", recipients=["info@alpha.test"],
                     data=b"From: someone@sender.example\r\nSubject: proxied\r\n\r\nhi\r\n")[-1]
    assert reply[0] == 250, reply
    message = QueuedMessage.objects.get()
    assert message.client_ip == "203.0.113.9" and message.sender_authenticated
    assert bytes(message.content).startswith(b"Received: from mta.sender.example ([203.0.113.9])")


def test_a_suspension_or_deletion_is_refused_at_the_next_rcpt_of_every_runmx_process(cast, relay_cert, tmp_path):
    """The recipients an MX process remembers (for an hour here) are forgotten as soon as the route generation moves:
    sessions held open on both processes of a running `runmx` get the new answer at their very next RCPT."""
    from accounts.services.aliases import alias_delete, alias_create
    from accounts.services.suspension import restore, suspend

    alias = alias_create(actor=None, domain=cast.a.domain, local_part="sales", destinations=["info@alpha.test"])
    port = free_port()
    log = tmp_path / "runmx.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "runmx", "--listen", f"{HOST}:{port}", "--cert",
             str(relay_cert[0]), "--key", str(relay_cert[1]), "--processes", "2"],
            cwd=ROOT, env=child_env(MX_RECIPIENT_CACHE_SECONDS="3600"), stdout=out, stderr=subprocess.STDOUT)
    sessions = []
    try:
        wait_for_port(port, proc=proc, timeout=60)
        deadline = time.monotonic() + 60
        while log.read_text().count("MX listening") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        # Several sessions, so that both processes hold some (the kernel spreads the connections).
        sessions = [smtplib.SMTP(HOST, port, local_hostname="mta.sender.example", timeout=20) for _ in range(6)]
        for client in sessions:
            client.ehlo()

        def answers(address: str) -> set[str]:
            replies = set()
            for client in sessions:
                client.rset()
                assert client.mail("someone@sender.example")[0] == 250
                code, text = client.rcpt(address)
                replies.add(f"{code} {text.decode()}")
            return replies

        assert answers("sales@alpha.test") == {"250 2.1.5 Recipient OK"}  # now remembered by every session's MX
        assert answers("info@alpha.test") == {"250 2.1.5 Recipient OK"}
        alias_delete(actor=None, alias=alias)
        assert answers("sales@alpha.test") == {"550 5.1.1 User unknown"}
        assert answers("info@alpha.test") == {"250 2.1.5 Recipient OK"}
        suspend(actor=None, obj=cast.a.mailbox, reason="abuse report")
        assert answers("info@alpha.test") == {"550 5.2.1 Mailbox disabled, not accepting messages"}
        restore(actor=None, obj=cast.a.mailbox, reason="cleared")
        assert answers("info@alpha.test") == {"250 2.1.5 Recipient OK"}
        suspend(actor=None, obj=cast.a.customer, reason="unpaid")
        assert answers("info@alpha.test") == {"550 5.2.1 Mailbox disabled, not accepting messages"}
        assert QueuedMessage.objects.count() == 0
    finally:
        for client in sessions:
            client.close()
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
