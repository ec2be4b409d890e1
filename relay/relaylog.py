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


def event(name: str, *, level: int = logging.INFO, exc_info=None, **fields) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, format_event({"event": name, "pid": os.getpid(), **fields}), exc_info=exc_info)
