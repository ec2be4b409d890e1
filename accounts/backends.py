"""Panel sign-in for mailbox owners with their address and mailbox password."""

from django.contrib.auth.backends import BaseBackend

from accounts import hashing
from accounts.models import User


class MailboxBackend(BaseBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if not username or not password or "@" not in username:
            return None
        from accounts.selectors import mailbox_by_address

        mailbox = mailbox_by_address(username)
        if mailbox is None:
            hashing.check_dummy(password)
            return None
        if not (mailbox.is_active and mailbox.domain.customer.is_active):
            return None
        if not hashing.check_hash(password, mailbox.password_hash):
            return None
        user, _ = User.objects.get_or_create(
            mailbox=mailbox,
            defaults={"username": f"mailbox:{mailbox.pk}", "role": User.Role.MAILBOX, "customer": mailbox.domain.customer},
        )
        if not user.is_active:
            return None
        return user

    def get_user(self, user_id):
        try:
            return User.objects.select_related("mailbox__domain__customer").get(pk=user_id, role=User.Role.MAILBOX)
        except User.DoesNotExist:
            return None
