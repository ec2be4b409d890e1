import json
import os

from django.conf import settings
from django.core.management.base import CommandError
from django.db import transaction

from accounts import hashing
from accounts.management.cli import ServiceCommand, generate_password
from accounts.models import Customer, Domain, Mailbox, Reseller, User
from accounts.services.audit_log import audit
from accounts.services.domains import domain_create
from accounts.services.mailboxes import mailbox_create, mailbox_set_password
from accounts.services.tenants import customer_create, reseller_create, user_create

PANEL_URL = "http://127.0.0.1:8000/"
RESELLER = "Demo Reseller"
SHOP, SHOP_DOMAIN = "Example Shop", "example-shop.test"
DIRECT, DIRECT_DOMAIN = "Direct Customer", "direct-customer.test"
MAILBOX_LOCAL = "info"


class Command(ServiceCommand):
    help = ("Demo data for `make run`: support user, a reseller and its admin, a customer of that reseller with a "
            "verified domain and a mailbox with SMTP access, a customer directly under the provider. Prints the "
            "logins. Safe to run again: it keeps what exists and prints the same passwords.")

    def run(self, **options) -> dict:
        if settings.PRODUCTION:
            raise CommandError("demo_data creates accounts with printed passwords: not with DJANGO_ENV=production.")
        store = settings.VAR_DIR / "demo-logins.json"
        passwords = json.loads(store.read_text()) if store.exists() else {}
        for key in ("support", "reseller", "shop", "mailbox", "direct"):
            passwords.setdefault(key, generate_password(address=f"{MAILBOX_LOCAL}@{SHOP_DOMAIN}"))
        with transaction.atomic():
            reseller = Reseller.objects.filter(name=RESELLER).first() or reseller_create(actor=None, name=RESELLER)
            shop = self._customer(SHOP, reseller)
            direct = self._customer(DIRECT, None)
            self._user("support", passwords["support"], role=User.Role.SUPPORT)
            self._user("reseller", passwords["reseller"], role=User.Role.RESELLER, reseller=reseller)
            self._user("shop", passwords["shop"], role=User.Role.CUSTOMER, customer=shop)
            self._user("direct", passwords["direct"], role=User.Role.CUSTOMER, customer=direct)
            domain = self._domain(shop, SHOP_DOMAIN, verified=True)
            self._domain(direct, DIRECT_DOMAIN, verified=False)
            mailbox = self._mailbox(domain, passwords["mailbox"])
        store.parent.mkdir(parents=True, exist_ok=True)
        store.write_text(json.dumps(passwords, indent=2))
        os.chmod(store, 0o600)
        return {
            "url": PANEL_URL,
            "logins": [
                {"who": "support staff", "username": "support", "password": passwords["support"]},
                {"who": f"reseller admin of “{RESELLER}”", "username": "reseller", "password": passwords["reseller"]},
                {"who": f"customer “{SHOP}” of “{RESELLER}”", "username": "shop", "password": passwords["shop"]},
                {"who": f"customer “{DIRECT}” directly under the provider", "username": "direct",
                 "password": passwords["direct"]},
                {"who": "mailbox owner (panel and SMTP)", "username": mailbox.address, "password": passwords["mailbox"]},
            ],
            "smtp": {"host": "127.0.0.1", "starttls_port": settings.RELAY_PUBLIC_SUBMISSION_PORT,
                     "tls_port": settings.RELAY_PUBLIC_SMTPS_PORT},
        }

    def text(self, result: dict) -> str:
        width = max(len(login["username"]) for login in result["logins"])
        lines = ["", f"hostingmail demo — open {result['url']}", ""]
        lines += [f"  {login['username']:<{width}}  {login['password']}   {login['who']}" for login in result["logins"]]
        smtp = result["smtp"]
        lines += ["", f"  SMTP relay: {smtp['host']} port {smtp['starttls_port']} (STARTTLS) or "
                      f"{smtp['tls_port']} (TLS), development certificate", ""]
        return "\n".join(lines)

    def _customer(self, name: str, reseller: Reseller | None) -> Customer:
        existing = Customer.objects.filter(name=name, reseller=reseller).first()
        return existing or customer_create(actor=None, name=name, reseller=reseller)

    def _user(self, username: str, password: str, **fields) -> User:
        user = User.objects.filter(username=username).first()
        if user is None:
            return user_create(actor=None, username=username, password=password, **fields)
        if not user.check_password(password):
            # The stored passwords were lost (var/ cleaned): the printed ones must work again.
            user.set_password(password)
            user.save(update_fields=["password"])
            audit(actor=None, action="user.password", obj=user, reason="demo_data")
        return user

    def _domain(self, customer: Customer, name: str, *, verified: bool) -> Domain:
        existing = Domain.objects.filter(name=name).first()
        return existing or domain_create(actor=None, customer=customer, name=name, verified=verified)

    def _mailbox(self, domain: Domain, password: str) -> Mailbox:
        mailbox = Mailbox.objects.filter(domain=domain, local_part=MAILBOX_LOCAL).select_related("domain").first()
        if mailbox is None:
            return mailbox_create(actor=None, domain=domain, local_part=MAILBOX_LOCAL, password=password,
                                  quota_mb=1024, smtp_enabled=True, display_name="Example Shop")
        if not hashing.check_hash(password, mailbox.password_hash):
            mailbox_set_password(actor=None, mailbox=mailbox, password=password)
        return mailbox
