"""Racing senders in separate OS processes never overshoot a sending limit.

PostgreSQL: three processes (row locks in a fixed order); SQLite: two (its IMMEDIATE transactions serialise
writers, so more processes add only waiting).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection, transaction

from accounts import quotas, services
from accounts.models import Domain, SendUsage
from tests.factories import make_tenant

ROOT = Path(__file__).resolve().parents[2]


def process_count() -> int:
    return 3 if connection.vendor == "postgresql" else 2


def race(senders: list[tuple[str, int]], attempts: int, hold: float = 0.02) -> list[dict]:
    """Start one racer process per (kind, pk), release them together, return what each reports."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-m", "tests.relay.quota_racer", str(connection.settings_dict["NAME"]),
                          kind, str(pk), str(attempts), str(hold)],
                         cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for kind, pk in senders
    ]
    try:
        for proc in procs:
            line = proc.stdout.readline()
            if line.strip() != "ready":
                pytest.fail(f"racer did not start: {line!r}")
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


@pytest.mark.django_db(transaction=True)
def test_racing_processes_get_exactly_the_last_ten_units():
    tenant = make_tenant("Racer", "racer.test")
    by_mailbox = services.credential_create(actor=None, domain=tenant.domain, mailbox=tenant.mailbox).credential
    domain_wide = services.credential_create(actor=None, domain=tenant.domain).credential
    Domain.objects.filter(pk=tenant.domain.pk).update(send_per_hour=30)
    with transaction.atomic():
        quotas.check_and_count(mailbox=tenant.mailbox, recipients=20)

    # Three different senders share the domain's limit: only the domain row serialises them.
    senders = [("mailbox", tenant.mailbox.pk), ("credential", by_mailbox.pk), ("credential", domain_wide.pk)]
    results = race(senders[:process_count()], attempts=10)

    assert sum(r["accepted"] for r in results) == 10
    assert sum(r["refused"] for r in results) == 10 * process_count() - 10
    for scope, pk in [("domain", tenant.domain.pk), ("customer", tenant.customer.pk)]:
        assert quotas.usage(scope=scope, scope_id=pk) == {"hour": 30, "day": 30}
    per_sender = sum(SendUsage.objects.filter(scope="credential").values_list("count", flat=True))
    assert per_sender == sum(r["accepted"] for r in results[1:])
