"""The cast: two resellers with a customer each, a customer directly under the provider, support staff.

Each customer has a verified, active domain with a mailbox that has SMTP access, and a customer user.
"""

from dataclasses import dataclass

from accounts.models import Customer, Domain, Mailbox, Reseller, User
from accounts.services.domains import domain_create
from accounts.services.mailboxes import mailbox_create
from accounts.services.tenants import customer_create, reseller_create, user_create

PASSWORD = "correct horse battery"


@dataclass
class Tenant:
    customer: Customer
    user: User
    domain: Domain
    mailbox: Mailbox


@dataclass
class Cast:
    support: User
    reseller_a: Reseller
    reseller_a_admin: User
    reseller_b: Reseller
    reseller_b_admin: User
    a: Tenant  # customer of reseller A
    b: Tenant  # customer of reseller B
    direct: Tenant  # customer directly under the provider


def make_tenant(name: str, domain: str, reseller: Reseller | None = None, **plan) -> Tenant:
    customer = customer_create(actor=None, name=name, reseller=reseller, **plan)
    user = user_create(actor=None, username=f"{name.lower()}-user", password=PASSWORD,
                       role=User.Role.CUSTOMER, customer=customer)
    dom = domain_create(actor=None, customer=customer, name=domain, verified=True)
    mailbox = mailbox_create(actor=None, domain=dom, local_part="info", password=PASSWORD, quota_mb=100,
                             smtp_enabled=True)
    return Tenant(customer=customer, user=user, domain=dom, mailbox=mailbox)


def make_cast() -> Cast:
    support = user_create(actor=None, username="support", password=PASSWORD, role=User.Role.SUPPORT)
    reseller_a = reseller_create(actor=None, name="Reseller A")
    reseller_b = reseller_create(actor=None, name="Reseller B")
    admin_a = user_create(actor=None, username="reseller-a", password=PASSWORD, role=User.Role.RESELLER,
                          reseller=reseller_a)
    admin_b = user_create(actor=None, username="reseller-b", password=PASSWORD, role=User.Role.RESELLER,
                          reseller=reseller_b)
    return Cast(
        support=support, reseller_a=reseller_a, reseller_a_admin=admin_a, reseller_b=reseller_b,
        reseller_b_admin=admin_b,
        a=make_tenant("Alpha", "alpha.test", reseller_a),
        b=make_tenant("Bravo", "bravo.test", reseller_b),
        direct=make_tenant("Direct", "direct.test"),
    )
