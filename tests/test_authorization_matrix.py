"""Every URL of the panel × every role × an object of its own tenant and of another: the expected answer, and no
foreign tenant's data in any answer.

The URL list is walked from the resolver, so a new URL that this table does not know fails the test: whoever adds
a page says here who may open it. Each request runs in a savepoint that is rolled back, so a POST that works
(deleting a domain, say) does not change what the next request sees.
"""

import copy
from dataclasses import dataclass, field
from types import SimpleNamespace
from unittest.mock import ANY

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.models import AuditEntry, PanelSession, SenderRule
from accounts.services.aliases import alias_create
from accounts.services.api_keys import api_key_create
from accounts.services.credentials import credential_create
from accounts.services.plan_templates import plan_template_save
from accounts.services.webhooks import event_record, webhook_endpoint_create
from relay.delivery.quarantine import release_token
from relay.models import AuthLockout, QueuedMessage
from tests.support.permissions import rolled_back
from tests.support.signin import sign_in_verified

pytestmark = pytest.mark.django_db

ROLES = ("support", "reseller_a", "reseller_b", "customer_a", "customer_b", "mailbox_a", "anonymous")
# Which tenant each role belongs to; support belongs to every tenant, anonymous to none.
HOME = {"reseller_a": "a", "reseller_b": "b", "customer_a": "a", "customer_b": "b", "mailbox_a": "a"}
LOGIN = "LOGIN"  # a redirect to the sign-in page


@dataclass(frozen=True)
class E:
    """Expected status per kind of role; an int for both tenants, or (own tenant, other tenant)."""

    support: int | tuple = 200
    reseller: int | tuple = (200, 404)
    customer: int | tuple = (200, 404)
    mailbox: int | tuple = 404
    anonymous: int | str = LOGIN

    def for_role(self, role: str, tenant: str | None):
        kind = "mailbox" if role == "mailbox_a" else role.split("_")[0]
        value = getattr(self, kind)
        if isinstance(value, tuple):
            return value[0] if tenant is None or HOME.get(role) == tenant else value[1]
        return value


@dataclass(frozen=True)
class U:
    """How to fill a URL's arguments (kwarg → kind of object) and what each role gets for GET (and POST)."""

    get: E
    post: E | None = None
    kwargs: dict = field(default_factory=dict)
    query: str = ""


def every(code) -> E:
    return E(support=code, reseller=code, customer=code, mailbox=code, anonymous=code)


def signed_in(code=200) -> E:
    return E(support=code, reseller=code, customer=code, mailbox=code)


def tenant(code=200, *, mailbox=404, support=None) -> E:
    """The object's own tenant (and support) get `code`; another tenant 404."""
    return E(support=code if support is None else support, reseller=(code, 404), customer=(code, 404),
             mailbox=mailbox)


POST_ONLY = E(support=405, reseller=405, customer=405, mailbox=405)  # signed in first, then the method
POST_ONLY_ANY = every(405)  # the method is checked before signing in
STAFF_ONLY = E(support=200, reseller=403, customer=403, mailbox=403)
RESELLER_ONLY = E(support=403, reseller=200, customer=403, mailbox=403)
RESELLER_OBJECT = E(support=403, reseller=(200, 404), customer=403, mailbox=403)
CUSTOMER_ONLY = E(support=403, reseller=403, customer=200, mailbox=403)
CUSTOMER_OBJECT = E(support=403, reseller=403, customer=(200, 404), mailbox=403)
OWN_MAILBOX = tenant(mailbox=(200, 404))  # the mailbox owner sees its own mailbox's things too

TABLE: dict[str, U] = {
    # Health and metrics: no tenant data, open (metrics only from allowed addresses, loopback in tests).
    "healthz": U(every(200)),
    "metrics": U(every(200)),
    "favicon.ico": U(every(301)),  # to the SVG icon in static/
    # Sign-in and the user's own security pages.
    "login": U(every(200)),
    "logout": U(every(405)),  # POST signs out; GET is refused
    "security:code": U(E(support=302, reseller=302, customer=302, mailbox=302, anonymous=LOGIN)),
    "security:enrol": U(signed_in()),
    "security:page": U(signed_in()),
    "security:recovery_codes": U(POST_ONLY, post=signed_in(302)),
    "security:recovery_codes_shown": U(signed_in()),  # only the user's own codes, once, from the session
    "security:otp_disable": U(POST_ONLY, post=signed_in(302)),
    "security:session_revoke": U(POST_ONLY, kwargs={"pk": "session"},
                                 post=E(support=404, reseller=404, customer=(302, 404), mailbox=404)),
    "security:sessions_revoke_others": U(POST_ONLY, post=signed_in(302)),
    "security:audit_log": U(E(support=200, reseller=200, customer=200, mailbox=403)),
    # A one-time sign-in link: public; an unknown (used, expired) token is the same clear page for everyone.
    "security:login_link": U(every(410), kwargs={"token": "login_link"}, post=every(405)),
    # Forgotten passwords (public: the sign-in page links there; an unknown link answers "does not work any more"),
    # the brand stylesheet, and a new password set by support (any user) or a reseller admin (its customers' users).
    "password_reset": U(every(200), post=every(200)),
    "password_reset_done": U(every(200)),
    "password_reset_confirm": U(every(200), kwargs={"uidb64": "uid", "token": "token"}, post=every(200)),
    "password_reset_complete": U(every(200)),
    "brand_css": U(every(200), kwargs={"color": "color"}),
    "user_password": U(E(support=200, reseller=(200, 404), customer=403, mailbox=403), kwargs={"pk": "user"},
                       post=E(support=200, reseller=(200, 404), customer=403, mailbox=403)),
    # CSV import and export: a customer its own; staff name the customer (?customer=, checked like every page).
    "bulk": U(E(support=404, reseller=404, customer=200, mailbox=403),
              post=E(support=404, reseller=404, customer=200, mailbox=403)),
    "bulk_export": U(E(support=404, reseller=404, customer=200, mailbox=403), kwargs={"kind": "export_kind"}),
    # Support console.
    "support:home": U(STAFF_ONLY),
    "support:customer": U(STAFF_ONLY, kwargs={"pk": "customer"}),
    **{f"support:{kind}_{page}": U(STAFF_ONLY, kwargs={"pk": kind}, post=STAFF_ONLY)
       for kind in ("customer", "domain", "mailbox", "credential") for page in ("limits", "status")},
    # Reseller console.
    "reseller:home": U(RESELLER_ONLY),
    "reseller:customers": U(RESELLER_ONLY),
    "reseller:customer_create": U(RESELLER_ONLY, post=RESELLER_ONLY),
    "reseller:customer": U(RESELLER_OBJECT, kwargs={"pk": "customer"}, post=RESELLER_OBJECT),
    "reseller:customer_edit": U(RESELLER_OBJECT, kwargs={"pk": "customer"}, post=RESELLER_OBJECT),
    "reseller:customer_suspend": U(POST_ONLY_ANY, kwargs={"pk": "customer"},
                                   post=E(support=403, reseller=(302, 404), customer=403, mailbox=403)),
    "reseller:customer_restore": U(POST_ONLY_ANY, kwargs={"pk": "customer"},
                                   post=E(support=403, reseller=(302, 404), customer=403, mailbox=403)),
    "reseller:branding": U(RESELLER_ONLY, post=RESELLER_ONLY),
    "reseller:plan_templates": U(RESELLER_ONLY),
    "reseller:plan_template_create": U(RESELLER_ONLY, post=RESELLER_ONLY),
    "reseller:plan_template": U(RESELLER_OBJECT, kwargs={"pk": "plan_template"}, post=RESELLER_OBJECT),
    "reseller:plan_template_delete": U(RESELLER_OBJECT, kwargs={"pk": "plan_template"},
                                       post=E(support=403, reseller=(302, 404), customer=403, mailbox=403)),
    # The customer's plan split.
    "plan:home": U(CUSTOMER_ONLY),
    "plan:domain": U(CUSTOMER_OBJECT, kwargs={"pk": "domain"}, post=CUSTOMER_OBJECT),
    "plan:mailbox": U(CUSTOMER_OBJECT, kwargs={"pk": "mailbox"}, post=CUSTOMER_OBJECT),
    # The customer panel.
    "dashboard": U(signed_in()),
    "customer_dashboard": U(tenant(), kwargs={"pk": "customer"}),
    "domain_list": U(signed_in()),
    "domain_add": U(E(support=404, reseller=404, customer=200, mailbox=404)),  # staff pick a customer first
    "domain_detail": U(tenant(), kwargs={"pk": "domain"}),
    "domain_check": U(POST_ONLY, kwargs={"pk": "domain"}, post=tenant(302)),
    "domain_delete": U(tenant(), kwargs={"pk": "domain"}, post=tenant(302)),
    "mailbox_add": U(tenant(), kwargs={"domain_pk": "domain"}, post=tenant()),
    "mailbox_list": U(signed_in()),
    "mailbox_edit": U(tenant(), kwargs={"pk": "mailbox"}, post=tenant()),
    "mailbox_password": U(tenant(), kwargs={"pk": "mailbox"}, post=tenant()),
    "mailbox_smtp": U(POST_ONLY, kwargs={"pk": "mailbox"}, post=tenant(302)),
    "mailbox_delete": U(tenant(), kwargs={"pk": "mailbox"}, post=tenant(302)),
    "mailbox_settings": U(OWN_MAILBOX, kwargs={"pk": "mailbox"}),
    "mailbox_mobileconfig": U(OWN_MAILBOX, kwargs={"pk": "mailbox"}),
    # Aliases, catch-all and alias domains, forwarding (managed like mailboxes: not by a mailbox's owner).
    "alias_list": U(signed_in()),
    "alias_add": U(tenant(), kwargs={"domain_pk": "domain"}, post=tenant()),
    "alias_edit": U(tenant(), kwargs={"pk": "alias"}, post=tenant()),
    "alias_delete": U(tenant(), kwargs={"pk": "alias"}, post=tenant(302)),
    "domain_catchall": U(POST_ONLY, kwargs={"pk": "domain"}, post=tenant(302)),
    "domain_alias_of": U(POST_ONLY, kwargs={"pk": "domain"}, post=tenant(302)),
    "domain_dmarc_reject_policy": U(POST_ONLY, kwargs={"pk": "domain"}, post=tenant(302)),
    "mailbox_forwarding": U(tenant(), kwargs={"pk": "mailbox"}, post=tenant()),
    "mailbox_filters": U(OWN_MAILBOX, kwargs={"pk": "mailbox"}, post=OWN_MAILBOX),
    "mailbox_auto_reply": U(OWN_MAILBOX, kwargs={"pk": "mailbox"}, post=OWN_MAILBOX),
    "alias_auto_reply": U(tenant(), kwargs={"pk": "alias"}, post=tenant()),
    "domain_greylisting": U(POST_ONLY, kwargs={"pk": "domain"}, post=tenant(302)),
    "credential_list": U(signed_in()),
    "credential_add": U(E(support=404, reseller=404, customer=200, mailbox=200)),
    "credential_settings": U(OWN_MAILBOX, kwargs={"pk": "credential"}),
    "credential_created": U(OWN_MAILBOX, kwargs={"pk": "credential"}),
    "credential_mobileconfig": U(OWN_MAILBOX, kwargs={"pk": "credential"}),
    "credential_revoke": U(OWN_MAILBOX, kwargs={"pk": "credential"}, post=tenant(302, mailbox=(302, 404))),
    # API keys: each user's own (support, reseller admins, customers); a mailbox owner has none.
    "api_key_list": U(E(support=200, reseller=200, customer=200, mailbox=403)),
    "api_key_add": U(E(support=200, reseller=200, customer=200, mailbox=403),
                     post=E(support=200, reseller=200, customer=200, mailbox=403)),
    "api_key_created": U(E(support=404, reseller=404, customer=(200, 404), mailbox=403), kwargs={"pk": "api_key"}),
    "api_key_revoke": U(E(support=405, reseller=405, customer=405, mailbox=403), kwargs={"pk": "api_key"},
                        post=E(support=404, reseller=404, customer=(302, 404), mailbox=403)),
    # Webhooks: customers their own endpoints, reseller admins their reseller's and its customers', support all
    # (support registers through the API, naming the owner); a mailbox owner none.
    "webhook_list": U(E(support=200, reseller=200, customer=200, mailbox=403)),
    "webhook_add": U(E(support=403, reseller=200, customer=200, mailbox=403),
                     post=E(support=403, reseller=200, customer=200, mailbox=403)),
    "webhook_created": U(tenant(mailbox=403, support=403), kwargs={"pk": "webhook"}),
    "webhook_detail": U(tenant(mailbox=403), kwargs={"pk": "webhook"}),
    "webhook_delete": U(E(support=405, reseller=405, customer=405, mailbox=403), kwargs={"pk": "webhook"},
                        post=tenant(302, mailbox=403)),
    "webhook_enable": U(E(support=405, reseller=405, customer=405, mailbox=403), kwargs={"pk": "webhook"},
                        post=tenant(302, mailbox=403)),
    "webhook_redeliver": U(E(support=405, reseller=405, customer=405, mailbox=403),
                           kwargs={"pk": "webhook_delivery"}, post=tenant(302, mailbox=403)),
    "account_password": U(E(support=200, reseller=200, customer=200, mailbox=302),
                          post=E(support=200, reseller=200, customer=200, mailbox=302)),
    "own_password": U(E(support=404, reseller=404, customer=404, mailbox=200), post=E(
        support=404, reseller=404, customer=404, mailbox=200)),
    # The user's own panel language (every role), and the switcher of the pages before sign-in (Django's
    # set_language: a redirect back, the choice in a cookie; nothing of anyone's).
    "account_language": U(signed_in(), post=signed_in(302)),
    "set_language": U(every(302), post=every(302)),
    # Mail client autoconfiguration: public, answers only for a known address (none given here).
    "autoconfig_wellknown": U(every(404)),
    "autoconfig": U(every(404)),
    "autodiscover": U(every(404), post=every(400)),
    "Autodiscover/Autodiscover.xml": U(every(404), post=every(400)),
    # Message log and lockouts.
    "relay:message_list": U(signed_in()),
    "relay:message_detail": U(OWN_MAILBOX, kwargs={"pk": "message"}),
    # Support's actions on messages and lockouts: the role gate answers before the object is looked up, so every
    # other role gets 403 whoever's object it is (and learns nothing about other tenants' ids).
    "relay:message_retry": U(POST_ONLY, kwargs={"pk": "message"}, post=E(support=302, reseller=403, customer=403, mailbox=403)),
    "relay:message_cancel": U(STAFF_ONLY, kwargs={"pk": "message"}),
    "relay:lockout_list": U(signed_in()),
    "relay:lockout_lift": U(POST_ONLY, kwargs={"pk": "lockout"}, post=E(support=302, reseller=403, customer=403,
                                                                          mailbox=403)),
    # The spam filter page: the customer's, its reseller's and support's; support alone sets the range.
    "spam_settings": U(tenant(), kwargs={"pk": "customer"}, post=tenant(302)),
    "spam_bounds": U(POST_ONLY, kwargs={"pk": "customer"}, post=E(support=302, reseller=403, customer=403,
                                                                   mailbox=403)),
    "spam_domain": U(POST_ONLY, kwargs={"pk": "domain"}, post=tenant(302)),
    "sender_rule_add": U(POST_ONLY, kwargs={"pk": "customer"}, post=tenant(400)),  # an empty form: its errors
    "sender_rule_delete": U(POST_ONLY, kwargs={"pk": "customer", "rule_pk": "sender_rule"}, post=tenant(302)),
    # The quarantine: whoever sees the message in the log; the digest's link answers its signature, not a session.
    "relay:quarantine_list": U(signed_in()),
    "relay:quarantine_release": U(POST_ONLY, kwargs={"pk": "message"}, post=tenant(302, mailbox=(302, 404))),
    "relay:quarantine_delete": U(POST_ONLY, kwargs={"pk": "message"}, post=tenant(302, mailbox=(302, 404))),
    "relay:quarantine_link": U(every(404), kwargs={"token": "quarantine_token"}, post=every(404)),
    # Support routes a sender domain through a smart host (no URL in the POST: the form answers with its errors).
    "relay:domain_smarthost": U(STAFF_ONLY, kwargs={"pk": "domain"}, post=STAFF_ONLY),
}


# --- the cast of objects and signed-in clients ------------------------------------------------------------------


@pytest.fixture
def world(cast):
    objects = {}
    for key, tenant in (("a", cast.a), ("b", cast.b)):
        credential = credential_create(actor=None, domain=tenant.domain, mailbox=tenant.mailbox).credential
        message = QueuedMessage.objects.create(customer=tenant.customer, domain=tenant.domain, mailbox=tenant.mailbox,
                                               mail_from=tenant.mailbox.address, subject=f"hello from {key}")
        lockout = AuthLockout.objects.create(kind="username", value=tenant.mailbox.address, customer=tenant.customer,
                                             failures=10, locked_until=timezone.now() + timezone.timedelta(hours=1))
        session = PanelSession.objects.create(user=tenant.user, session_key=f"matrix-{key}-session-key")
        alias = alias_create(actor=None, domain=tenant.domain, local_part="team", destinations=[tenant.mailbox.address])
        api_key = api_key_create(actor=None, user=tenant.user, name=f"billing {key}").api_key
        webhook = webhook_endpoint_create(actor=tenant.user, url=f"https://hooks.{key}.test/in").endpoint
        event_record(type="customer.restored", customer_id=tenant.customer.pk, payload={})
        sender_rule = SenderRule.objects.create(customer=tenant.customer, kind="block", value=f"spam-{key}.example")
        # A forged link: the page answers 404 whoever asks.
        token = SimpleNamespace(pk=release_token(message_id=message.pk, mailbox_id=tenant.mailbox.pk)[:-4] + "AAAA")
        objects[key] = {"sender_rule": sender_rule, "quarantine_token": token, "alias": alias, "api_key": api_key, "customer": tenant.customer, "domain": tenant.domain, "mailbox": tenant.mailbox,
                        "credential": credential, "message": message, "lockout": lockout, "session": session,
                        "webhook": webhook, "webhook_delivery": webhook.deliveries.get(), "user": tenant.user,
                        "plan_template": plan_template_save(actor=None, reseller=tenant.customer.reseller,
                                                            name=f"Plan {key}", plan={}),
                        # Path arguments that are no object: a reset link that is not one, a brand colour.
                        "uid": SimpleNamespace(pk="MQ"), "token": SimpleNamespace(pk="no-such-token"),
                        "color": SimpleNamespace(pk="1f5fbf"), "export_kind": SimpleNamespace(pk="mailboxes"),
                        "login_link": SimpleNamespace(pk=f"hmsso_unknown-{key}")}
    clients = {"anonymous": Client()}
    support = Client()
    sign_in_verified(support, cast.support)
    clients["support"] = support
    for role, user in (("reseller_a", cast.reseller_a_admin), ("reseller_b", cast.reseller_b_admin),
                       ("customer_a", cast.a.user), ("customer_b", cast.b.user)):
        clients[role] = Client()
        clients[role].force_login(user)
    clients["mailbox_a"] = Client()
    response = clients["mailbox_a"].post(reverse("login"), {"username": cast.a.mailbox.address,
                                                            "password": "correct horse battery"})
    assert response.status_code == 302
    # What no one outside a tenant may ever read.
    secrets = {
        "a": ["alpha.test", "Alpha", objects["a"]["credential"].username, "Reseller A", "hello from a"],
        "b": ["bravo.test", "Bravo", objects["b"]["credential"].username, "Reseller B", "hello from b"],
        "direct": ["direct.test"],
    }
    return {"objects": objects, "clients": clients, "secrets": secrets}


def _walk(patterns, prefix="", namespace=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = ":".join(filter(None, [namespace, pattern.namespace]))
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            name = ":".join(filter(None, [namespace, pattern.name])) if pattern.name else ""
            yield name or prefix + str(pattern.pattern), prefix + str(pattern.pattern), pattern


def panel_urls():
    for key, route, pattern in _walk(get_resolver().url_patterns):
        # The API answers API keys, not sessions: its own matrix is tests/hostingmail/api/test_matrix.py.
        if route.startswith(("admin/", "^media/", "media/", "static/", "^static/", "api/")):
            continue
        yield key, route, pattern


def test_the_table_knows_every_url():
    unknown = sorted(key for key, _, _ in panel_urls() if key not in TABLE)
    assert unknown == [], f"URLs missing from the authorization table (add who may open them): {unknown}"
    stale = sorted(set(TABLE) - {key for key, _, _ in panel_urls()})
    assert stale == [], f"the table names URLs that no longer exist: {stale}"


def _url(key: str, route: str, spec: U, objects: dict) -> str:
    if spec.kwargs:
        kwargs = {name: objects[kind].pk for name, kind in spec.kwargs.items()}
        url = reverse(key, kwargs=kwargs)
    elif ":" in key or not route or key == route:
        url = "/" + route.lstrip("^").rstrip("$") if key == route else reverse(key)
    else:
        url = reverse(key)
    return url + (f"?{spec.query}" if spec.query else "")


def _request(client, method: str, url: str, data: dict | None = None):
    """One request whose writes are undone (cookies too: signing out must not end the role's session); also
    reports whether it wrote an audit entry."""
    cookies = copy.deepcopy(client.cookies)
    response, wrote = rolled_back(lambda: client.get(url) if method == "get" else client.post(url, data or {}))
    client.cookies = cookies
    return response, wrote


def test_a_request_that_writes_an_audit_entry_is_seen(world, cast):
    entries = AuditEntry.objects.count()
    suspend = reverse("reseller:customer_suspend", args=[cast.a.customer.pk])
    assert _request(world["clients"]["reseller_a"], "post", suspend, {"reason": "unpaid"}) == (ANY, True)
    assert _request(world["clients"]["reseller_a"], "post", suspend) == (ANY, False)  # no reason: refused
    assert _request(world["clients"]["reseller_a"], "get", reverse("dashboard")) == (ANY, False)
    assert AuditEntry.objects.count() == entries  # rolled back


def _matches(response, expected) -> bool:
    if expected == LOGIN:
        return response.status_code == 302 and response["Location"].startswith(reverse("login"))
    return response.status_code == expected


def _forbidden_strings(role: str, secrets: dict) -> list[str]:
    if role == "support":
        return []
    home = HOME.get(role)
    return [text for tenant, texts in secrets.items() if tenant != home for text in texts]


def test_every_url_for_every_role_and_tenant(world):
    failures = []
    for key, route, _ in panel_urls():
        spec = TABLE[key]
        tenants = ("a", "b") if spec.kwargs else (None,)
        for tenant in tenants:
            objects = world["objects"][tenant or "a"]
            url = _url(key, route, spec, objects)
            for role in ROLES:
                for method, expected_set in (("get", spec.get), ("post", spec.post)):
                    if expected_set is None:
                        continue
                    expected = expected_set.for_role(role, tenant)
                    where = f"{method.upper()} {url} as {role}"
                    try:
                        response, wrote = _request(world["clients"][role], method, url)
                    except Exception as exc:  # a crash is one more wrong answer; list them all
                        failures.append(f"{where}: raised {exc!r}")
                        continue
                    if not _matches(response, expected):
                        failures.append(f"{where}: {response.status_code}, expected {expected}")
                    foreign = tenant is not None and role != "support" and HOME.get(role) != tenant
                    if foreign and wrote:
                        failures.append(f"{where}: changed another tenant's object")
                    body = b"" if response.streaming else response.content
                    text = body.decode(errors="replace")
                    leaked = [s for s in _forbidden_strings(role, world["secrets"]) if s in text]
                    if leaked:
                        failures.append(f"{where}: shows foreign data {leaked}")
    assert failures == [], "\n".join(failures)


def test_the_leak_check_knows_whose_data_is_foreign():
    secrets = {"a": ["alpha.test"], "b": ["bravo.test"], "direct": ["direct.test"]}
    assert _forbidden_strings("customer_a", secrets) == ["bravo.test", "direct.test"]
    assert _forbidden_strings("reseller_b", secrets) == ["alpha.test", "direct.test"]
    assert _forbidden_strings("anonymous", secrets) == ["alpha.test", "bravo.test", "direct.test"]
    assert _forbidden_strings("support", secrets) == []


def test_django_admin_is_for_verified_support_staff_only(world):
    for role in ROLES:
        response = world["clients"][role].get("/admin/")
        if role == "support":
            assert response.status_code == 200
        else:
            assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), role
            assert world["clients"][role].get(response["Location"])["Location"].startswith(reverse("login"))
