"""No secret reaches the audit log, whichever service writes the row: redaction by kind of field and value."""

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AuditEntry, Domain, Mailbox, User
from accounts.services import security
from accounts.services.audit_log import REDACTED, audit, redact, snapshot
from accounts.services.credentials import credential_create, credential_revoke
from accounts.services.domains import domain_create, domain_delete, domain_mark_verified
from accounts.services.limits import limit_set
from accounts.services.mailboxes import mailbox_create, mailbox_delete, mailbox_set_password, mailbox_update
from accounts.services.suspension import restore, suspend
from accounts.services.bulk import bulk_import
from accounts.services.plan_templates import plan_template_delete, plan_template_save
from accounts.services.tenants import (reseller_branding_update, reseller_create, user_password_set_for,
                                       user_set_password)
from relay.panel.services import domain_smarthost_set
from tests.support.audit_scan import SMARTHOST_PASSWORD, secrets_in
from tests.support.factories import PASSWORD

pytestmark = pytest.mark.django_db

SMARTHOST = f"smtp://relay-user:{SMARTHOST_PASSWORD}@smarthost.example.net:587?tls=starttls"


def test_suspending_a_domain_with_a_smarthost_password_keeps_the_password_out_of_the_audit_log(cast):
    domain_smarthost_set(actor=cast.support, domain=cast.a.domain, url=SMARTHOST, reason="customer's own relay")
    suspend(actor=cast.support, obj=cast.a.domain, reason="phishing")
    restore(actor=cast.support, obj=cast.a.domain, reason="cleaned up")
    entries = AuditEntry.objects.filter(action__in=["domain.suspend", "domain.restore"])
    assert entries.count() == 2
    for entry in entries:
        assert SMARTHOST_PASSWORD not in str(entry.before) + str(entry.after)
        assert entry.after["smarthost_url"] == "smtp://relay-user:***@smarthost.example.net:587?tls=starttls"
        assert entry.after["status"] in ("suspended", "active")  # the rest of the snapshot is still there


def test_every_service_that_audits_writes_no_secret(cast):
    domain_smarthost_set(actor=cast.support, domain=cast.a.domain, url=SMARTHOST, reason="own relay")
    reseller_create(actor=cast.support, name="Gamma")
    new_domain = domain_create(actor=cast.a.user, customer=cast.a.customer, name="shop-alpha.test")
    domain_mark_verified(actor=cast.a.user, domain=new_domain)
    mailbox = mailbox_create(actor=cast.a.user, domain=new_domain, local_part="sales", password=PASSWORD + "x")
    mailbox_update(actor=cast.a.user, mailbox=mailbox, quota_mb=10, smtp_enabled=True)
    mailbox_set_password(actor=cast.a.user, mailbox=mailbox, password="another long secret")
    limit_set(actor=cast.a.user, obj=mailbox, changes={"send_per_hour": 5})
    new = credential_create(actor=cast.a.user, domain=new_domain, description="printer")
    for obj in (cast.a.customer, cast.a.domain, mailbox, new.credential):
        suspend(actor=cast.support, obj=obj, reason="check")
        restore(actor=cast.support, obj=obj, reason="fine")
    credential_revoke(actor=cast.a.user, credential=new.credential)
    user_set_password(actor=cast.support, user=cast.a.user, password="a new long password 7")
    device = security.totp_pending_device(cast.a.user)
    security.totp_confirm(user=cast.a.user, device=device, token=str(totp(device.bin_key)).zfill(6))
    security.recovery_codes_new(user=cast.a.user)
    # Issue 21's write paths: passwords set by a reset link, by support and by a reseller; plan templates; the
    # brand; a bulk import that generates mailbox passwords.
    user_set_password(actor=cast.a.user, user=cast.a.user, password="reset link password 9",
                      reason="reset through an e-mailed link")
    user_password_set_for(actor=cast.support, user=cast.b.user, password="support set password 9", reason="ticket")
    user_password_set_for(actor=cast.reseller_a_admin, user=cast.a.user, password="reseller set password 9")
    template = plan_template_save(actor=cast.reseller_a_admin, reseller=cast.reseller_a, name="Small",
                                  plan={"max_domains": 1})
    plan_template_save(actor=cast.reseller_a_admin, reseller=cast.reseller_a, name="Smaller", plan={},
                       template=template)
    plan_template_delete(actor=cast.reseller_a_admin, template=template)
    reseller_branding_update(actor=cast.reseller_a_admin, reseller=cast.reseller_a, panel_title="Acme",
                             support_email="", help_url="", brand_color="#0b6e4f", panel_host="panel.acme.test")
    imported = bulk_import(actor=cast.a.user, customer=cast.a.customer, kind="mailboxes", dry_run=False,
                           text="address,smtp_enabled,password\nbulk1@alpha.test,yes,\nbulk2@alpha.test,no,"
                                "typed in the file 9\n")
    bulk_import(actor=cast.a.user, customer=cast.a.customer, kind="aliases", dry_run=False,
                text="address,destinations\nbulk-team@alpha.test,bulk1@alpha.test\n")
    assert imported.written and len(imported.passwords) == 1
    mailbox_delete(actor=cast.a.user, mailbox=mailbox)
    domain_delete(actor=cast.a.user, domain=new_domain)

    known = (new.secret, cast.a.domain.verification_token, new_domain.verification_token, device.key,
             *TOTPDevice.objects.values_list("key", flat=True), "reset link password 9", "support set password 9",
             "reseller set password 9", "typed in the file 9", *(password for _, password in imported.passwords),
             *User.objects.values_list("password", flat=True), *Mailbox.objects.values_list("password_hash", flat=True))
    entries = list(AuditEntry.objects.all())
    assert len(entries) > 20
    assert {e.action for e in entries} >= {"domain.suspend", "mailbox.create", "credential.create", "domain.delete",
                                           "user.password", "plantemplate.update", "reseller.branding",
                                           "alias.create"}
    leaks = {e.action: secrets_in(e, known) for e in entries if secrets_in(e, known)}
    assert not leaks


def test_redaction_goes_by_kind_not_by_call_site(cast):
    # A call site that hands the audit log a secret by mistake still stores none.
    audit(actor=cast.support, action="test.hand_made", obj=cast.a.customer,
          before={"password_hash": "{ARGON2ID}$argon2id$v=19$m=1$x$y", "nested": {"api_key": "k-123"}},
          after={"url": SMARTHOST, "note": "-----BEGIN PRIVATE KEY-----\nabc", "list": [SMARTHOST], "count": 3},
          reason=f"moved to {SMARTHOST}")
    entry = AuditEntry.objects.get(action="test.hand_made")
    assert entry.before == {"password_hash": REDACTED, "nested": {"api_key": REDACTED}}
    assert entry.after["note"] == REDACTED and entry.after["count"] == 3
    assert SMARTHOST_PASSWORD not in entry.after["url"] + entry.after["list"][0] + entry.reason
    assert not secrets_in(entry)


def test_snapshot_leaves_out_secret_fields_of_any_model(cast):
    data = snapshot(Domain.objects.get(pk=cast.a.domain.pk))
    assert "dkim_private_key" not in data and "verification_token" not in data
    assert data["dkim_public_key"] and data["name"] == "alpha.test"
    assert "password_hash" not in snapshot(cast.a.mailbox)
    assert redact({"smarthost": "smtp://u@host"}) == {"smarthost": "smtp://u@host"}  # no password: as it was
