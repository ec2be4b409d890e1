"""The relay's Argon2 pool: every core in all, and a bounded queue. A cold-login storm beyond RELAY_AUTH_HASH_QUEUE
is answered 454 4.7.0 at once, not after the work queued before it, while sessions already logged in keep sending."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import REGISTRY

from accounts.services.mailboxes import mailbox_create
from relay.management.commands import runrelay
from relay.smtpd import threads
from relay.submission import auth
from tests.support.processes import command_line, descendants
from tests.support.smtp import auth_plain, message, send, submission_client

pytestmark = pytest.mark.django_db(transaction=True)

OK = (235, b"2.7.0 Authentication successful")
BUSY = (454, b"4.7.0 Temporary authentication failure, please try again later")


@pytest.fixture
def hold_hashes(monkeypatch):
    """hold() -> (release, started): from then on every slow verification waits for `release`, so the hashes stay
    under way as long as the test says."""
    release, started = threading.Event(), []
    verify = auth.verify

    def held(**kwargs):
        started.append(kwargs["candidate"])
        assert release.wait(30)
        return verify(**kwargs)

    def hold():
        monkeypatch.setattr(auth, "verify", held)
        return release, started

    yield hold
    release.set()


def cold_logins(cast, count: int) -> list[tuple[str, str]]:
    logins = []
    for n in range(count):
        password = f"cold password number {n}"
        mailbox = mailbox_create(actor=None, domain=cast.a.domain, local_part=f"cold{n}", password=password,
                                 smtp_enabled=True)
        logins.append((mailbox.address, password))
    return logins


def busy() -> float:
    return REGISTRY.get_sample_value("hostingmail_smtp_auth_total", {"result": "busy"}) or 0.0


def wait_for(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_storm_beyond_the_hash_queue_gets_454_at_once_while_a_warm_session_sends(
        relay_factory, settings, cast, login, hold_hashes):
    settings.RELAY_AUTH_HASH_QUEUE = 2
    relay = relay_factory(hash_workers=1)
    warm = submission_client(relay.submission, auth=login)  # logged in before the storm
    storm = cold_logins(cast, 6)
    queued, beyond, later = storm[:2], storm[2:5], storm[5]
    release, started = hold_hashes()
    busy_before = busy()
    clients = [submission_client(relay.submission) for _ in queued]
    with ThreadPoolExecutor(len(queued)) as pool:
        waiting = [pool.submit(auth_plain, client, *credentials) for client, credentials in zip(clients, queued)]
        wait_for(lambda: relay.relay.db._hashes == 2)
        for credentials in beyond:
            with submission_client(relay.submission) as client:
                client.sock.settimeout(5)  # an AUTH that queued behind the held hashes would wait for them
                began = time.monotonic()
                assert auth_plain(client, *credentials) == BUSY
                assert time.monotonic() - began < 5
        # A session logged in before the storm is served meanwhile.
        replies = send(warm, sender=login[0], recipients=["someone@example.org"], data=message(sender=login[0]))
        assert replies[-1][0] == 250, replies
        assert not any(future.done() for future in waiting)
        assert len(started) == 1  # one hash worker: one AUTH hashing, one waiting, the refused ones never queued
        assert busy() - busy_before == 3
        release.set()
        assert [future.result(timeout=30) for future in waiting] == [OK, OK]
    for client in [*clients, warm]:
        client.quit()
    wait_for(lambda: relay.relay.db._hashes == 0)
    with submission_client(relay.submission) as client:  # the queue drained: a cold login is verified again
        assert auth_plain(client, *later) == OK


def test_runrelay_starts_its_hashing_processes_before_it_listens(relay_process):
    """Listening means ready for a cold mailbox login too: its hash does not wait for a process to start, nor does
    the first storm pay for the starts."""
    process = relay_process(env={"RELAY_HASH_WORKERS": "2"})  # no AUTH yet
    workers = [pid for pid in descendants(process.proc.pid) if "spawn_main" in command_line(pid)]
    assert len(workers) == 2, [command_line(pid) for pid in descendants(process.proc.pid)]


def test_the_relay_processes_hash_on_every_core_in_all(monkeypatch, settings):
    monkeypatch.setattr(threads, "cores", lambda: 4)
    assert [threads.hash_workers_for(n) for n in (1, 2, 3, 4, 8)] == [4, 2, 2, 1, 1]
    settings.RELAY_HASH_WORKERS = 3
    assert threads.hash_workers_for(2) == 3


def _handed_to_two_processes(monkeypatch, relay_cert, name: str) -> str:
    """The value of the environment variable `name` that `runrelay --processes 2` hands its supervised processes."""
    monkeypatch.setenv(name, "")  # restored (removed) after the test
    monkeypatch.delenv(name)
    seen = {}
    monkeypatch.setattr(runrelay.Command, "_supervise",
                        lambda self, processes, options: seen.update(value=runrelay.os.environ[name]))
    cert, key = relay_cert
    runrelay.Command().run_from_argv(["manage.py", "runrelay", "--processes", "2", "--submission", "127.0.0.1:0",
                                      "--smtps", "off", "--cert", str(cert), "--key", str(key)])
    return seen["value"]


def test_runrelay_gives_each_supervised_process_its_share_of_the_cores(monkeypatch, settings, relay_cert):
    monkeypatch.setattr(threads, "cores", lambda: 4)
    assert _handed_to_two_processes(monkeypatch, relay_cert, "RELAY_HASH_WORKERS") == "2"


def test_the_relay_processes_share_the_write_lanes_of_one(settings):
    assert [threads.write_lanes_for(n) for n in (1, 2, 3)] == [2, 1, 1]
    settings.RELAY_WRITE_LANES = 3
    assert threads.write_lanes_for(2) == 3


def test_runrelay_gives_each_supervised_process_its_share_of_the_write_lanes(monkeypatch, settings, relay_cert):
    assert _handed_to_two_processes(monkeypatch, relay_cert, "RELAY_WRITE_LANES") == "1"
    lanes = {}
    for setting in (1, 0):  # 1: what such a process reads from its environment; 0: a process of its own
        settings.RELAY_WRITE_LANES = setting
        runner = threads.DbRunner(4, 1)
        lanes[setting] = len(runner.lanes)
        runner.shutdown()
    assert lanes == {1: 1, 0: 1 if threads.connections["default"].vendor == "sqlite" else 2}
