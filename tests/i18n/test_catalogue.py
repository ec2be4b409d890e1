"""The German catalogue is complete, keeps every placeholder, is compiled, and is not stale."""

import gettext
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import polib
import pytest

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "locale" / "de" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
# %(name)s, %(count)d, %s, %d … (python-format; blocktranslate's {{ name }} is %(name)s in the catalogue). %% is a
# literal percent sign.
PLACEHOLDER = re.compile(r"%(?:\(\w+\))?[-#0 +]*\d*(?:\.\d+)?[sdifgeExXrac]")
# What Makefile's `messages` target collects from (and ignores).
COPIED = ["manage.py", "hostingmail", "accounts", "relay", "templates", "static", "locale"]
IGNORES = re.search(r"^I18N_IGNORE := (.*)$", (ROOT / "Makefile").read_text(), re.M)[1].split()


def _key(entry) -> tuple:
    return entry.msgctxt, entry.msgid, entry.msgid_plural


def placeholders(text: str) -> Counter:
    return Counter(PLACEHOLDER.findall(text.replace("%%", "")))


# The number a plural entry counts by: a singular may say "one" ("eine Nachricht") instead of showing it.
COUNTERS = re.compile(r"%\((count|counter|n)\)[sd]")


def placeholder_problems(po) -> list[str]:
    problems = []
    for entry in po.translated_entries():
        if entry.msgid_plural:
            pairs = [(entry.msgid if int(i) == 0 else entry.msgid_plural, text, int(i) == 0)
                     for i, text in sorted(entry.msgstr_plural.items())]
        else:
            pairs = [(entry.msgid, entry.msgstr, False)]
        for source, text, singular in pairs:
            wanted, got = placeholders(source), placeholders(text)
            missing = [p for p in (wanted - got) if not (singular and COUNTERS.fullmatch(p))]
            extra = list(got - wanted)
            if missing or extra:
                problems.append(f"{entry.msgid[:70]!r}: {text[:70]!r} lacks {missing}, adds {extra}")
    return problems


@pytest.fixture(scope="module")
def po():
    assert PO.exists(), "locale/de/LC_MESSAGES/django.po is missing: run `make messages`"
    return polib.pofile(str(PO))


def test_every_entry_is_translated_and_none_is_fuzzy(po):
    untranslated = [e.msgid[:80] for e in po.untranslated_entries()]
    fuzzy = [e.msgid[:80] for e in po.fuzzy_entries()]
    assert untranslated == [], f"{len(untranslated)} untranslated entries (translate them in {PO.name}):\n" + \
        "\n".join(untranslated)
    assert fuzzy == [], f"{len(fuzzy)} fuzzy entries (check and clear the flag):\n" + "\n".join(fuzzy)
    assert not po.metadata_is_fuzzy and po.metadata.get("Language") == "de"


def test_translations_keep_the_placeholders(po):
    problems = placeholder_problems(po)
    assert problems == [], "\n".join(problems)


def test_the_placeholder_check_catches_a_lost_or_renamed_placeholder():
    po = polib.POFile()
    po.append(polib.POEntry(msgid="Domain %(name)s added.", msgstr="Domain %(nom)s hinzugefügt."))
    po.append(polib.POEntry(msgid="%s of %s", msgstr="%s"))
    po.append(polib.POEntry(msgid="Used %(pct)s%%", msgstr="%(pct)s%% belegt"))
    po.append(polib.POEntry(msgid="%(count)d message", msgid_plural="%(count)d messages",
                            msgstr_plural={0: "eine Nachricht", 1: "%(count)d Nachrichten"}))
    po.append(polib.POEntry(msgid="%(count)d domain", msgid_plural="%(count)d domains",
                            msgstr_plural={0: "%(count)d Domain", 1: "viele Domains"}))
    problems = placeholder_problems(po)
    assert len(problems) == 3 and "Domain %(name)s" in problems[0] and "%s of %s" in problems[1] \
        and "%(count)d domain" in problems[2]


def test_the_compiled_catalogue_is_the_po(po):
    assert MO.exists(), "locale/de/LC_MESSAGES/django.mo is missing: run `make messages`"
    with MO.open("rb") as f:
        compiled = dict(gettext.GNUTranslations(f)._catalog)
    compiled.pop("", None)  # the header
    expected = {}
    for entry in po.translated_entries():
        msgid = f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid
        if entry.msgid_plural:
            for n, text in entry.msgstr_plural.items():
                expected[(msgid, int(n))] = text
        else:
            expected[msgid] = entry.msgstr
    assert compiled == expected, "the .mo differs from the .po: run `make messages` and commit both"


def test_the_catalogue_has_every_marked_string_and_no_other(po, tmp_path):
    project = tmp_path / "project"
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            project.mkdir(exist_ok=True)
            shutil.copy2(source, project / name)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hostingmail.settings", "PYTHONPATH": str(project)}
    result = subprocess.run([sys.executable, "manage.py", "makemessages", "-l", "de", "--add-location=file",
                             "--no-obsolete", *IGNORES], cwd=project, env=env, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stderr
    fresh = polib.pofile(str(project / "locale" / "de" / "LC_MESSAGES" / "django.po"))
    fresh_keys = {_key(e) for e in fresh if not e.obsolete}
    committed = {_key(e) for e in po if not e.obsolete}
    missing = sorted(fresh_keys - committed, key=str)
    stale = sorted(committed - fresh_keys, key=str)
    assert (missing, stale) == ([], []), (
        "locale/de/LC_MESSAGES/django.po is stale: run `make messages`, translate, and commit the .po and .mo.\n"
        f"marked but not in the catalogue: {[m[1][:60] for m in missing]}\n"
        f"in the catalogue but no longer marked: {[s[1][:60] for s in stale]}")
