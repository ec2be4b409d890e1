"""accounts/services/domains.py: adding, verifying and deleting domains."""

import base64

import pytest
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_private_key
from django.core.exceptions import ValidationError

from accounts.dkim_keys import decrypt_private_key
from accounts.models import AuditEntry, Domain, Mailbox, SmtpCredential
from accounts.services.credentials import credential_create
from accounts.services.domains import domain_create, domain_delete, domain_mark_verified

pytestmark = pytest.mark.django_db


def test_domain_create_stores_the_lower_case_a_label_with_a_dkim_key_pair(cast):
    domain = domain_create(actor=cast.a.user, customer=cast.a.customer, name=" MÜNCHEN-Alpha.Test. ",
                           client_ip="192.0.2.1")
    assert domain.name == "xn--mnchen-alpha-dlb.test" and domain.unicode_name == "münchen-alpha.test"
    assert domain.status == Domain.DomainStatus.PENDING and not domain.is_verified and domain.verification_token
    stored = Domain.objects.values_list("dkim_private_key", flat=True).get(pk=domain.pk)
    assert "PRIVATE KEY" not in stored  # encrypted at rest
    private = load_pem_private_key(decrypt_private_key(stored).encode(), password=None)
    public = load_der_public_key(base64.b64decode(domain.dkim_public_key))
    assert private.public_key().public_numbers() == public.public_numbers()
    entry = AuditEntry.objects.get(action="domain.create", object_id=str(domain.pk))
    assert entry.customer == cast.a.customer and entry.reseller == cast.reseller_a and entry.client_ip == "192.0.2.1"
    assert "dkim_private_key" not in entry.after and "PRIVATE KEY" not in str(entry.after)


@pytest.mark.parametrize("name", ["alpha.test", "ALPHA.TEST", "alpha.test."])
def test_domain_create_refuses_a_domain_registered_by_anyone(cast, name):
    with pytest.raises(ValidationError, match="already registered"):
        domain_create(actor=None, customer=cast.b.customer, name=name)


def test_domain_create_refuses_a_unicode_name_already_registered_as_its_a_label(cast):
    domain_create(actor=None, customer=cast.a.customer, name="xn--bcher-kva.test")
    with pytest.raises(ValidationError, match="already registered"):
        domain_create(actor=None, customer=cast.b.customer, name="Bücher.test")


def test_domain_create_stops_at_the_plans_limit_and_writes_nothing(cast):
    cast.a.customer.max_domains = 1
    cast.a.customer.save()
    with pytest.raises(ValidationError, match="Your plan allows 1 domains"):
        domain_create(actor=None, customer=cast.a.customer, name="two.test")
    assert not Domain.objects.filter(name="two.test").exists()
    assert not AuditEntry.objects.filter(object_repr="two.test").exists()


@pytest.mark.parametrize("name", ["", "nodot", "bad_label.test", "-x.test", "x-.test", "a..test", "1.2.3.4",
                                  "x" * 64 + ".test"])
def test_domain_create_refuses_invalid_names(cast, name):
    with pytest.raises(ValidationError):
        domain_create(actor=None, customer=cast.a.customer, name=name)


def test_domain_mark_verified_activates_once_and_audits_once(cast):
    domain = domain_create(actor=None, customer=cast.a.customer, name="proof.test")
    domain_mark_verified(actor=cast.a.user, domain=domain, client_ip="192.0.2.2")
    first = Domain.objects.get(pk=domain.pk)
    domain_mark_verified(actor=cast.a.user, domain=domain)
    again = Domain.objects.get(pk=domain.pk)
    assert first.status == Domain.DomainStatus.ACTIVE and first.verified_at == again.verified_at
    assert AuditEntry.objects.filter(action="domain.verify", object_id=str(domain.pk)).count() == 1


def test_domain_delete_removes_its_mailboxes_and_credentials_with_an_audit_entry(cast):
    credential_create(actor=None, domain=cast.a.domain, mailbox=cast.a.mailbox)
    domain_pk = cast.a.domain.pk
    domain_delete(actor=cast.support, domain=cast.a.domain, client_ip="192.0.2.3")
    assert not Mailbox.objects.filter(domain_id=domain_pk).exists()
    assert not SmtpCredential.objects.filter(domain_id=domain_pk).exists()
    entry = AuditEntry.objects.get(action="domain.delete", object_id=str(domain_pk))
    assert entry.before["name"] == "alpha.test" and entry.actor == cast.support


@pytest.mark.parametrize("name", ["xn--zz.test", "xn--a.test", "XN--ZZ.test", "alpha.xn--zz"])
def test_domain_create_refuses_an_invalid_a_label(cast, name):
    with pytest.raises(ValidationError, match="not a valid domain name"):
        domain_create(actor=None, customer=cast.a.customer, name=name)
    assert not Domain.objects.filter(name=name.lower()).exists()


def test_domain_names_follow_idna_2008_with_uts46_mapping(cast):
    assert domain_create(actor=None, customer=cast.a.customer, name="Faß.test").name == "xn--fa-hia.test"
    assert domain_create(actor=None, customer=cast.a.customer, name="ＢÜCHER.test").name == "xn--bcher-kva.test"


@pytest.mark.parametrize("hosted, new", [
    ("paypal.test", "pаypal.test"),  # Cyrillic а
    ("paypal.test", "раураl.test"),  # all Cyrillic but the l
    ("pаypal.test", "paypal.test"),  # the look-alike came first: the plain name is refused too
    ("pаypal.test", "paypаl.test"),  # two look-alikes of one another
    ("apple.test", "аpple.test"),
    ("bank.test", "bаnk.test"),
    ("ok.test", "οk.test"),  # Greek omicron
])
def test_domain_create_refuses_a_homograph_of_a_hosted_domain(cast, hosted, new):
    domain_create(actor=None, customer=cast.b.customer, name=hosted)
    with pytest.raises(ValidationError, match="can be mistaken for"):
        domain_create(actor=None, customer=cast.a.customer, name=new)


def test_names_that_only_share_letters_are_not_homographs(cast):
    domain_create(actor=None, customer=cast.b.customer, name="paypal.test")
    for name in ("paypals.test", "bücher.test", "пример.test", "paypal.example"):
        domain_create(actor=None, customer=cast.a.customer, name=name)
