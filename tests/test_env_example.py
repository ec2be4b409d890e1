"""Every variable the settings read is documented in .env.example."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_read_from_the_environment_is_in_env_example():
    source = (ROOT / "hostingmail" / "settings.py").read_text()
    read = set(re.findall(r'env(?:\.[a-z]+)?\(\s*"([A-Z][A-Z0-9_]+)"', source))
    # Variables the code reads directly (outside settings), except Django's own.
    for path in [*ROOT.glob("accounts/**/*.py"), *ROOT.glob("relay/**/*.py"), *ROOT.glob("hostingmail/**/*.py")]:
        read |= set(re.findall(r'os\.(?:environ\.get\(|environ\[|getenv\()\s*"([A-Z][A-Z0-9_]+)"', path.read_text()))
    read.discard("DJANGO_SETTINGS_MODULE")
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "settings.py reads no variables: the pattern is out of date"
    assert sorted(read - documented) == []
