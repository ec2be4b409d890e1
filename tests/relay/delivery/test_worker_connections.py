"""Workers keep their database connections from one task to the next, as Django keeps them between requests,
instead of Celery's default of a new connection for every task."""

import time

import pytest
from celery.fixups.django import DjangoWorkerFixup
from celery.signals import task_postrun, task_prerun
from django.db import connection

from hostingmail import celery
from relay.delivery.tasks import sweep_queue


@pytest.fixture
def worker_database(settings):
    """The settings of a worker process, restored afterwards."""
    database = settings.DATABASES["default"]
    before = {key: database.get(key) for key in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS")}
    celery._keep_sqlite_connections()
    yield database
    database.update(before)


def select_one():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def run_task_signals(fixup, task, body=select_one):
    """What a worker does around a task: Celery's Django fix-up and the handlers hostingmail adds."""
    fixup.on_task_prerun(sender=task)
    task_prerun.send(sender=task, task_id="t", task=task, args=(), kwargs={})
    body()
    fixup.on_task_postrun(sender=task)
    task_postrun.send(sender=task, task_id="t", task=task, args=(), kwargs={}, retval=None, state="SUCCESS")


@pytest.mark.django_db(transaction=True)
def test_consecutive_tasks_use_one_database_connection(worker_database):
    fixup, task = DjangoWorkerFixup(celery.app), sweep_queue
    connection.close()  # opened before the worker's settings applied
    connection.ensure_connection()
    opened = connection.connection
    for _ in range(3):
        run_task_signals(fixup, task)
    assert connection.connection is opened


@pytest.mark.django_db(transaction=True)
def test_a_connection_past_its_age_is_closed_after_the_task(worker_database):
    worker_database["CONN_MAX_AGE"] = 60
    fixup, task = DjangoWorkerFixup(celery.app), sweep_queue
    connection.close()
    connection.ensure_connection()
    connection.close_at = time.monotonic() - 1
    run_task_signals(fixup, task, body=lambda: None)
    assert connection.connection is None


@pytest.mark.django_db(transaction=True)
def test_only_a_connection_idle_for_a_while_is_health_checked_before_a_task(worker_database, monkeypatch):
    worker_database["CONN_HEALTH_CHECKS"] = True
    fixup, task = DjangoWorkerFixup(celery.app), sweep_queue
    connection.close()
    connection.ensure_connection()
    connection.task_finished_at = 0  # left by an earlier test's tasks
    checks = []
    real = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or real())

    run_task_signals(fixup, task)  # the first: nothing known about the connection yet
    assert len(checks) == 1
    for _ in range(3):
        run_task_signals(fixup, task)
    assert len(checks) == 1, "back-to-back tasks: no round trip to check"
    connection.task_finished_at -= celery.ALIVE_WITHOUT_CHECK + 1
    run_task_signals(fixup, task)
    assert len(checks) == 2
