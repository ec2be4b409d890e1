"""The product's own mail (password resets, notices) goes out through its own outbound queue: Django's e-mail
backend here writes each message as a queued message from the system sender and hands it to the delivery workers
once committed, exactly as a DSN is. The queue retries, routes and logs it like any other mail, and the panel needs
no SMTP server of its own (settings.EMAIL_BACKEND names this class; nothing imports it).
"""

import email.utils

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.utils import timezone, translation

from relay.handoff import enqueue
from relay.models import QueuedMessage, Recipient


class QueueEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        sent = 0
        for message in email_messages:
            recipients = message.recipients()
            if not recipients:
                continue
            # The language the message was written in (a reset mail renders in its reader's: accounts.languages).
            language = translation.get_language()
            if language and not any(h.lower() == "content-language" for h in message.extra_headers):
                message.extra_headers = {**message.extra_headers, "Content-Language": language}  # RFC 3282
            content = message.message().as_bytes(linesep="\r\n")
            _, sender = email.utils.parseaddr(message.from_email or settings.DEFAULT_FROM_EMAIL)
            now = timezone.now()
            with transaction.atomic():
                queued = QueuedMessage.objects.create(
                    mail_from=sender, header_from=sender, subject=str(message.subject)[:300],
                    message_id=str(message.extra_headers.get("Message-ID", ""))[:300], size=len(content),
                    content=content, created_at=now, next_attempt_at=now)
                Recipient.objects.bulk_create(Recipient(message=queued, address=address) for address in recipients)
                transaction.on_commit(lambda pk=queued.pk: enqueue([pk]))
            sent += 1
        return sent
