"""One log line per SMTP session event: `event=auth session=… client=… customer=… credential=… result=…`.

Values are quoted when they contain spaces; passwords and secrets are never passed in.
"""

import logging
import os

logger = logging.getLogger("hostingmail.relay")

_ORDER = ("event", "session", "queue_id", "listener", "client", "customer", "credential", "mailbox", "result")


def _value(value) -> str:
    text = str(value).replace("\r", " ").replace("\n", " ")
    if not text or any(c in text for c in ' "='):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def format_event(fields: dict) -> str:
    keys = [k for k in _ORDER if k in fields] + sorted(k for k in fields if k not in _ORDER)
    return " ".join(f"{k}={_value(fields[k])}" for k in keys if fields[k] is not None)


# LogRecord's own attribute names cannot be passed in `extra`.
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def log_event(log: logging.Logger, level: int, name: str, *, exc_info=None, **fields) -> None:
    """The line as key=value text, and the same fields as record attributes for LOG_FORMAT=json."""
    if log.isEnabledFor(level):
        fields = {"event": name, "pid": os.getpid(), **fields}
        extra = {k: v for k, v in fields.items() if v is not None and k not in _RESERVED}
        log.log(level, format_event(fields), exc_info=exc_info, extra=extra)


def event(name: str, *, level: int = logging.INFO, exc_info=None, **fields) -> None:
    log_event(logger, level, name, exc_info=exc_info, **fields)
