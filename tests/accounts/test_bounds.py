"""Every number a form, a command or a service takes is bounded (issue 17, point 8): a clear error, never a 500 or a
traceback, and nothing stored that PostgreSQL's columns cannot hold."""

import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from accounts import bounds
from accounts.models import Customer, Domain, Mailbox, Reseller, SmtpCredential
from accounts.services.credentials import credential_create
from accounts.services.limits import FIELDS, limit_set
from accounts.services.mailboxes import mailbox_create, mailbox_update
from accounts.services.tenants import customer_create, reseller_create
from tests.support.factories import PASSWORD
from tests.support.signin import sign_in_verified

ROOT = Path(__file__).resolve().parents[2]
HUGE = 10**20
ON_POSTGRES = connection.vendor == "postgresql"

# Around every bound that matters: the PositiveIntegerField and bigint limits, and far beyond.
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 2**31 - 2, 2**31 - 1, 2**31, 2**32, 2**40, 2**63 - 1, 2**63, 2**64, HUGE, -1]),
)


def test_one_place_defines_each_bound_from_the_column_type():
    assert bounds.field_max(Customer, "send_per_hour") == 2147483647  # PositiveIntegerField
    assert bounds.field_max(Customer, "max_storage_mb") == bounds.LIMIT_MAX  # bigint, held to the product maximum
    assert bounds.field_max(Customer, "id") == 2**63 - 1
    for model, fields in FIELDS.items():
        for name in fields:
            assert 0 < bounds.field_max(model, name) <= 2147483647


# --- forms -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_plan_page_with_a_huge_number_is_a_field_error(client, cast):
    client.force_login(cast.a.user)
    for url, data in ((reverse("plan:domain", args=[cast.a.domain.pk]),
                       {"send_per_hour": HUGE, "send_per_day": "", "max_storage_mb": ""}),
                      (reverse("plan:mailbox", args=[cast.a.mailbox.pk]),
                       {"send_per_hour": 2**40, "send_per_day": "", "quota_mb": 100})):
        response = client.post(url, data)
        assert response.status_code == 200
        assert "less than or equal to 2147483647" in " ".join(response.context["form"].errors["send_per_hour"])


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["customer", "domain", "mailbox"])
def test_support_limits_form_with_a_huge_number_is_a_field_error(cast, kind):
    client = Client()
    sign_in_verified(client, cast.support)
    obj = {"customer": cast.a.customer, "domain": cast.a.domain, "mailbox": cast.a.mailbox}[kind]
    response = client.post(reverse(f"support:{kind}_limits", args=[obj.pk]),
                           {"send_per_hour": HUGE, "send_per_day": 2**40, "reason": "test", "max_domains": 5,
                            "max_mailboxes": 5, "max_storage_mb": 2**63, "max_message_size": 1000,
                            "max_recipients": 10, "quota_mb": 10})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "send_per_hour" in errors and "send_per_day" in errors
    if kind == "customer":
        assert "max_storage_mb" in errors


@pytest.mark.django_db
def test_mailbox_form_quota_is_bounded(client, cast):
    client.force_login(cast.a.user)
    response = client.post(reverse("mailbox_edit", args=[cast.a.mailbox.pk]),
                           {"display_name": "", "quota_mb": HUGE})
    assert response.status_code == 200 and "quota_mb" in response.context["form"].errors


@pytest.mark.django_db
def test_reseller_new_customer_form_is_bounded(client, cast):
    client.force_login(cast.reseller_a_admin)
    response = client.post(reverse("reseller:customer_create"), {
        "name": "Huge", "username": "huge-user", "password": "a long password 77", "max_domains": HUGE,
        "max_mailboxes": 1, "max_storage_mb": 10, "max_message_size": 1000, "max_recipients": 5,
        "send_per_hour": 10, "send_per_day": 10})
    assert response.status_code == 200 and "max_domains" in response.context["form"].errors


# --- commands ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("args", [
    ("reseller_create", "Big", "--max-customers", str(HUGE)),
    ("reseller_create", "Big", "--max-storage-mb", str(2**40 * 2**23)),
    ("customer_create", "Big", "--send-per-hour", str(2**40)),
])
def test_commands_refuse_numbers_beyond_the_bound(args):
    with pytest.raises(CommandError, match="2147483647"):
        call_command(*args, stdout=io.StringIO())
    assert not Reseller.objects.filter(name="Big").exists() and not Customer.objects.filter(name="Big").exists()


@pytest.mark.django_db
def test_credential_create_refuses_an_expiry_beyond_the_bound(cast):
    with pytest.raises(CommandError, match=str(bounds.EXPIRES_DAYS_MAX)):
        call_command("credential_create", "alpha.test", "--expires-days", str(10**11), stdout=io.StringIO())
    assert not SmtpCredential.objects.exists()


def test_manage_py_prints_an_error_not_a_traceback(tmp_path):
    # The number is refused while the arguments are read, before any database is opened.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "VAR_DIR": str(tmp_path),
           "DJANGO_SETTINGS_MODULE": "hostingmail.settings"}
    result = subprocess.run([sys.executable, "manage.py", "credential_create", "alpha.test", "--expires-days",
                             str(10**11)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert str(bounds.EXPIRES_DAYS_MAX) in result.stderr


# --- services, property-based (runs on PostgreSQL when DATABASE_URL names it, as CI does) ------------------


def _outcome(call) -> str:
    try:
        with transaction.atomic():
            call()
    except ValidationError:
        return "refused"
    return "stored"


SERVICE_CASES = [(model, name) for model, names in FIELDS.items() for name in names]


@pytest.mark.django_db
@pytest.mark.postgres
@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.sampled_from(SERVICE_CASES), number=NUMBERS)
def test_limit_set_stores_what_fits_and_refuses_the_rest(cast, case, number):
    model, name = case
    obj = {Reseller: cast.reseller_a, Customer: cast.direct.customer, Domain: cast.direct.domain,
           Mailbox: cast.direct.mailbox, SmtpCredential: None}[model]
    if obj is None:
        obj = SmtpCredential.objects.filter(domain=cast.direct.domain).first() or credential_create(
            actor=None, domain=cast.direct.domain).credential
    outcome = _outcome(lambda: limit_set(actor=None, obj=obj, changes={name: number}))
    if not 0 <= number <= bounds.field_max(model, name):
        assert outcome == "refused"
    if outcome == "stored":
        assert getattr(model.objects.get(pk=obj.pk), name) == number


@pytest.mark.django_db
@pytest.mark.postgres
@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS[Reseller]), number=NUMBERS)
def test_reseller_create_stores_what_fits_and_refuses_the_rest(field, number):
    outcome = _outcome(lambda: reseller_create(actor=None, name="Prop", **{field: number}))
    assert outcome == ("stored" if 0 <= number <= bounds.field_max(Reseller, field) else "refused")
    if outcome == "stored":
        assert getattr(Reseller.objects.get(name="Prop"), field) == number
        Reseller.objects.filter(name="Prop").delete()


@pytest.mark.django_db
@pytest.mark.postgres
@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS[Customer]), number=NUMBERS)
def test_customer_create_stores_what_fits_and_refuses_the_rest(field, number):
    outcome = _outcome(lambda: customer_create(actor=None, name="Prop", **{field: number}))
    assert outcome == ("stored" if 0 <= number <= bounds.field_max(Customer, field) else "refused")
    Customer.objects.filter(name="Prop").delete()


@pytest.mark.django_db
@pytest.mark.postgres
@hypothesis_settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(number=NUMBERS)
def test_mailbox_quota_is_bounded_in_create_and_update(cast, number):
    Customer.objects.filter(pk=cast.direct.customer.pk).update(max_storage_mb=bounds.LIMIT_MAX * 4)
    created = _outcome(lambda: mailbox_create(actor=None, domain=cast.direct.domain, local_part="prop",
                                              password=PASSWORD, quota_mb=number))
    updated = _outcome(lambda: mailbox_update(actor=None, mailbox=cast.direct.mailbox, quota_mb=number))
    if not 1 <= number <= bounds.field_max(Mailbox, "quota_mb"):
        assert created == updated == "refused"
    Mailbox.objects.filter(local_part="prop").delete()


@pytest.mark.django_db
@pytest.mark.skipif(not ON_POSTGRES, reason="the column bounds are PostgreSQL's; SQLite stores any 64-bit integer")
def test_the_bounds_are_what_postgresql_columns_hold(cast):
    for model, names in FIELDS.items():
        obj = {Reseller: cast.reseller_b, Customer: cast.b.customer, Domain: cast.b.domain, Mailbox: cast.b.mailbox,
               SmtpCredential: credential_create(actor=None, domain=cast.b.domain).credential}[model]
        for name in names:
            model.objects.filter(pk=obj.pk).update(**{name: bounds.field_max(model, name)})  # fits the column
