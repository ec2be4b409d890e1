"""The account commands: same services as the panel, JSON with --json, a clear error and non-zero exit."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from accounts import hashing
from accounts.models import AuditEntry, Customer, Domain, Mailbox, Reseller, SmtpCredential, User
from tests.peers import database_url

ROOT = Path(__file__).resolve().parents[2]


def run(*args, stdin: str | None = None) -> dict:
    out = io.StringIO()
    extra = {"stdin": io.StringIO(stdin)} if stdin is not None else {}
    call_command(*args, "--json", stdout=out, **extra)
    return json.loads(out.getvalue())


def fails(*args, stdin: str = "") -> str:
    with pytest.raises(CommandError) as exc:
        call_command(*args, stdout=io.StringIO(), stdin=io.StringIO(stdin))
    return str(exc.value)


@pytest.mark.django_db
def test_reseller_create_with_admin_prints_a_generated_password_once():
    result = run("reseller_create", "Hosting North", "--admin", "north-admin", "--max-customers", "7")
    reseller = Reseller.objects.get(pk=result["id"])
    assert (reseller.name, reseller.max_customers) == ("Hosting North", 7)
    admin = User.objects.get(username="north-admin")
    assert admin.role == User.Role.RESELLER and admin.reseller == reseller
    assert len(result["admin"]["password"]) >= 16 and admin.check_password(result["admin"]["password"])
    assert AuditEntry.objects.filter(action="reseller.create", reseller=reseller, actor_label="system").exists()


@pytest.mark.django_db
def test_reseller_create_refuses_a_duplicate_name_and_writes_nothing_half():
    run("reseller_create", "Hosting North")
    assert "already exists" in fails("reseller_create", "hosting north")
    # The admin's name is taken: the reseller created before it is rolled back too.
    User.objects.create(username="taken")
    assert "taken" in fails("reseller_create", "Hosting South", "--admin", "taken")
    assert not Reseller.objects.filter(name="Hosting South").exists()


@pytest.mark.django_db
def test_customer_create_under_a_reseller_with_plan_and_user():
    run("reseller_create", "Hosting North")
    result = run("customer_create", "Bakery", "--reseller", "hosting north", "--max-domains", "2",
                 "--max-mailboxes", "3", "--send-per-hour", "50", "--send-per-day", "200",
                 "--user", "bakery", "--password-stdin", stdin="a long panel password\n")
    customer = Customer.objects.get(pk=result["id"])
    assert customer.reseller.name == "Hosting North"
    assert (customer.max_domains, customer.max_mailboxes, customer.send_per_hour, customer.send_per_day) == (2, 3, 50, 200)
    # A password typed in is not echoed back.
    assert result["user"] == {"username": "bakery", "password": None}
    assert User.objects.get(username="bakery").check_password("a long panel password")


@pytest.mark.django_db
def test_customer_create_bad_input_is_a_clear_error():
    assert "No reseller named “Nobody”" in fails("customer_create", "Bakery", "--reseller", "Nobody")
    assert "negative" in fails("customer_create", "Bakery", "--max-domains", "-1")
    assert "too short" in fails("customer_create", "Bakery", "--user", "b", "--password-stdin", stdin="short\n")
    assert not Customer.objects.filter(name="Bakery").exists()


@pytest.mark.django_db
def test_domain_add_prints_the_proof_record_and_normalises_the_name():
    run("customer_create", "Bakery")
    result = run("domain_add", "Bakery", "Bäckerei.TEST")
    domain = Domain.objects.get(pk=result["id"])
    assert (domain.name, result["unicode_name"], result["verified"]) == ("xn--bckerei-5wa.test", "bäckerei.test", False)
    assert result["verification"] == {"name": "_hostingmail.xn--bckerei-5wa.test", "type": "TXT",
                                      "value": f"hostingmail-verification={domain.verification_token}"}
    assert result["records"] == []


@pytest.mark.django_db
def test_domain_add_verified_lists_the_records_to_publish():
    run("customer_create", "Bakery")
    result = run("domain_add", "Bakery", "bakery.test", "--verified")
    assert result["verified"] and result["status"] == "active"
    assert [r["kind"] for r in result["records"] if r["required"]] == ["mx", "spf", "dkim", "dmarc"]
    out = io.StringIO()
    call_command("domain_add", "Bakery", "shop.test", "--verified", stdout=out)
    assert "  shop.test. IN MX " in out.getvalue()
    assert "autoconfig.shop.test. IN CNAME" in out.getvalue() and "(optional: automatic client setup)" in out.getvalue()


@pytest.mark.django_db
def test_domain_add_errors(cast):
    assert "No customer named “Nobody”" in fails("domain_add", "Nobody", "x.test")
    assert "not a valid domain" in fails("domain_add", "Alpha", "no_dots")
    assert "already registered" in fails("domain_add", "Alpha", "bravo.test")
    Customer.objects.create(name="Alpha")  # a second "Alpha", directly under the provider
    assert "--reseller" in fails("domain_add", "Alpha", "x.test")
    assert run("domain_add", "Alpha", "x.test", "--reseller", "-")["customer"] == "Alpha"


@pytest.mark.django_db
def test_mailbox_add_generates_a_password_that_signs_in(cast):
    result = run("mailbox_add", "Sales@Alpha.test", "--smtp", "--quota-mb", "50")
    mailbox = Mailbox.objects.get(pk=result["id"])
    assert (mailbox.address, mailbox.smtp_enabled, mailbox.quota_mb) == ("sales@alpha.test", True, 50)
    assert hashing.check_hash(result["password"], mailbox.password_hash)
    assert mailbox.password_hash.startswith("{ARGON2ID}")


@pytest.mark.django_db
def test_mailbox_add_reads_the_password_from_stdin(cast):
    result = run("mailbox_add", "sales@alpha.test", "--password-stdin", stdin="stdin password 1\n")
    assert result["password"] is None and result["smtp_enabled"] is False
    assert hashing.check_hash("stdin password 1", Mailbox.objects.get(pk=result["id"]).password_hash)


@pytest.mark.django_db
def test_mailbox_add_errors(cast):
    assert "not an address" in fails("mailbox_add", "sales")
    assert "No domain nowhere.test" in fails("mailbox_add", "sales@nowhere.test")
    assert "already exists" in fails("mailbox_add", "info@alpha.test")
    assert "at least 10 characters" in fails("mailbox_add", "sales@alpha.test", "--password-stdin", stdin="short\n")
    assert "no password" in fails("mailbox_add", "sales@alpha.test", "--password-stdin", stdin="")
    assert not Mailbox.objects.filter(local_part="sales").exists()


@pytest.mark.django_db
def test_credential_create_for_an_address_and_for_a_domain(cast):
    by_address = run("credential_create", "info@alpha.test", "--description", "printer", "--allow", "192.0.2.0/24")
    credential = SmtpCredential.objects.get(username=by_address["username"])
    assert credential.mailbox == cast.a.mailbox and credential.allowed_networks == "192.0.2.0/24"
    assert hashing.check_hash(by_address["secret"], credential.secret_hash)
    assert by_address["secret"] not in credential.secret_hash

    by_domain = run("credential_create", "alpha.test", "--expires-days", "30")
    credential = SmtpCredential.objects.get(username=by_domain["username"])
    assert credential.mailbox is None and credential.domain == cast.a.domain and credential.expires_at
    assert by_domain["scope"] == "any address @alpha.test"


@pytest.mark.django_db
def test_credential_create_errors(cast):
    assert "No mailbox nobody@alpha.test" in fails("credential_create", "nobody@alpha.test")
    assert "No domain nowhere.test" in fails("credential_create", "nowhere.test")
    assert "not an IP address" in fails("credential_create", "alpha.test", "--allow", "10.0.0.0/33")
    assert not SmtpCredential.objects.exists()


@pytest.mark.django_db
def test_staff_create_text_output_shows_the_password_once():
    out = io.StringIO()
    call_command("staff_create", "helpdesk", stdout=out)
    user = User.objects.get(username="helpdesk")
    assert user.is_support and user.is_staff
    password = out.getvalue().split("(shown only now): ")[1].strip()
    assert user.check_password(password)
    assert "taken" in fails("staff_create", "HELPDESK")


@pytest.mark.django_db
def test_demo_data_is_idempotent_and_its_printed_logins_work(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first = run("demo_data")
    second = run("demo_data")
    assert first == second
    assert first["url"] == "http://127.0.0.1:8000/"
    logins = {login["username"]: login["password"] for login in first["logins"]}
    assert set(logins) == {"support", "reseller", "shop", "direct", "info@example-shop.test"}
    for username in ("support", "reseller", "shop", "direct"):
        assert User.objects.get(username=username).check_password(logins[username])
    mailbox = Mailbox.objects.get(local_part="info", domain__name="example-shop.test")
    assert mailbox.smtp_enabled and mailbox.domain.can_send
    assert hashing.check_hash(logins["info@example-shop.test"], mailbox.password_hash)
    assert Customer.objects.get(name="Example Shop").reseller.name == "Demo Reseller"
    assert Customer.objects.get(name="Direct Customer").reseller is None
    assert Customer.objects.count() == 2 and Domain.objects.count() == 2

    # The stored logins are lost: a third run prints new passwords, and those work.
    (tmp_path / "demo-logins.json").unlink()
    third = {login["username"]: login["password"] for login in run("demo_data")["logins"]}
    assert third["support"] != logins["support"]
    assert User.objects.get(username="support").check_password(third["support"])
    mailbox.refresh_from_db()
    assert hashing.check_hash(third["info@example-shop.test"], mailbox.password_hash)


@pytest.mark.django_db(transaction=True)
def test_manage_py_exit_codes_and_json(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hostingmail.settings", "DJANGO_ENV": "development",
           "DATABASE_URL": database_url(connection.settings_dict), "VAR_DIR": str(tmp_path),
           "MAIL_HASH_MEMORY_KIB": "1024", "MAIL_HASH_TIME_COST": "1"}

    def manage(*args, stdin=""):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, input=stdin,
                              capture_output=True, text=True, timeout=60)

    ok = manage("reseller_create", "Process Reseller", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["name"] == "Process Reseller"
    assert Reseller.objects.filter(name="Process Reseller").exists()

    duplicate = manage("reseller_create", "process reseller", "--json")
    assert duplicate.returncode == 1 and duplicate.stdout == ""
    assert "already exists" in duplicate.stderr

    bad_number = manage("customer_create", "X", "--max-domains", "many")
    assert bad_number.returncode != 0 and "not a whole number" in bad_number.stderr
