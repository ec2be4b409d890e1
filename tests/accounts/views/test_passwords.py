"""Forgotten passwords: the reset journey by e-mail through the product's own queue, without account enumeration;
a new password set by support staff (any user, with a reason) or a reseller admin (its customers' users)."""

import re
from email import message_from_bytes
from email.policy import default

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEntry, User
from relay.models import QueuedMessage
from tests.support.factories import PASSWORD
from tests.support.permissions import assert_matrix
from tests.support.signin import sign_in_verified

pytestmark = pytest.mark.django_db
NEW = "a brand new long passphrase 42"


@pytest.fixture
def queued_mail(settings, monkeypatch):
    """The product's own mail goes through its outbound queue; the hand-over to the workers is recorded."""
    settings.EMAIL_BACKEND = "relay.outbox.QueueEmailBackend"
    handed = []
    monkeypatch.setattr("relay.outbox.enqueue", handed.extend)
    return handed


def _link(message: QueuedMessage) -> str:
    body = message_from_bytes(bytes(message.content), policy=default).get_body(("plain",)).get_content()
    return re.search(r"https?://[^/\s]+(/password-reset/\S+/)", body)[1]


def test_full_reset_journey_through_the_outbound_queue(client, cast, queued_mail,
                                                       django_capture_on_commit_callbacks):
    User.objects.filter(pk=cast.a.user.pk).update(email="anna@alpha.test")
    assert 'href="/password-reset/"' in client.get(reverse("login")).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("password_reset"), {"email": "ANNA@alpha.test"})
    assert response.status_code == 302 and response.url == reverse("password_reset_done")
    message = QueuedMessage.objects.get()
    assert [r.address for r in message.recipients.all()] == ["anna@alpha.test"]
    assert message.mail_from == "no-reply@localhost" and message.customer_id is None
    assert queued_mail == [message.pk]  # handed to the delivery workers once committed

    link = _link(message)
    response = client.get(link)  # Django swaps the token for a session-held one before the form shows
    assert response.status_code == 302
    set_url = response.url
    response = client.post(set_url, {"new_password1": "short", "new_password2": "short"})
    assert response.status_code == 200 and "too short" in response.content.decode()
    response = client.post(set_url, {"new_password1": NEW, "new_password2": NEW})
    assert response.status_code == 302 and response.url == reverse("password_reset_complete")

    assert Client().login(username="alpha-user", password=NEW)
    assert not Client().login(username="alpha-user", password=PASSWORD)
    entry = AuditEntry.objects.filter(action="user.password").latest("pk")
    assert entry.actor_label == "alpha-user" and entry.reason == "reset through an e-mailed link"
    assert NEW not in str(entry.after) and message.content and link not in str(entry.after)
    # The link works once.
    assert "does not work any more" in Client().get(link, follow=True).content.decode()


def _without_csrf(response) -> str:
    # The CSRF token is masked afresh on every page (htmx's header, and the language switcher's form).
    page = re.sub(r'"X-CSRFToken": "\w+"', "", response.content.decode())
    return re.sub(r'name="csrfmiddlewaretoken" value="\w+"', "", page)


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client, cast, queued_mail):
    User.objects.filter(pk=cast.a.user.pk).update(email="anna@alpha.test")
    known = client.post(reverse("password_reset"), {"email": "anna@alpha.test"}, follow=True)
    unknown = client.post(reverse("password_reset"), {"email": "nobody@alpha.test"}, follow=True)
    assert known.redirect_chain == unknown.redirect_chain
    assert _without_csrf(known) == _without_csrf(unknown)
    assert QueuedMessage.objects.count() == 1


def test_support_sets_any_users_password_with_a_reason(cast):
    client = Client()
    sign_in_verified(client, cast.support)
    url = reverse("user_password", args=[cast.b.user.pk])
    response = client.post(url, {"password": NEW, "reason": ""})
    assert response.status_code == 200 and "Give a reason" in response.content.decode()
    assert f'value="{NEW}"' in response.content.decode()  # kept on the same response, to fix the reason
    assert not Client().login(username="bravo-user", password=NEW)
    response = client.post(url, {"password": NEW, "reason": "Ticket 77: locked out"})
    assert response.status_code == 302 and response.url == reverse("support:customer", args=[cast.b.customer.pk])
    assert Client().login(username="bravo-user", password=NEW)
    entry = AuditEntry.objects.filter(action="user.password").latest("pk")
    assert entry.reason == "Ticket 77: locked out" and entry.actor_label == "support"
    assert NEW not in client.get(reverse("support:customer", args=[cast.b.customer.pk])).content.decode()


def test_a_reseller_sets_its_customers_users_passwords_only(client, cast):
    assert_matrix(client, cast, reverse("user_password", args=[cast.a.user.pk]), {
        "owner": 403, "reseller": 200, "other_reseller": 404, "sibling": 403, "other_customer": 403, "direct": 403,
        "mailbox_owner": 403})
    client.force_login(cast.reseller_a_admin)
    response = client.post(reverse("user_password", args=[cast.a.user.pk]), {"password": NEW})
    assert response.status_code == 302 and response.url == reverse("reseller:customer", args=[cast.a.customer.pk])
    assert Client().login(username="alpha-user", password=NEW)
    assert client.post(reverse("user_password", args=[cast.reseller_b_admin.pk]), {"password": NEW}).status_code == 404


def test_reset_links_are_limited_per_hour_audited_and_the_answer_never_changes(client, cast, queued_mail):
    User.objects.filter(pk=cast.a.user.pk).update(email="anna@alpha.test")
    answers = [_without_csrf(client.post(reverse("password_reset"), {"email": "anna@alpha.test"}, follow=True))
               for _ in range(5)]
    assert len(set(answers)) == 1
    assert QueuedMessage.objects.count() == 3  # no more in an hour: the form cannot flood an inbox
    requests = AuditEntry.objects.filter(action="user.password_reset_request")
    assert requests.count() == 3 and {e.customer_id for e in requests} == {cast.a.customer.pk}
    client.force_login(cast.a.user)
    assert "User password reset link requested" in client.get(reverse("security:audit_log")).content.decode()
