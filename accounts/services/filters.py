"""A mailbox's Sieve filters, and the automatic replies of mailboxes and aliases.

Filters are made from simple rules or written by hand, checked with Pigeonhole's `sievec` before they are saved,
and read by Dovecot from the database (the table accounts_sievescript, through dict-sql)."""

import logging
import re
import shutil
import subprocess
import tempfile
from datetime import date
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.filter_models import new_data_id
from accounts.models import Alias, AutoReply, Mailbox, SieveScript, User
from accounts.services.aliases import clean_destinations
from accounts.services.audit_log import audit, snapshot

log = logging.getLogger("accounts")

# The extensions Dovecot offers mailbox scripts (90-hostingmail.conf's sieve_extensions): automatic replies are
# the panel's own (relay.delivery.autoreply), so that they are counted and logged, aliases included.
SIEVE_EXTENSIONS = "-vacation -vacation-seconds -enotify"
MAX_SCRIPT = 64 * 1024
MAX_RULES = 50
FIELDS = {"from": ("From",), "to": ("To", "Cc"), "subject": ("Subject",)}
ACTIONS = ("fileinto", "redirect", "discard")
SIEVEC_TIMEOUT = 10.0
_FOLDER_FORBIDDEN = set("/\\*%~")


def _quote(text: str) -> str:
    # RFC 5228 2.4.2: in a quoted string only backslash and double quote are escaped.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sieve_from_rules(rules: list[dict]) -> str:
    """The Sieve script of the form's rules, in order; each matching rule ends the filtering (stop)."""
    if not rules:
        return ""
    lines = ['require ["fileinto", "mailbox"];', "# Made by the panel's filter form; edit the rules there."]
    for rule in rules:
        headers = "[" + ", ".join(_quote(h) for h in FIELDS[rule["field"]]) + "]"
        action = {"fileinto": f"fileinto :create {_quote(rule.get('target', ''))};",
                  "redirect": f"redirect {_quote(rule.get('target', ''))};", "discard": "discard;"}[rule["action"]]
        lines.append(f"if header :contains {headers} {_quote(rule['contains'])} {{\n  {action}\n  stop;\n}}")
    return "\n".join(lines) + "\n"


_SIEVEC_LINE = re.compile(r"^[^:]*: (line \d+: .*)$", re.M)


def sieve_check(script: str) -> None:
    """ValidationError on `script` with sievec's own messages (with their line numbers) unless it compiles."""
    if len(script.encode()) > MAX_SCRIPT:
        raise ValidationError({"script": _("Keep the script under %(size)s KB.") % {"size": MAX_SCRIPT // 1024}})
    if not script.strip():
        return
    sievec = shutil.which("sievec") or "/usr/bin/sievec"
    with tempfile.TemporaryDirectory(prefix="hm-sieve-") as folder:
        root = Path(folder)
        (root / "check.conf").write_text(f"plugin {{\n  sieve_extensions = {SIEVE_EXTENSIONS}\n}}\n")
        (root / "script.sieve").write_text(script, encoding="utf-8")
        try:
            done = subprocess.run([sievec, "-c", str(root / "check.conf"), str(root / "script.sieve"),
                                   str(root / "script.svbin")], capture_output=True, text=True,
                                  timeout=SIEVEC_TIMEOUT, cwd=root)
        except (FileNotFoundError, subprocess.TimeoutExpired) as error:
            log.error("sievec could not check a script: %s (install the Debian package dovecot-sieve)", error)
            raise ValidationError({"script": _("The server could not check the script just now; nothing was saved. "
                                               "Please try again later.")}) from None
    if done.returncode != 0:
        errors = _SIEVEC_LINE.findall(done.stderr) or [done.stderr.strip().splitlines()[0] if done.stderr.strip()
                                                       else _("The script does not compile.")]
        raise ValidationError({"script": [e.replace("error: ", "", 1) for e in errors[:10]]})


def clean_rules(rules: list[dict], *, mailbox: Mailbox) -> list[dict]:
    """The form's rules, checked: a field, a text, an action and its target (a folder or an address)."""
    if len(rules) > MAX_RULES:
        raise ValidationError({"rules": _("Use at most %(count)s rules.") % {"count": MAX_RULES}})
    cleaned, errors = [], []
    for n, rule in enumerate(rules, start=1):
        field, contains = rule.get("field"), (rule.get("contains") or "").strip()
        action, target = rule.get("action"), (rule.get("target") or "").strip()
        if field not in FIELDS or action not in ACTIONS:
            errors.append(_("Rule %(n)s: choose a header and an action.") % {"n": n})
            continue
        if not contains or len(contains) > 200 or any(c in contains for c in "\r\n"):
            errors.append(_("Rule %(n)s: give the text to look for (one line, up to 200 characters).") % {"n": n})
            continue
        if action == "fileinto":
            if not target or len(target) > 100:
                errors.append(_("Rule %(n)s: give the folder to move the message to.") % {"n": n})
                continue
            # Dovecot's Maildir names: "." separates a subfolder, and these would fail at delivery (the message
            # would then stay in the inbox, not where the rule says).
            if target.startswith(".") or target.endswith(".") or ".." in target or any(
                    c in _FOLDER_FORBIDDEN or not c.isprintable() for c in target):
                errors.append(_("Rule %(n)s: a folder name cannot contain / \\ * %% ~, start or end with “.”, or "
                                "hold “..” (use “Parent.Child” for a subfolder).") % {"n": n})
                continue
        elif action == "redirect":
            try:
                [target] = clean_destinations([target], customer=mailbox.domain.customer, field="target",
                                              exclude=mailbox.address)
            except ValidationError as exc:
                errors.extend(_("Rule %(n)s: %(message)s") % {"n": n, "message": m} for m in exc.messages)
                continue
            except ValueError:
                errors.append(_("Rule %(n)s: give one address to forward to.") % {"n": n})
                continue
        else:
            target = ""
        cleaned.append({"field": field, "contains": contains, "action": action, "target": target})
    if errors:
        raise ValidationError({"rules": errors})
    return cleaned


def sieve_script_save(*, actor: User | None, mailbox: Mailbox, mode: str, rules: list[dict] | None = None,
                      script: str = "", client_ip: str | None = None) -> SieveScript:
    """Save a mailbox's filters: from `rules` (mode rules) or the hand-written `script` (mode raw). Nothing is
    saved unless sievec compiles the result; Dovecot reads it at the next delivery."""
    if mode == SieveScript.Mode.RULES:
        rules = clean_rules(rules or [], mailbox=mailbox)
        script = sieve_from_rules(rules)
    elif mode == SieveScript.Mode.RAW:
        rules = []
        script = script.replace("\r\n", "\n")
    else:
        raise ValidationError({"mode": _("Choose simple rules or a Sieve script.")})
    sieve_check(script)
    with transaction.atomic():
        current = SieveScript.objects.select_for_update().filter(mailbox=mailbox).first()
        before = snapshot(current) if current else None
        if current is None:
            current = SieveScript(mailbox=mailbox, version=0)
        current.mode, current.rules, current.script = mode, rules, script
        current.username, current.data_id = mailbox.address, new_data_id()
        current.version += 1
        current.updated_at = timezone.now()
        current.save()
        audit(actor=actor, action="mailbox.filters", obj=mailbox, before=before, after=snapshot(current),
              client_ip=client_ip)
    return current


def auto_reply_save(*, actor: User | None, owner: Mailbox | Alias, enabled: bool, subject: str, body: str,
                    starts_on: date | None = None, ends_on: date | None = None, interval_days: int = 7,
                    client_ip: str | None = None) -> AutoReply:
    """Set the automatic reply of a mailbox or an alias (one each); the workers send it (relay.delivery.autoreply)."""
    subject, body = (subject or "").strip(), (body or "").strip()
    errors = {}
    if not subject or len(subject) > 200 or any(c in subject for c in "\r\n"):
        errors["subject"] = _("Give a subject of one line, up to 200 characters.")
    if not body or len(body) > 10000:
        errors["body"] = _("Give the text of the reply (up to 10 000 characters).")
    if starts_on and ends_on and ends_on < starts_on:
        errors["ends_on"] = _("The last day cannot be before the first.")
    if not 1 <= interval_days <= 365:
        errors["interval_days"] = _("Answer each sender at most once in 1 to 365 days.")
    if errors:
        raise ValidationError(errors)
    key = {"mailbox": owner} if isinstance(owner, Mailbox) else {"alias": owner}
    with transaction.atomic():
        current = AutoReply.objects.select_for_update().filter(**key).first()
        before = snapshot(current) if current else None
        current = current or AutoReply(**key)
        current.address = owner.address
        current.enabled, current.subject, current.body = enabled, subject, body
        current.starts_on, current.ends_on, current.interval_days = starts_on, ends_on, interval_days
        current.updated_at = timezone.now()
        current.save()
        audit(actor=actor, action=f"{type(owner).__name__.lower()}.auto_reply", obj=owner, before=before,
              after=snapshot(current), client_ip=client_ip)
    return current
