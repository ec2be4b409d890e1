"""Logs as one JSON object per line (LOG_FORMAT=json), and a filter that keeps secrets out of every log line.

Callers add context with ``extra=``: session, queue_id, customer, credential, client_ip, result (and any other
field); the formatter writes each one as a key beside time, level, logger and message.
"""

import json
import logging
import re
from datetime import datetime, timezone

REDACTED = "[redacted]"

# Attributes every LogRecord has; anything else on a record came from `extra=` and is written out.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}

_SECRET_KEY = re.compile(r"pass(word|wd|phrase)?|secret|token|api[_-]?key|auth[_-]?(data|payload|string)|"
                         r"credentials?_?(secret|password)|private[_-]?key", re.I)
_SECRET_PATTERNS = [
    # password=..., secret: ..., "token": "..." — the value up to a separator or a closing quote.
    (re.compile(r"""(?P<key>\b[\w-]*(?:pass(?:word|wd|phrase)?|secret|token|api[_-]?key)[\w-]*["']?\s*[=:]\s*["']?)"""
                r"""(?P<val>[^\s"',;}]+)""", re.I), r"\g<key>" + REDACTED),
    # SMTP AUTH with an initial response (RFC 4954): AUTH PLAIN <base64>, AUTH LOGIN <base64>.
    (re.compile(r"(?P<key>\bAUTH\s+(?:PLAIN|LOGIN|XOAUTH2|OAUTHBEARER)\s+)(?P<val>\S+)", re.I), r"\g<key>" + REDACTED),
    # user:password@host in URLs (smart host, broker and database URLs).
    (re.compile(r"(?P<key>\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)(?P<val>[^/\s@]+)(?=@)", re.I), r"\g<key>" + REDACTED),
    # One-time sign-in links (accounts.services.login_links): the token is in the link's path.
    (re.compile(r"(?P<key>\bhmsso_)(?P<val>[A-Za-z0-9_-]+)"), r"\g<key>" + REDACTED),
    # HTTP-style authorization headers.
    (re.compile(r"(?P<key>\b(?:Basic|Bearer)\s+)(?P<val>[A-Za-z0-9+/=._~-]{8,})"), r"\g<key>" + REDACTED),
]


def scrub(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _scrub_value(key: str, value):
    if _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_value(key, v) for v in value]
    return value


class ScrubSecrets(logging.Filter):
    """Rewrites the record in place: the message is rendered and scrubbed, secret-looking extras are redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = scrub(message), None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD:
                setattr(record, key, _scrub_value(key, value))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = _scrub_value(key, value)
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = scrub(self.formatStack(record.stack_info))
        # default=str: an extra that is a model or a datetime is written as its text; newlines stay escaped.
        return json.dumps(entry, default=str, ensure_ascii=False)
