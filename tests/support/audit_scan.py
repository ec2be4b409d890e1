"""What no audit row may hold: the look of a secret (hashes, PEM keys, URL passwords) and the cast's secrets."""

import json
import re

from tests.support.factories import PASSWORD

SMARTHOST_PASSWORD = "sm4rt-h0st-pw"
_SHAPES = re.compile(r"\$argon2|\{ARGON2|-----BEGIN|\bmd5\$|pbkdf2_sha|\bgAAAAA|://[^\s/:@\"]*:(?!\*\*\*@)[^\s@\"]+@")


def secrets_in(entry, known: tuple[str, ...] = ()) -> list[str]:
    """The secrets found in one AuditEntry's stored text (before, after, reason, object name)."""
    text = json.dumps([entry.before, entry.after, entry.reason, entry.object_repr], ensure_ascii=False)
    found = [m[0] for m in _SHAPES.finditer(text)]
    found += [secret for secret in (PASSWORD, SMARTHOST_PASSWORD, *known) if secret and secret in text]
    return found
