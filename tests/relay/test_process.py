"""`manage.py runrelay` as a real process: starts on the test database, health and metrics, SIGTERM, SIGHUP."""

import signal
import urllib.request

import pytest

from relay.models import QueuedMessage
from tests.relay.conftest import message, send, smtps_client, submission_client

pytestmark = pytest.mark.django_db(transaction=True)


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_runrelay_process_accepts_mail_into_the_test_database(relay_process, login):
    process = relay_process()
    before = http_get(process.http, "/metrics")[1]
    with submission_client(process.submission, auth=login) as client:
        replies = send(client, sender=login[0], recipients=["bob@example.org"], data=message(sender=login[0]))
    assert replies[-1][0] == 250, replies
    assert QueuedMessage.objects.filter(mail_from=login[0]).count() == 1
    with smtps_client(process.smtps, auth=login) as client:
        client.noop()
    assert http_get(process.http, "/health") == (200, "ok\n")
    status, metrics = http_get(process.http, "/metrics")
    assert status == 200
    moved = {name: metric(metrics, name) - metric(before, name) for name in (
        'hostingmail_smtp_sessions_total{listener="submission"}', 'hostingmail_smtp_sessions_total{listener="smtps"}',
        'hostingmail_smtp_auth_total{result="success"}', "hostingmail_accepted_messages_total",
        "hostingmail_accepted_recipients_total")}
    assert list(moved.values()) == [1, 1, 2, 1, 1]
    assert metric(metrics, "hostingmail_accepted_bytes_total") > metric(before, "hostingmail_accepted_bytes_total")
    assert process.stop() == 0
