import pytest
from django.core.management import CommandError, call_command

from accounts import hashing
from accounts.management.commands.seed_scale import PASSWORD
from accounts.models import AuditEntry, Customer, Domain, Mailbox, Reseller, SmtpCredential, User

ARGS = ["--resellers", "3", "--customers", "20", "--domains", "30", "--mailboxes", "60", "--prefix", "t",
        "--batch", "7"]


def _counts():
    return {
        "resellers": Reseller.objects.filter(name__startswith="t-r").count(),
        "customers": Customer.objects.filter(name__startswith="t-c").count(),
        "users": User.objects.filter(username__startswith="t-").count(),
        "domains": Domain.objects.filter(name__endswith=".t.example").count(),
        "mailboxes": Mailbox.objects.filter(domain__name__endswith=".t.example").count(),
        "credentials": SmtpCredential.objects.filter(username__startswith="t-smtp-").count(),
        "audit": AuditEntry.objects.filter(action="seed.change").count(),
    }


def test_seed_scale_builds_the_data_set_and_is_idempotent(db, capsys):
    call_command("seed_scale", *ARGS)
    out = capsys.readouterr().out
    assert "mailboxes: 60/60" in out and "done in" in out
    expected = {"resellers": 3, "customers": 20, "users": 3 + 20 + 1, "domains": 30, "mailboxes": 60,
                "credentials": 15, "audit": 20}
    assert _counts() == expected
    call_command("seed_scale", *ARGS)
    assert _counts() == expected
    # Every tenth customer is the provider's own; the rest are spread over the resellers.
    assert Customer.objects.get(name="t-c000009").reseller is None
    assert Customer.objects.get(name="t-c000004").reseller.name == "t-r00001"
    # One DKIM key pair and one password hash, shared; the hash still verifies.
    assert Domain.objects.filter(name__endswith=".t.example").values("dkim_public_key").distinct().count() == 1
    mailbox = Mailbox.objects.get(local_part="u000031")
    assert mailbox.domain.name == "d000001.t.example"
    assert hashing.check_hash(PASSWORD, mailbox.password_hash)
    assert User.objects.get(username="t-c000001-user").check_password(PASSWORD)


def test_seed_scale_grows_an_existing_set(db):
    call_command("seed_scale", *ARGS)
    call_command("seed_scale", *[a if a != "60" else "90" for a in ARGS])
    assert Mailbox.objects.filter(domain__name__endswith=".t.example").count() == 90


@pytest.mark.parametrize("args,message", [
    (["--prefix", "bad prefix"], "--prefix"),
    (["--customers", "-1"], "zero or more"),
    (["--customers", "5", "--domains", "5", "--mailboxes", "5", "--resellers", "1", "--customers", "0"],
     "--domains needs at least one of --customers"),
])
def test_seed_scale_refuses_bad_arguments(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("seed_scale", *args)
