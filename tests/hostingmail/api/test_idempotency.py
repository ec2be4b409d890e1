"""Idempotency-Key on POST: a billing system's retry never makes a second object."""

import threading

import pytest
from django.db import connection

from accounts.models import ApiIdempotencyKey, Customer, SmtpCredential

NEW_CUSTOMER = {"name": "Retry Ltd", "external_id": "WHMCS-42", "username": "retry-admin",
                "password": "a long enough password 9", "max_domains": 2}


def _post(client, path, body, key):
    return client.post(path, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_the_same_post_twice_makes_one_customer_and_answers_the_same(keys):
    client = keys.client("reseller_a")
    first = _post(client, "/api/v1/customers/", NEW_CUSTOMER, "order-42")
    second = _post(client, "/api/v1/customers/", NEW_CUSTOMER, "order-42")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() and second["Idempotent-Replayed"] == "true"
    assert Customer.objects.filter(external_id="WHMCS-42").count() == 1


@pytest.mark.django_db
def test_a_credentials_secret_is_replayed_but_not_stored_in_clear(keys, cast):
    client = keys.client("customer_a")
    body = {"mailbox": cast.a.mailbox.pk, "description": "shop"}
    first = _post(client, "/api/v1/credentials/", body, "cred-1")
    second = _post(client, "/api/v1/credentials/", body, "cred-1")
    assert first.json() == second.json() and first.json()["secret"]
    assert SmtpCredential.objects.filter(description="shop").count() == 1
    stored = ApiIdempotencyKey.objects.get(key="cred-1")
    assert first.json()["secret"] not in str(stored.body)


@pytest.mark.django_db
def test_the_same_key_for_another_request_is_refused(keys):
    client = keys.client("reseller_a")
    assert _post(client, "/api/v1/customers/", NEW_CUSTOMER, "k").status_code == 201
    other = _post(client, "/api/v1/customers/", {**NEW_CUSTOMER, "name": "Other"}, "k")
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"


@pytest.mark.django_db
def test_keys_are_per_api_key_and_an_error_is_replayed_too(keys, cast):
    a, b = keys.client("reseller_a"), keys.client("reseller_b")
    assert _post(a, "/api/v1/customers/", NEW_CUSTOMER, "same").status_code == 201
    # Another API key may use the same Idempotency-Key for its own request.
    assert _post(b, "/api/v1/customers/", {**NEW_CUSTOMER, "username": "retry-b"}, "same").status_code == 201
    bad = {**NEW_CUSTOMER, "name": "", "username": "x"}
    first, second = _post(a, "/api/v1/customers/", bad, "bad"), _post(a, "/api/v1/customers/", bad, "bad")
    assert first.status_code == second.status_code == 400 and first.json() == second.json()
    assert "name" in first.json()["error"]["fields"]


@pytest.mark.django_db
def test_without_the_header_each_post_is_its_own(keys):
    client = keys.client("reseller_a")
    assert client.post("/api/v1/customers/", NEW_CUSTOMER, content_type="application/json").status_code == 201
    again = client.post("/api/v1/customers/", NEW_CUSTOMER, content_type="application/json")
    assert again.status_code == 400  # the name is taken: the service says so, per field


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_make_one_object(keys):
    """Eight requests with the same key at once: one customer, eight identical answers. On PostgreSQL the others
    wait on the unique constraint and replay; on SQLite the write lock serialises them."""
    answers, barrier = [], threading.Barrier(8)

    def post():
        try:
            barrier.wait()
            response = _post(keys.client("reseller_a"), "/api/v1/customers/", NEW_CUSTOMER, "race")
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Customer.objects.filter(external_id="WHMCS-42").count() == 1
    assert len(answers) == 8 and {code for code, _ in answers} == {201}
    assert all(body == answers[0][1] for _, body in answers)
