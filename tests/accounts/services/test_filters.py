"""A mailbox's Sieve filters: rules made into a script, every script checked by sievec before it is saved
(sievec's own message and line), the audit log, the version Dovecot's compiled copies are keyed by."""

import pytest
from django.core.exceptions import ValidationError

from accounts.models import AuditEntry, SieveScript
from accounts.services.filters import sieve_check, sieve_from_rules, sieve_script_save

pytestmark = pytest.mark.django_db


def test_rules_make_a_script_that_sievec_compiles(cast):
    saved = sieve_script_save(actor=cast.a.user, mailbox=cast.a.mailbox, mode="rules", client_ip="192.0.2.7", rules=[
        {"field": "subject", "contains": 'Invoice "Q1" \\ 2026', "action": "fileinto", "target": "Billing.2026"},
        {"field": "from", "contains": "newsletter@", "action": "discard"},
        {"field": "to", "contains": "sales", "action": "redirect", "target": "Boss@Example.ORG"},
    ])
    assert saved.version == 1 and saved.mode == SieveScript.Mode.RULES
    assert 'if header :contains ["Subject"] "Invoice \\"Q1\\" \\\\ 2026" {\n  fileinto :create "Billing.2026";' \
        in saved.script
    assert 'if header :contains ["To", "Cc"] "sales" {\n  redirect "Boss@example.org";' in saved.script
    assert saved.rules[2]["target"] == "Boss@example.org"
    entry = AuditEntry.objects.get(action="mailbox.filters")
    assert entry.actor == cast.a.user and entry.customer == cast.a.customer and entry.client_ip == "192.0.2.7"
    assert entry.after["version"] == 1 and "Billing.2026" in entry.after["script"]

    again = sieve_script_save(actor=cast.a.user, mailbox=cast.a.mailbox, mode="rules", rules=[])
    assert again.pk == saved.pk and again.version == 2 and again.script == ""


def test_invalid_raw_script_is_refused_with_sievecs_line_and_nothing_saved(cast):
    script = 'require ["fileinto"];\nif header :contains "subject" "x" {\n  fileinto "A";\n}\nbogus_command;\n'
    with pytest.raises(ValidationError) as caught:
        sieve_script_save(actor=cast.a.user, mailbox=cast.a.mailbox, mode="raw", script=script)
    assert caught.value.message_dict["script"] == ["line 5: unknown command 'bogus_command' "
                                                   "(only reported once at first occurrence)."]
    assert not SieveScript.objects.exists() and not AuditEntry.objects.filter(action="mailbox.filters").exists()


def test_vacation_in_a_script_is_refused_the_panel_sends_auto_replies():
    with pytest.raises(ValidationError, match="unknown Sieve capability `vacation'"):
        sieve_check('require ["vacation"];\nvacation "away";\n')


def test_bad_rules_are_refused_one_message_each(cast):
    with pytest.raises(ValidationError) as caught:
        sieve_script_save(actor=None, mailbox=cast.a.mailbox, mode="rules", rules=[
            {"field": "subject", "contains": "", "action": "discard"},
            {"field": "from", "contains": "x", "action": "fileinto", "target": ""},
            {"field": "from", "contains": "x", "action": "redirect", "target": "not an address"},
            {"field": "body", "contains": "x", "action": "discard"},
            {"field": "from", "contains": "x", "action": "fileinto", "target": "Billing/2026"},
        ])
    messages = caught.value.message_dict["rules"]
    assert messages[0].startswith("Rule 1: give the text") and messages[1] == "Rule 2: give the folder to move the message to."
    assert messages[2].startswith("Rule 3: “not an address” is not an e-mail address")
    assert messages[3] == "Rule 4: choose a header and an action."
    assert messages[4].startswith("Rule 5: a folder name cannot contain /")
    assert not SieveScript.objects.exists()


def test_no_rules_no_script():
    assert sieve_from_rules([]) == ""


def test_scripts_are_checked_with_the_extensions_dovecot_offers():
    from pathlib import Path

    from accounts.services.filters import SIEVE_EXTENSIONS

    conf = (Path(__file__).resolve().parents[3] / "hostingmail" / "deploy" / "dovecot" / "conf.d"
            / "90-hostingmail.conf").read_text()
    assert f"  sieve_extensions = {SIEVE_EXTENSIONS}\n" in conf
