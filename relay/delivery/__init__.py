"""What the Celery workers run: delivery tasks, claiming and delivering queued messages, the SMTP client, MX
routing, smart hosts, DKIM signing, bounces (DSN) and the threads' group commit.

Runs in `celery -A hostingmail worker` processes (and, for a support action, the panel). Never imported by the
relay process (relay.smtpd, relay.submission): tests/relay/test_layout.py checks that in a fresh interpreter.
"""
