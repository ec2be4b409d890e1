"""Support console pages: who may open them, the customer page, limit changes and suspensions."""

from unittest import mock

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import quotas
from accounts.models import AuditEntry, Status
from accounts.services.credentials import credential_create
from accounts.services.mailboxes import mailbox_create
from relay.models import AuthLockout, QueuedMessage
from tests.support.quotas import check_and_count

pytestmark = pytest.mark.django_db


def test_support_console_needs_a_two_factor_verified_support_session(client, cast):
    url = reverse("support:home")
    response = client.get(url)
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    for user in (cast.a.user, cast.reseller_a_admin):
        other = Client()
        other.force_login(user)
        assert other.get(url).status_code == 403
    unverified = Client()
    unverified.force_login(cast.support)
    response = unverified.get(url)
    assert response.status_code == 302 and response.url.startswith(reverse("security:code"))


def test_customer_page_shows_plan_usage_domains_messages_lockouts_and_audit(support_client, cast):
    customer = cast.a.customer
    check_and_count(mailbox=cast.a.mailbox, recipients=3)
    message = QueuedMessage.objects.create(customer=customer, mail_from="info@alpha.test", subject="Invoice 42")
    AuthLockout.objects.create(kind="username", value="info@alpha.test", customer=customer, failures=10,
                               locked_until=timezone.now() + timezone.timedelta(minutes=15))
    cast.a.domain.dns_status = {"mx": {"status": "found", "expected": "mx.example.net", "found": ["mx.example.net"]}}
    cast.a.domain.save()
    response = support_client.get(reverse("support:customer", args=[customer.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Alpha" in page and "Reseller A" in page
    assert response.context["sending"][0] == {"label": "Sent this hour", "used": 3, "limit": None}
    assert response.context["plan_usage"]["mailboxes"] == {"used": 1, "limit": customer.max_mailboxes}
    assert "alpha.test" in page and "MX found" in page
    assert message.queue_id in page and reverse("relay:message_detail", args=[message.pk]) in page
    lockout = AuthLockout.objects.get()
    assert reverse("relay:lockout_lift", args=[lockout.pk]) in page
    assert "customer.create" in page
    assert "bravo.test" not in page


def test_customer_page_query_count_does_not_grow_with_the_customer(support_client, cast):
    url = reverse("support:customer", args=[cast.a.customer.pk])
    credential_create(actor=None, domain=cast.a.domain)  # every section has rows in both runs
    support_client.get(url)
    with CaptureQueriesContext(connection) as small:
        support_client.get(url)
    for n in range(5):
        mailbox = mailbox_create(actor=None, domain=cast.a.domain, local_part=f"user{n}",
                                 password="correct horse battery", quota_mb=1)
        credential_create(actor=None, domain=cast.a.domain, mailbox=mailbox)
        QueuedMessage.objects.create(customer=cast.a.customer, mail_from=mailbox.address)
    with CaptureQueriesContext(connection) as large:
        support_client.get(url)
    assert len(large) == len(small)


def test_support_cannot_open_a_customer_that_does_not_exist(support_client):
    assert support_client.get(reverse("support:customer", args=[999999])).status_code == 404


@pytest.mark.parametrize("kind", ["customer", "domain", "mailbox", "credential"])
def test_raise_a_sending_limit_with_a_reason_is_audited_with_before_and_after(support_client, cast, kind):
    obj = {"customer": cast.a.customer, "domain": cast.a.domain, "mailbox": cast.a.mailbox,
           "credential": credential_create(actor=None, domain=cast.a.domain).credential}[kind]
    url = reverse(f"support:{kind}_limits", args=[obj.pk])
    form = support_client.get(url).context["form"]
    data = {name: ("" if value is None else value) for name, value in form.initial.items()}
    data.update({name: form.fields[name].initial if form.fields[name].initial is not None else ""
                 for name in form.fields if name != "reason"})
    data.update(send_per_hour=50, reason="customer asked for a newsletter")
    response = support_client.post(url, data)
    assert response.status_code == 302, response.context["form"].errors
    assert response.url == reverse("support:customer", args=[cast.a.customer.pk])
    obj.refresh_from_db()
    assert obj.send_per_hour == 50
    entry = AuditEntry.objects.filter(action__endswith=".limits").latest("id")
    assert entry.before == {"send_per_hour": None} and entry.after == {"send_per_hour": 50}
    assert entry.reason == "customer asked for a newsletter" and entry.actor == cast.support
    assert "saved" in support_client.get(response.url).content.decode()  # the flash message reaches the page


def test_limit_change_without_a_reason_is_refused(support_client, cast):
    url = reverse("support:customer_limits", args=[cast.a.customer.pk])
    response = support_client.post(url, {"max_domains": 9, "max_mailboxes": 50, "max_storage_mb": 10240,
                                         "max_message_size_mb": 10, "max_recipients": 10, "reason": ""})
    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    cast.a.customer.refresh_from_db()
    assert cast.a.customer.max_domains == 5


def test_a_broken_limit_rule_shows_next_to_the_field(support_client, cast):
    # The mailbox has 100 MB allocated; the plan cannot go below what is allocated.
    customer = cast.a.customer
    url = reverse("support:customer_limits", args=[customer.pk])
    response = support_client.post(url, {"max_domains": 0, "max_mailboxes": 50, "max_storage_mb": 10240,
                                         "max_message_size_mb": 10, "max_recipients": 10, "max_aliases": 100,
                                         "reason": "downgrade"})
    assert response.status_code == 200
    assert response.context["form"].errors.get("max_domains")
    customer.refresh_from_db()
    assert customer.max_domains == 5


def test_a_lowered_limit_is_effective_for_the_relay_at_once(support_client, cast):
    credential = credential_create(actor=None, domain=cast.a.domain).credential
    url = reverse("support:credential_limits", args=[credential.pk])
    support_client.post(url, {"send_per_hour": 2, "send_per_day": "", "reason": "spam complaint"})
    check_and_count(credential=credential, recipients=2)
    with pytest.raises(quotas.QuotaExceeded):
        check_and_count(credential=credential, recipients=1)


def test_suspend_and_restore_a_customer_from_the_console(support_client, cast, django_capture_on_commit_callbacks):
    url = reverse("support:customer_status", args=[cast.a.customer.pk])
    assert support_client.post(url, {"reason": ""}).status_code == 200  # reason required
    response = support_client.post(url, {"reason": "chargeback"})
    assert response.status_code == 302
    cast.a.customer.refresh_from_db()
    assert cast.a.customer.status == Status.SUSPENDED
    page = support_client.get(reverse("support:customer", args=[cast.a.customer.pk])).content.decode()
    assert "chargeback" in page and "Restore" in page
    with mock.patch("accounts.services.workers.current_app.send_task") as send_task:
        with django_capture_on_commit_callbacks(execute=True):
            support_client.post(url, {"reason": "paid"})
    send_task.assert_called_once_with("relay.tasks.release_held", args=[cast.a.customer.pk])
    cast.a.customer.refresh_from_db()
    assert cast.a.customer.status == Status.ACTIVE


@pytest.mark.parametrize("kind", ["domain", "mailbox", "credential"])
def test_suspend_and_restore_domain_mailbox_credential(support_client, cast, kind):
    obj = {"domain": cast.a.domain, "mailbox": cast.a.mailbox,
           "credential": credential_create(actor=None, domain=cast.a.domain).credential}[kind]
    url = reverse(f"support:{kind}_status", args=[obj.pk])
    assert support_client.post(url, {"reason": "investigating"}).status_code == 302
    assert support_client.post(url, {"reason": "resolved"}).status_code == 302
    actions = list(AuditEntry.objects.filter(object_id=str(obj.pk), action__contains=".s").values_list("action", "reason"))
    assert len([a for a in actions if a[0].endswith(".suspend")]) == 1
    assert AuditEntry.objects.filter(action__endswith=".restore", reason="resolved").count() == 1


@pytest.mark.parametrize("kind", ["customer", "domain", "mailbox", "credential"])
def test_suspending_from_the_console_may_hold_what_it_queued(support_client, cast, kind,
                                                              django_capture_on_commit_callbacks):
    obj = {"customer": cast.a.customer, "domain": cast.a.domain, "mailbox": cast.a.mailbox,
           "credential": credential_create(actor=None, domain=cast.a.domain).credential}[kind]
    url = reverse(f"support:{kind}_status", args=[obj.pk])
    assert 'name="hold"' in support_client.get(url).content.decode()
    with mock.patch("accounts.services.workers.current_app.send_task") as send_task, \
            django_capture_on_commit_callbacks(execute=True):
        assert support_client.post(url, {"reason": "phished", "hold": "on"}).status_code == 302
    assert send_task.call_args.args == ("relay.tasks.hold_queued",)
    assert send_task.call_args.kwargs["kwargs"]["scope"] == kind
    assert send_task.call_args.kwargs["kwargs"]["object_id"] == obj.pk


def test_support_enters_and_sees_the_message_size_in_mb(support_client, cast):
    from accounts.models import Customer

    Customer.objects.filter(pk=cast.a.customer.pk).update(max_message_size=10_000_000)
    url = reverse("support:customer_limits", args=[cast.a.customer.pk])
    form = support_client.get(url).context["form"]
    assert form.fields["max_message_size_mb"].label == "Largest message (MB)"
    assert form["max_message_size_mb"].initial == 10
    data = {name: "" if form[name].initial is None else form[name].initial for name in form.fields} | {
        "reason": "more domains", "max_domains": 6}
    assert support_client.post(url, data).status_code == 302
    customer = Customer.objects.get(pk=cast.a.customer.pk)
    assert customer.max_message_size == 10_000_000 and customer.max_domains == 6  # left as shown: unchanged
    support_client.post(url, data | {"max_message_size_mb": 30, "reason": "bigger attachments"})
    assert Customer.objects.get(pk=cast.a.customer.pk).max_message_size == 30 * 1024 * 1024
