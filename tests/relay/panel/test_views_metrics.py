"""The panel's /metrics sums what relay processes counted, through PROMETHEUS_MULTIPROC_DIR."""

import pytest

from relay.models import QueuedMessage
from tests.support.smtp import auth_plain, message, send, submission_client
from tests.test_health_metrics import samples as panel_metrics

pytestmark = pytest.mark.django_db(transaction=True)


def test_panel_metrics_show_the_counters_of_relay_processes(client, relay_process, login, tmp_path, monkeypatch):
    shared = tmp_path / "prometheus"
    shared.mkdir()
    process = relay_process(processes=2, env={"PROMETHEUS_MULTIPROC_DIR": str(shared)})
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(shared))
    before = panel_metrics(client)

    for _ in range(3):
        with submission_client(process.submission, auth=login) as smtp:
            replies = send(smtp, sender=login[0], recipients=["bob@example.org", "carol@example.org"],
                           data=message(sender=login[0]))
            assert replies[-1][0] == 250, replies
    with submission_client(process.submission) as smtp:
        assert auth_plain(smtp, login[0], "not the password")[0] == 535

    after = panel_metrics(client)

    def moved(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    # At least our four: the fixture's own port probe may be counted after `before` was read.
    assert moved("hostingmail_smtp_sessions_total", listener="submission") >= 4
    assert moved("hostingmail_smtp_auth_total", result="success") == 3
    assert moved("hostingmail_smtp_auth_total", result="failure") == 1
    assert moved("hostingmail_accepted_messages_total") == 3
    assert moved("hostingmail_accepted_recipients_total") == 6
    assert moved("hostingmail_accepted_bytes_total") > 0
    # The queue depth is read from the database at scrape time, beside the summed counters.
    assert after[("hostingmail_queue_messages", (("state", "queued"),))] == QueuedMessage.objects.filter(
        state="queued").count() == 3
    assert process.stop() == 0
