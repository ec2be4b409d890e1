"""The relay's SMTP replies: enhanced status codes (RFC 2034/3463) where aiosmtpd's texts lack them, and reply text
that never carries a client's octets (RFC 5321 4.2: printable US-ASCII)."""

import re

_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3}( |$)")
_EXACT = {
    "250 OK": "250 2.0.0 OK",
    "221 Bye": "221 2.0.0 Bye",
    "220 Ready to start TLS": "220 2.0.0 Ready to start TLS",
    "530 Must issue a STARTTLS command first": "530 5.7.0 Must issue a STARTTLS command first",
    "500 Command line too long": "500 5.5.2 Line too long",
    "500 Line too long (see RFC5321 4.5.3.1.6)": "500 5.5.2 Line too long (at most 1000 octets, RFC 5321 4.5.3.1.6)",
    "552 Error: Too much mail data": "552 5.3.4 Message size exceeds fixed limit",
    "552 Error: message size exceeds fixed maximum message size": "552 5.3.4 Message size exceeds fixed limit",
    "503 Already authenticated": "503 5.5.1 Already authenticated",
    "553 5.1.3 Error: malformed address": "501 5.1.3 Bad address syntax",
    "500 Error: strict ASCII mode": "553 5.6.7 Non-ASCII data needs SMTPUTF8",
    "554 Command refused due to lack of security": "554 5.7.0 Command refused due to lack of security",
    "501 Not enough value": "501 5.5.4 Syntax: AUTH mechanism [initial-response]",
    "501 Too many values": "501 5.5.4 Syntax: AUTH mechanism [initial-response]",
    "252 Cannot VRFY user, but will accept message and attempt delivery":
        "252 2.1.5 Cannot VRFY user, but will accept message and attempt delivery",
}
_PREFIX = [("501 ", "5.5.4"), ("503 ", "5.5.1"), ("500 ", "5.5.2"), ("502 ", "5.5.1"), ("504 ", "5.5.4"),
           ("555 ", "5.5.4"), ("538 ", "5.7.11")]
# aiosmtpd's reply to an unknown command quotes the command: the client's octets (CR, controls) in our reply.
_UNKNOWN_COMMAND = re.compile(r'^500 Error: command ".*" not recognized$', re.S)
# Octets a reply line may carry (RFC 5321 4.2: text is printable US-ASCII, SP and HT): anything else is replaced.
NOT_REPLY_TEXT = re.compile(r"[^\x20-\x7e\t]")
# Replies after which the session is over: nothing the client pipelined behind the command is run.
CLOSING = ("221 ", "421 ", "502 5.5.1 Too many unrecognized commands")
INTERNAL_ERROR = "451 4.3.0 Internal error; please try again later"
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections from your address, try again later"
NO_PROGRESS = "421 4.7.0 Too many commands without progress, closing connection"
SHUTDOWN = "421 4.3.2 Service shutting down, please try again later"


def enhance(status: str) -> str:
    if status in _EXACT:
        return _EXACT[status]
    if _UNKNOWN_COMMAND.match(status):
        return "500 5.5.2 Error: command not recognized"
    if _ENHANCED.match(status) or not status[:3].isdigit() or status[:1] in "23":
        return status
    for prefix, code in _PREFIX:
        if status.startswith(prefix):
            return f"{prefix}{code} {status[len(prefix):]}"
    return status


def clean(status: str) -> str:
    """The reply as sent: with its enhanced code, and any octet a reply may not carry replaced."""
    return NOT_REPLY_TEXT.sub("?", enhance(status))
