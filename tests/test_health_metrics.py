import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import OperationalError, connection
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from relay import metrics as relay_metrics
from relay.models import QueuedMessage

pytestmark = pytest.mark.django_db


def test_healthz_is_ok_while_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_is_503_when_the_database_is_unreachable(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "error"


def samples(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def queued(values: dict) -> float:
    return values[("hostingmail_queue_messages", (("state", "queued"),))]


def test_queue_depth_gauge_moves_when_a_message_is_queued(client):
    before = samples(client)
    assert {state for (name, labels), _ in before.items() if name == "hostingmail_queue_messages"
            for _, state in labels} == set(QueuedMessage.State.values)
    QueuedMessage.objects.create(mail_from="a@example.org")
    QueuedMessage.objects.create(mail_from="b@example.org", state="deferred")
    after = samples(client)
    assert queued(after) == queued(before) + 1
    deferred = ("hostingmail_queue_messages", (("state", "deferred"),))
    assert after[deferred] == before[deferred] + 1


def test_oldest_waiting_message_age(client):
    assert samples(client)[("hostingmail_queue_oldest_waiting_seconds", ())] == 0
    QueuedMessage.objects.create(mail_from="a@example.org", state="delivered",
                                 created_at=timezone.now() - timedelta(hours=5))
    QueuedMessage.objects.create(mail_from="a@example.org", state="deferred",
                                 created_at=timezone.now() - timedelta(minutes=30))
    age = samples(client)[("hostingmail_queue_oldest_waiting_seconds", ())]
    assert 1800 <= age < 1900


def test_metrics_expose_the_relay_counters(client):
    before = samples(client)
    relay_metrics.AUTH.labels(result="failure").inc()
    relay_metrics.ACCEPTED_BYTES.inc(2048)
    after = samples(client)
    key = ("hostingmail_smtp_auth_total", (("result", "failure"),))
    assert after[key] == before.get(key, 0) + 1
    assert after[("hostingmail_accepted_bytes_total", ())] == before.get(("hostingmail_accepted_bytes_total", ()), 0) + 2048


def test_metrics_refused_outside_the_allowed_addresses(client, settings):
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.5").status_code == 403
    settings.METRICS_ALLOWED_IPS = ["203.0.113.0/24"]
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.5").status_code == 200
    assert client.get("/metrics").status_code == 403  # loopback no longer listed


def test_metrics_sum_every_process_from_the_multiprocess_directory(client, tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    # Two other processes (as two relays would) count in the shared directory.
    code = "from relay import metrics; metrics.ACCEPTED_MESSAGES.inc(3)"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
    values = samples(client)
    assert values[("hostingmail_accepted_messages_total", ())] == 6
    assert ("hostingmail_queue_messages", (("state", "queued"),)) in values
