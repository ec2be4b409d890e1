"""Panel sign-in for mailbox owners with their address and mailbox password."""

from django.contrib.auth.backends import BaseBackend

from accounts import hashing
from accounts.models import User
from accounts.selectors import mailbox_by_address


def _may_sign_in(mailbox) -> bool:
    return mailbox.is_active and mailbox.domain.customer.is_active


class MailboxBackend(BaseBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if not username or not password or "@" not in username:
            return None
        mailbox = mailbox_by_address(username)
        if mailbox is None:
            hashing.check_dummy(password)
            return None
        if not _may_sign_in(mailbox):
            return None
        if not hashing.check_hash(password, mailbox.password_hash):
            return None
        user, _ = User.objects.get_or_create(
            mailbox=mailbox,
            defaults={"username": f"mailbox:{mailbox.pk}", "role": User.Role.MAILBOX,
                      "customer": mailbox.domain.customer},
        )
        if not user.is_active:
            return None
        return user

    def get_user(self, user_id):
        # Checked on every request: disabling the mailbox or suspending its customer ends open sessions too.
        user = (User.objects.select_related("mailbox__domain__customer__reseller")
                .filter(pk=user_id, role=User.Role.MAILBOX, is_active=True, mailbox__isnull=False).first())
        if user is None or not _may_sign_in(user.mailbox):
            return None
        return user
