"""Prometheus metrics of the relay and the delivery workers.

Every process counts in its own registry; with PROMETHEUS_MULTIPROC_DIR set (production, several processes),
prometheus-client writes them to files there and any process's /metrics endpoint reports the sum.
"""

from prometheus_client import Counter, Histogram

SESSIONS = Counter("hostingmail_smtp_sessions", "SMTP sessions opened", ["listener"])
AUTH = Counter("hostingmail_smtp_auth", "SMTP AUTH attempts", ["result"])  # success | failure | locked | tempfail | busy
# How each AUTH's secret was checked: argon2 (the slow hash, an unknown mailbox's dummy included), hmac (a
# credential's keyed hash), cached (a mailbox password verified before: relay.models.VerifiedLogin).
AUTH_CHECKS = Counter("hostingmail_smtp_auth_checks", "SMTP AUTH secrets checked, by method", ["method"])
REJECTIONS = Counter("hostingmail_smtp_rejections", "Commands or messages refused", ["reason"])
QUOTA_REJECTIONS = Counter("hostingmail_quota_rejections", "Messages refused for a sending limit", ["level"])
ACCEPTED_MESSAGES = Counter("hostingmail_accepted_messages", "Messages accepted and queued")
ACCEPTED_BYTES = Counter("hostingmail_accepted_bytes", "Bytes of accepted messages")
ACCEPTED_RECIPIENTS = Counter("hostingmail_accepted_recipients", "Recipients of accepted messages")
DELIVERY_OUTCOMES = Counter("hostingmail_delivery_outcomes", "Per-recipient delivery results", ["outcome"])
DELIVERY_SECONDS = Histogram(
    "hostingmail_delivery_seconds", "Time of one delivery attempt to one remote host",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
BOUNCES = Counter("hostingmail_bounces", "Delivery status notifications sent")
