"""dns_check: the panel's "Check now" from the shell, as a real process on the test's database."""

import pytest

from tests.accounts.test_dnscheck import INCLUDE, MX, published
from tests.support.commands import manage, manage_json

pytestmark = pytest.mark.django_db(transaction=True)


def test_dns_check_runs_the_check_and_prints_the_records_and_the_dkim_record(cast, dns_server):
    domain = cast.a.domain
    server = dns_server(**published(domain, dmarc=None))
    env = {"DNS_NAMESERVERS": "127.0.0.1", "DNS_PORT": str(server.port), "MAIL_MX_HOST": MX, "SPF_INCLUDE": INCLUDE}
    result = manage_json("dns_check", domain.name, env=env)
    records = {r["kind"]: r for r in result["records"]}
    assert records["dkim"]["status"] == "found" and records["dmarc"]["status"] == "missing"
    assert records["dkim"]["value"] == f"v=DKIM1; k=rsa; p={domain.dkim_public_key}"
    assert records["dkim"]["name"] == f"{domain.dkim_selector}._domainkey.alpha.test"
    assert {"verification", "mx", "spf", "autoconfig", "srv-submission"} <= set(records)
    assert result["dkim"]["signing"] is True
    domain.refresh_from_db()
    assert domain.dns_status["dmarc"]["status"] == "missing", "the check's result is stored as the panel's is"

    text = manage("dns_check", "alpha.test", env=env).stdout
    assert "DMARC: missing" in text and "DKIM: found" in text
    assert f'publish: {domain.dkim_selector}._domainkey.alpha.test. IN TXT "v=DKIM1; k=rsa; p=' in text


def test_dns_check_of_an_unknown_domain_fails_with_a_message():
    done = manage("dns_check", "nowhere.test", check=False)
    assert done.returncode != 0 and "No domain nowhere.test here" in done.stderr and not done.stdout


