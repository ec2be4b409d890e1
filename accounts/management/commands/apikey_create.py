"""Create an API key for a user: `manage.py apikey_create --user reseller-a --name billing [--read-only]
[--networks 192.0.2.0/24] [--expires-days 365] [--json]`. The key is printed once."""

import json
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import User
from accounts.services.api_keys import api_key_create


class Command(BaseCommand):
    help = "Create an API key acting as a support, reseller admin or customer user; prints the key once."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="The username the key acts as.")
        parser.add_argument("--name", required=True, help="What uses it, e.g. “billing system”.")
        parser.add_argument("--read-only", action="store_true", help="It may read but never change anything.")
        parser.add_argument("--networks", default="", help="Addresses or CIDR networks it may be used from.")
        parser.add_argument("--expires-days", type=int, default=None, help="Expires after this many days.")
        parser.add_argument("--json", action="store_true", help="Print the result as one JSON object.")

    def handle(self, *args, **options):
        user = User.objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user named {options['user']!r}.")
        expires = timezone.now() + timedelta(days=options["expires_days"]) if options["expires_days"] else None
        try:
            new = api_key_create(actor=None, user=user, name=options["name"], read_only=options["read_only"],
                                 allowed_networks=options["networks"], expires_at=expires)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from None
        key = new.api_key
        if options["json"]:
            self.stdout.write(json.dumps({
                "id": key.pk, "name": key.name, "user": user.get_username(), "role": user.role,
                "read_only": key.read_only, "allowed_networks": key.allowed_networks.split(),
                "expires_at": key.expires_at.isoformat() if key.expires_at else None, "key": new.secret}))
        else:
            self.stdout.write(f"API key “{key.name}” for {user.get_username()} ({user.role}):\n{new.secret}\n"
                              "Shown only this once: copy it now.")
