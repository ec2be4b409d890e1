"""The rules the MX (`manage.py runmx`) applies to inbound mail, run on the relay machinery's threads.

Plain synchronous functions, like relay.submission's: which recipients the MX takes (`rules`), whether a message
loops, who the sender is proven to be (`senderauth`: SPF, DKIM, DMARC and the Authentication-Results header), and
accepting a message durably with its per-recipient routes (`accept`). The event loop and the handler are
relay.smtpd.mx; delivery into the mailboxes is the workers' (relay.delivery.lmtp), never imported here.
"""
