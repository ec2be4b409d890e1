"""The Content-Security-Policy header, and templates that keep within it (no inline script, handler or style)."""

import re
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=|\sstyle\s*=|<style|javascript:|\bhx-on", re.I)


def test_no_template_has_inline_script_handlers_or_styles():
    found = [f"{path.relative_to(TEMPLATES)}: {match[0]}" for path in TEMPLATES.rglob("*.html")
             for match in INLINE.finditer(path.read_text())]
    assert found == []


@pytest.mark.django_db
def test_every_panel_page_carries_a_policy_without_inline_script(client):
    response = client.get("/login/")
    policy = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["default-src"] == "'self'" and directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'" and directives["base-uri"] == "'none'"
    assert "unsafe" not in policy and "http" not in policy  # no inline, no eval, no other origin
