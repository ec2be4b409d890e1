"""Suspending and restoring customers, domains, mailboxes and credentials: who may, what it does, the audit."""

from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import AuditEntry, Domain, Status
from accounts.selectors import may_sign_in
from accounts.services.credentials import credential_create, credential_revoke
from accounts.services.domains import domain_create
from accounts.services.suspension import restore, suspend

pytestmark = pytest.mark.django_db


def test_suspend_customer_records_reason_and_before_after(cast):
    suspend(actor=cast.support, obj=cast.a.customer, reason="unpaid invoice", client_ip="192.0.2.1")
    cast.a.customer.refresh_from_db()
    assert cast.a.customer.status == Status.SUSPENDED
    assert cast.a.customer.status_reason == "unpaid invoice"
    entry = AuditEntry.objects.get(action="customer.suspend")
    assert entry.before["status"] == "active" and entry.after["status"] == "suspended"
    assert entry.reason == "unpaid invoice" and entry.client_ip == "192.0.2.1"
    assert entry.actor == cast.support and entry.customer == cast.a.customer and entry.reseller == cast.reseller_a


def test_reason_is_required(cast):
    with pytest.raises(ValidationError) as exc:
        suspend(actor=cast.support, obj=cast.a.customer, reason="  ")
    assert "reason" in exc.value.message_dict
    cast.a.customer.refresh_from_db()
    assert cast.a.customer.status == Status.ACTIVE
    assert not AuditEntry.objects.filter(action="customer.suspend").exists()


def test_suspending_twice_is_a_clear_error(cast):
    suspend(actor=cast.support, obj=cast.a.domain, reason="phishing")
    with pytest.raises(ValidationError, match="already suspended"):
        suspend(actor=cast.support, obj=cast.a.domain, reason="phishing")
    with pytest.raises(ValidationError, match="already active"):
        restore(actor=cast.support, obj=cast.b.customer, reason="x")


def test_restoring_a_customer_releases_its_held_mail_after_commit(cast, django_capture_on_commit_callbacks):
    suspend(actor=cast.support, obj=cast.a.customer, reason="unpaid")
    with mock.patch("accounts.services.workers.current_app.send_task") as send_task:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            restore(actor=cast.support, obj=cast.a.customer, reason="paid")
        send_task.assert_not_called()  # nothing leaves before the commit
        for callback in callbacks:
            callback()
    send_task.assert_called_once_with("relay.tasks.release_held", args=[cast.a.customer.pk])
    cast.a.customer.refresh_from_db()
    assert cast.a.customer.status == Status.ACTIVE and cast.a.customer.status_reason == ""
    assert AuditEntry.objects.get(action="customer.restore").reason == "paid"


def test_suspending_sends_no_release(cast, django_capture_on_commit_callbacks):
    with mock.patch("accounts.services.workers.current_app.send_task") as send_task:
        with django_capture_on_commit_callbacks(execute=True):
            suspend(actor=cast.support, obj=cast.a.customer, reason="unpaid")
    send_task.assert_not_called()


def test_domain_restore_returns_to_active_or_pending(cast):
    suspend(actor=cast.support, obj=cast.a.domain, reason="phishing")
    cast.a.domain.refresh_from_db()
    assert cast.a.domain.status == Domain.DomainStatus.SUSPENDED and not cast.a.domain.can_send
    restore(actor=cast.support, obj=cast.a.domain, reason="cleaned up")
    cast.a.domain.refresh_from_db()
    assert cast.a.domain.status == Domain.DomainStatus.ACTIVE and cast.a.domain.can_send
    pending = domain_create(actor=None, customer=cast.a.customer, name="pending.test")
    suspend(actor=cast.support, obj=pending, reason="x")
    restore(actor=cast.support, obj=pending, reason="y")
    pending.refresh_from_db()
    assert pending.status == Domain.DomainStatus.PENDING


def test_mailbox_and_credential_suspend_and_restore(cast):
    credential = credential_create(actor=None, domain=cast.a.domain).credential
    suspend(actor=cast.support, obj=cast.a.mailbox, reason="compromised")
    suspend(actor=cast.support, obj=credential, reason="leaked in a repository")
    cast.a.mailbox.refresh_from_db()
    credential.refresh_from_db()
    assert not cast.a.mailbox.is_active and not credential.is_active
    assert credential.status_reason == "leaked in a repository"
    restore(actor=cast.support, obj=cast.a.mailbox, reason="password reset")
    restore(actor=cast.support, obj=credential, reason="rotated")
    cast.a.mailbox.refresh_from_db()
    credential.refresh_from_db()
    assert cast.a.mailbox.is_active and credential.is_active
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"mailbox.suspend", "mailbox.restore", "smtpcredential.suspend", "smtpcredential.restore"} <= actions


def test_a_revoked_credential_cannot_be_restored(cast):
    credential = credential_create(actor=None, domain=cast.a.domain).credential
    credential_revoke(actor=None, credential=credential)
    credential.refresh_from_db()
    # Revoked is already inactive, so restoring is the only thing one could try.
    with pytest.raises(ValidationError, match="revoked"):
        restore(actor=cast.support, obj=credential, reason="oops")


def test_reseller_suspends_its_own_customers_only(cast):
    suspend(actor=cast.reseller_a_admin, obj=cast.a.customer, reason="unpaid")
    with pytest.raises(PermissionDenied):
        suspend(actor=cast.reseller_a_admin, obj=cast.b.customer, reason="unpaid")
    with pytest.raises(PermissionDenied):
        suspend(actor=cast.reseller_b_admin, obj=cast.a.mailbox, reason="x")
    cast.b.customer.refresh_from_db()
    assert cast.b.customer.status == Status.ACTIVE


def test_customers_and_mailbox_owners_may_not_suspend(cast):
    with pytest.raises(PermissionDenied):
        suspend(actor=cast.a.user, obj=cast.a.customer, reason="x")
    with pytest.raises(PermissionDenied):
        suspend(actor=cast.a.user, obj=cast.a.domain, reason="x")


def test_may_sign_in_follows_customer_and_mailbox_state(cast):
    from accounts.models import User

    mailbox_user = User.objects.create(username="mailbox:1", role=User.Role.MAILBOX, mailbox=cast.a.mailbox,
                                       customer=cast.a.customer)
    assert may_sign_in(cast.a.user) and may_sign_in(mailbox_user)
    suspend(actor=cast.support, obj=cast.a.mailbox, reason="compromised")
    assert may_sign_in(cast.a.user) and not may_sign_in(mailbox_user)
    suspend(actor=cast.support, obj=cast.a.customer, reason="unpaid")
    assert not may_sign_in(cast.a.user)
    assert may_sign_in(cast.support) and may_sign_in(cast.b.user)
