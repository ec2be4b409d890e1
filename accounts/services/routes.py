"""Telling the MX processes that where mail goes has changed (accounts.models.RouteGeneration).

Every service that suspends, deletes or re-points something a recipient address resolves through calls
`routes_changed` inside its transaction: the MX reads the generation once per SMTP transaction and forgets the
recipients it remembered when it moved, so the change is taken at the next RCPT, on every MX process.
"""

from django.db import IntegrityError, transaction
from django.db.models import F

from accounts.models import RouteGeneration


def routes_changed() -> None:
    if RouteGeneration.objects.filter(pk=1).update(value=F("value") + 1):
        return
    try:  # the row is made by the migration; a flushed test database has none
        with transaction.atomic():
            RouteGeneration.objects.create(pk=1, value=1)
    except IntegrityError:
        RouteGeneration.objects.filter(pk=1).update(value=F("value") + 1)
