"""Build a large, realistic data set fast: resellers, customers, domains, mailboxes, credentials, audit entries.

    manage.py seed_scale --resellers 1000 --customers 50000 --domains 100000 --mailboxes 200000

Everything is named after --prefix, so running it again adds only what is missing. To stay fast it inserts in
batches with bulk_create, hashes one password (and one credential secret) once and reuses the hash, and makes
ONE DKIM key pair that every seeded domain shares: generating 100 000 RSA keys would take hours and the key's
value does not change what the panel's pages cost. Never run it against a production database.

Layout: customer i belongs to reseller i % resellers (every tenth customer directly to the provider), domain i
to customer i % customers, mailbox i to domain i % domains, credential i to mailbox i % mailboxes.
"""

import time

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts import hashing
from accounts.models import AuditEntry, Customer, Domain, Mailbox, Reseller, SmtpCredential, User
from accounts.services.domains import dkim_keypair

PASSWORD = "scale-password-1"


class Command(BaseCommand):
    help = "Seed a large data set (bulk inserts, idempotent per --prefix) for benchmarks."

    def add_arguments(self, parser):
        parser.add_argument("--resellers", type=int, default=1000)
        parser.add_argument("--customers", type=int, default=50000)
        parser.add_argument("--domains", type=int, default=100000)
        parser.add_argument("--mailboxes", type=int, default=200000)
        parser.add_argument("--credentials", type=int, default=None, help="default: a quarter of --mailboxes")
        parser.add_argument("--audit", type=int, default=None, help="audit entries; default: --customers")
        parser.add_argument("--prefix", default="scale", help="names start with it; letters, digits and '-'")
        parser.add_argument("--batch", type=int, default=5000)

    def handle(self, *args, **opts):
        prefix = opts["prefix"]
        if not prefix or not all(c.isalnum() or c == "-" for c in prefix) or not prefix[0].isalnum():
            raise CommandError("--prefix must be letters, digits and '-', starting with a letter or digit")
        counts = {k: opts[k] for k in ("resellers", "customers", "domains", "mailboxes")}
        counts["credentials"] = opts["credentials"] if opts["credentials"] is not None else opts["mailboxes"] // 4
        counts["audit"] = opts["audit"] if opts["audit"] is not None else opts["customers"]
        if any(v < 0 for v in counts.values()):
            raise CommandError("counts must be zero or more")
        for child, parent in (("customers", "resellers"), ("domains", "customers"), ("mailboxes", "domains"),
                              ("credentials", "mailboxes")):
            if counts[child] and not counts[parent] and parent != "resellers":
                raise CommandError(f"--{child} needs at least one of --{parent}")
        seeder = Seeder(prefix=prefix, batch=opts["batch"], out=self.stdout)
        started = time.monotonic()
        seeder.run(counts)
        self.stdout.write(f"done in {time.monotonic() - started:.1f} s: "
                          + ", ".join(f"{v} {k}" for k, v in counts.items()))


class Seeder:
    def __init__(self, *, prefix: str, batch: int, out):
        self.prefix, self.batch, self.out = prefix, batch, out
        self.now = timezone.now()
        self.domain_suffix = f".{prefix}.example"

    def _insert(self, label: str, model, make, indexes, **kwargs) -> None:
        """bulk_create make(i) for every i, in batches, each in its own transaction, printing progress."""
        indexes = list(indexes)
        started = time.monotonic()
        for start in range(0, len(indexes), self.batch):
            rows = [make(i) for i in indexes[start:start + self.batch]]
            with transaction.atomic():
                model.objects.bulk_create(rows, batch_size=self.batch, **kwargs)
            done = min(start + self.batch, len(indexes))
            self.out.write(f"  {label}: {done}/{len(indexes)} ({time.monotonic() - started:.1f} s)")
        if not indexes:
            self.out.write(f"  {label}: nothing to add")

    @staticmethod
    def _missing(wanted: list[str], existing) -> list[int]:
        have = set(existing)
        return [i for i, name in enumerate(wanted) if name not in have]

    def run(self, counts: dict) -> None:
        p = self.prefix
        self.out.write("hashing the shared password and generating the shared DKIM key pair")
        mail_hash = hashing.make_hash(PASSWORD)
        secret_hash = hashing.make_secret_hash(PASSWORD)
        user_hash = make_password(PASSWORD)
        dkim_private, dkim_public = dkim_keypair()

        # Resellers and their admins.
        names = [f"{p}-r{i:05}" for i in range(counts["resellers"])]
        todo = self._missing(names, Reseller.objects.filter(name__startswith=f"{p}-r").values_list("name", flat=True))
        self._insert("resellers", Reseller, lambda i: Reseller(name=names[i], panel_title=f"{names[i]} Mail"), todo)
        reseller_ids = dict(Reseller.objects.filter(name__in=names).values_list("name", "id"))
        reseller_ids = [reseller_ids[n] for n in names]
        self._insert("reseller admins", User, lambda i: User(
            username=f"{names[i]}-admin", password=user_hash, role=User.Role.RESELLER,
            reseller_id=reseller_ids[i]), range(len(names)), ignore_conflicts=True)
        User.objects.get_or_create(username=f"{p}-support", defaults={
            "password": user_hash, "role": User.Role.SUPPORT, "is_staff": True})

        # Customers (every tenth directly under the provider) and one user each.
        names = [f"{p}-c{i:06}" for i in range(counts["customers"])]

        def customer_reseller(i):
            return None if not reseller_ids or i % 10 == 9 else reseller_ids[i % len(reseller_ids)]

        todo = self._missing(names, Customer.objects.filter(name__startswith=f"{p}-c").values_list("name", flat=True))
        self._insert("customers", Customer, lambda i: Customer(
            name=names[i], reseller_id=customer_reseller(i), contact_email=f"{names[i]}@example.net"), todo)
        customer_ids = dict(Customer.objects.filter(name__startswith=f"{p}-c").values_list("name", "id"))
        customer_ids = [customer_ids[n] for n in names]
        self._insert("customer users", User, lambda i: User(
            username=f"{names[i]}-user", password=user_hash, role=User.Role.CUSTOMER, customer_id=customer_ids[i]),
            range(len(names)), ignore_conflicts=True)

        # Verified, active domains sharing one DKIM key pair.
        names = [f"d{i:06}{self.domain_suffix}" for i in range(counts["domains"])]
        self._insert("domains", Domain, lambda i: Domain(
            name=names[i], customer_id=customer_ids[i % len(customer_ids)], status=Domain.DomainStatus.ACTIVE,
            verified_at=self.now, dkim_selector="hm1", dkim_private_key=dkim_private, dkim_public_key=dkim_public),
            range(len(names)), ignore_conflicts=True)
        domain_ids = dict(Domain.objects.filter(name__endswith=self.domain_suffix).values_list("name", "id"))
        domain_ids = [domain_ids[n] for n in names]

        # Mailboxes: one password hash for all.
        self._insert("mailboxes", Mailbox, lambda i: Mailbox(
            domain_id=domain_ids[i % len(domain_ids)], local_part=f"u{i:06}", password_hash=mail_hash, quota_mb=512,
            smtp_enabled=i % 2 == 0), range(counts["mailboxes"]), ignore_conflicts=True)
        mailbox_ids = dict(Mailbox.objects.filter(domain__name__endswith=self.domain_suffix)
                           .values_list("local_part", "id"))
        mailbox_ids = [mailbox_ids[f"u{i:06}"] for i in range(counts["mailboxes"])]

        def credential(i):
            m = i % len(mailbox_ids)
            d = m % len(domain_ids)
            return SmtpCredential(username=f"{p}-smtp-{i:06}", secret_hash=secret_hash, mailbox_id=mailbox_ids[m],
                                  domain_id=domain_ids[d], customer_id=customer_ids[d % len(customer_ids)],
                                  description="seeded")

        self._insert("credentials", SmtpCredential, credential, range(counts["credentials"]), ignore_conflicts=True)

        # Audit entries, as if every customer had been created and changed by hand.
        have = AuditEntry.objects.filter(action="seed.change", object_repr__startswith=f"{p}-").count()

        def entry(i):
            c = i % len(customer_ids)
            r = customer_reseller(c)
            return AuditEntry(actor_label="system", action="seed.change", object_type="customer",
                              object_id=str(customer_ids[c]), object_repr=f"{p}-c{c:06}", customer_id=customer_ids[c],
                              reseller_id=r, after={"max_domains": 5}, reason="seeded", created_at=self.now)

        self._insert("audit entries", AuditEntry, entry, range(have, counts["audit"]) if customer_ids else [])
