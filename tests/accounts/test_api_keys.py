"""API keys: stored as a keyed hash, shown once, checked in constant time, revoked; the panel page; the command."""

import hashlib
import hmac
import json
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from accounts.models import ApiKey, AuditEntry
from accounts.services.api_keys import api_key_authenticate, api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def test_the_secret_is_stored_only_as_its_hmac(cast):
    new = api_key_create(actor=cast.a.user, user=cast.a.user, name="billing")
    stored = ApiKey.objects.get(pk=new.api_key.pk)
    assert new.secret.startswith(f"hm_{stored.prefix}_") and len(new.secret) > 40
    assert stored.secret_hash == hmac.new(settings.API_KEY_HASH_SECRET.encode(), new.secret.encode(),
                                          hashlib.sha256).hexdigest()
    assert new.secret not in json.dumps(list(AuditEntry.objects.values("before", "after", "reason")), default=str)
    assert api_key_authenticate(new.secret, client_ip="127.0.0.1").pk == stored.pk


def test_a_revoked_key_no_longer_authenticates_and_both_are_audited(cast):
    new = api_key_create(actor=cast.reseller_a_admin, user=cast.reseller_a_admin, name="whmcs")
    api_key_revoke(actor=cast.reseller_a_admin, api_key=new.api_key)
    assert api_key_authenticate(new.secret, client_ip="127.0.0.1") is None
    actions = set(AuditEntry.objects.filter(reseller=cast.reseller_a).values_list("action", flat=True))
    assert {"api_key.create", "api_key.revoke"} <= actions


def test_people_create_keys_only_for_themselves_and_mailbox_owners_none(cast):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        api_key_create(actor=cast.a.user, user=cast.b.user, name="theirs")
    mailbox_user = cast.a.user.__class__.objects.create(username="owner", role="mailbox", mailbox=cast.a.mailbox)
    with pytest.raises(PermissionDenied):
        api_key_create(actor=None, user=mailbox_user, name="mine")


def test_writes_through_the_api_are_audited_as_the_key(cast):
    from django.test import Client

    new = api_key_create(actor=None, user=cast.a.user, name="shop")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {new.secret}")
    response = client.post("/api/v1/credentials/", {"mailbox": cast.a.mailbox.pk}, content_type="application/json")
    assert response.status_code == 201
    entry = AuditEntry.objects.get(action="credential.create", customer=cast.a.customer)
    assert entry.actor_label == "api-key:shop" and entry.actor == cast.a.user and entry.api_key == new.api_key
    assert entry.client_ip == "127.0.0.1"


def test_the_panel_page_creates_shows_once_and_revokes(client, cast):
    client.force_login(cast.a.user)
    response = client.post(reverse("api_key_add"), {"name": "billing", "read_only": "on",
                                                    "allowed_networks": "192.0.2.0/24"}, follow=True)
    assert response.status_code == 200
    key = ApiKey.objects.get(user=cast.a.user, name="billing")
    secret = response.context["secret"]
    assert secret in response.content.decode() and key.read_only and key.allowed_networks == "192.0.2.0/24"
    listing = client.get(reverse("api_key_list")).content.decode()
    assert "billing" in listing and secret not in listing
    assert client.post(reverse("api_key_revoke", args=[key.pk])).status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_the_command_prints_the_key_once_as_json(cast):
    out = StringIO()
    call_command("apikey_create", "--user", "reseller-a", "--name", "billing", "--read-only", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["user"] == "reseller-a" and data["read_only"] is True and data["key"].startswith("hm_")
    assert api_key_authenticate(data["key"], client_ip="10.0.0.1").user == cast.reseller_a_admin
