"""alias_add and alias_list: the alias services from the command line, JSON with --json."""

import io

import pytest
from django.core.management import call_command

from accounts.models import Alias, AuditEntry
from tests.accounts.test_commands import fails, run

pytestmark = pytest.mark.django_db


def test_alias_add_creates_and_prints_json(cast):
    result = run("alias_add", "Team@Alpha.test", "info@alpha.test", "Boss@example.org", "--description", "the team")
    alias = Alias.objects.get(local_part="team")
    assert result == {"id": alias.pk, "address": "team@alpha.test", "unicode_address": "team@alpha.test",
                      "destinations": ["info@alpha.test", "Boss@example.org"], "enabled": True,
                      "description": "the team", "customer": "Alpha"}
    assert AuditEntry.objects.get(action="alias.create").actor_label == "system"


def test_alias_add_text_and_errors(cast):
    out = io.StringIO()
    call_command("alias_add", "sales@alpha.test", "info@alpha.test", "--disabled", stdout=out)
    assert out.getvalue().strip() == "Alias sales@alpha.test created (disabled): info@alpha.test."
    assert "not an address" in fails("alias_add", "sales", "info@alpha.test")
    assert "No domain nowhere.test" in fails("alias_add", "x@nowhere.test", "info@alpha.test")
    assert "There is no mailbox or alias nobody@alpha.test" in fails("alias_add", "x@alpha.test", "nobody@alpha.test")
    assert "already exists" in fails("alias_add", "sales@alpha.test", "info@alpha.test")


def test_alias_list_all_by_customer_and_by_domain(cast):
    run("alias_add", "team@alpha.test", "info@alpha.test")
    run("alias_add", "crew@bravo.test", "info@bravo.test", "--disabled")
    everything = run("alias_list")["aliases"]
    assert [a["address"] for a in everything] == ["team@alpha.test", "crew@bravo.test"]
    assert [a["address"] for a in run("alias_list", "--customer", "bravo")["aliases"]] == ["crew@bravo.test"]
    assert run("alias_list", "--domain", "alpha.test")["aliases"][0]["destinations"] == ["info@alpha.test"]
    out = io.StringIO()
    call_command("alias_list", "--domain", "bravo.test", stdout=out)
    assert out.getvalue().strip() == "crew@bravo.test -> info@bravo.test (disabled)"
    assert "No customer named" in fails("alias_list", "--customer", "nobody")
