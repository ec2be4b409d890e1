"""Every variable the settings read is documented in .env.example."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_read_from_the_environment_is_in_env_example():
    source = (ROOT / "hostingmail" / "settings.py").read_text()
    read = set(re.findall(r'env(?:\.[a-z]+)?\(\s*"([A-Z][A-Z0-9_]+)"', source))
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "settings.py reads no variables: the pattern is out of date"
    assert sorted(read - documented) == []
