"""A panel user's own preferences: the panel's language."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.languages import is_supported
from accounts.models import User
from accounts.services.audit_log import audit


def user_language_set(*, actor: User, user: User, language: str, client_ip: str | None = None) -> bool:
    """The user's panel language, one of settings.LANGUAGES, or "" to follow the browser. False when it was
    already that (nothing changed, nothing audited)."""
    language = (language or "").strip()
    if language and not is_supported(language):
        raise ValidationError({"language": _("Choose one of the languages listed.")})
    with transaction.atomic():
        before = User.objects.select_for_update().values_list("language", flat=True).get(pk=user.pk)
        if before == language:
            return False
        user.language = language
        user.save(update_fields=["language"])
        audit(actor=actor, action="user.language", obj=user.customer or user.reseller or user.mailbox or user,
              before={"username": user.get_username(), "language": before},
              after={"username": user.get_username(), "language": language}, client_ip=client_ip)
    return True
