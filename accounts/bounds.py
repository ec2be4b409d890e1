"""The largest number each numeric field takes, whoever sets it: forms, commands and services all read it here.

A field's bound is what its column holds on every database we run on (Django's integer ranges per field type:
PositiveIntegerField → 2147483647; SQLite would store any 64-bit number that PostgreSQL then refuses), held to a
product maximum for limits, so that sums over many rows (a pool handed out, storage allocated) stay far inside
64 bits.
"""

from django.utils.translation import gettext as _

# Every limit and quota: 2^31 − 1 recipients, bytes per message or MB of storage (2 PiB) is beyond any plan.
LIMIT_MAX = 2_147_483_647
# An SMTP credential's expiry, in days from now (about 100 years); datetime stops at the year 9999.
EXPIRES_DAYS_MAX = 36_500

_LIMIT_FIELD_TYPES = {"PositiveIntegerField", "PositiveBigIntegerField", "PositiveSmallIntegerField", "IntegerField",
                      "BigIntegerField", "SmallIntegerField"}


def column_max(model, name: str) -> int:
    """The largest value the field's column holds on any supported database."""
    from django.db.backends.base.operations import BaseDatabaseOperations  # not at import: Django's own cycle

    field = model._meta.get_field(name)
    return BaseDatabaseOperations.integer_field_ranges[field.get_internal_type()][1]


def field_max(model, name: str) -> int:
    """The largest value a form, command or service accepts for this field."""
    high = column_max(model, name)
    if model._meta.get_field(name).get_internal_type() in _LIMIT_FIELD_TYPES:
        return min(high, LIMIT_MAX)
    return high  # ids and other keys: the column's own range


def too_large(model, name: str, value: int) -> str | None:
    """The error text when value is beyond the field's bound, else None."""
    high = field_max(model, name)
    return _("Enter a number no larger than %(max)s.") % {"max": high} if value > high else None
