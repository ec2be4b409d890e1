"""The rules a submission session applies, as synchronous functions the relay process runs on its threads.

AUTH against the database (auth), brute-force protection (lockout), what a login may send as and how much
(policy), and accepting a message durably with its quota use (accept). Nothing here touches the event loop or
imports relay.smtpd or relay.delivery: accepted messages are handed to the workers by task name (relay.handoff).
"""
