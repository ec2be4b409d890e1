"""Every template's human text is marked for translation (tests/i18n/lint.py says how it is found). The DSN
templates are protocol and stay English."""

from pathlib import Path

import pytest

from tests.i18n.lint import unmarked_text

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
# Delivery status notifications: protocol text (RFC 3464), English everywhere.
PROTOCOL = {"relay/email/bounce.txt", "relay/email/delay.txt"}
# The templates this part of the product added itself: they must pass already.
LANGUAGE_TEMPLATES = ["_language_switcher.html", "accounts/self/language.html", "accounts/self/_language_form.html"]


def _templates() -> list[str]:
    return sorted(str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*") if p.is_file()
                  and str(p.relative_to(TEMPLATES)) not in PROTOCOL)


def _report(names) -> list[str]:
    failures = []
    for name in names:
        for finding in unmarked_text((TEMPLATES / name).read_text()):
            failures.append(f"templates/{name}:{finding.line}: {finding.text}")
    return failures


def test_every_template_marks_its_human_text():
    failures = _report(_templates())
    assert failures == [], f"{len(failures)} unmarked texts:\n" + "\n".join(failures)


@pytest.mark.parametrize("name", LANGUAGE_TEMPLATES)
def test_the_language_templates_mark_their_text(name):
    assert _report([name]) == []


def test_the_texts_base_html_hands_to_the_script_are_marked():
    source = (TEMPLATES / "base.html").read_text()
    for attribute in ("data-text-copied", "data-text-table", "data-text-scrolls"):
        assert f'{attribute}="{{% translate ' in source


# --- the lint itself ---------------------------------------------------------------------------------------------


def _lines(source: str) -> list[tuple[int, str]]:
    return [(f.line, f.text) for f in unmarked_text(source)]


def test_lint_catches_unmarked_text_with_its_line():
    source = "{% load i18n %}\n<h1>{% translate 'Domains' %}</h1>\n<p>\n  Add a domain first.</p>\n"
    assert _lines(source) == [(4, "Add a domain first.")]


def test_lint_passes_marked_text_and_blocktranslate_with_variables():
    source = ("{% load i18n %}<p>{% translate \"Add a domain first.\" %}</p>\n"
              "<p>{% blocktranslate trimmed with name=domain.name count counter=n %}\n  {{ name }} has one mailbox.\n"
              "{% plural %}{{ name }} has {{ counter }} mailboxes.{% endblocktranslate %}</p>\n"
              "<p>{{ domain.name }} · {{ count }}</p>{# a comment with words #}"
              "{% comment %}Words in a comment{% endcomment %}")
    assert _lines(source) == []


def test_lint_ignores_code_and_technical_words():
    source = ("<pre>v=DKIM1; k=rsa; p=abc</pre><code>mail.example.com</code><kbd>swaks --to someone</kbd>"
              "<samp>250 Ok queued</samp><th>SMTP</th><td>MX · SPF · DKIM · DMARC</td><td>API</td>")
    assert _lines(source) == []


def test_lint_ignores_machine_text_in_mono_elements_only_while_they_are_open():
    source = ('<dd class="mono">Authorization: Bearer {{ secret }}</dd><td class="mono"><span>hm_{{ p }}_</span></td>'
              '<dd>Send it as</dd><input class="mono" value="x"><p>After an input</p>')
    assert [text for _, text in _lines(source)] == ["Send it as", "After an input"]


def test_lint_checks_the_attributes_people_read():
    source = ('<input placeholder="Search"><img alt="Logo"><a title="Open it" aria-label="Open">x</a>'
              '<button value="go now">{% translate "Go" %}</button><input type="submit" value="Save">'
              '<input type="hidden" name="next" value="somewhere else"><a href="words/in/urls">{{ x }}</a>')
    assert [text for _, text in _lines(source)] == ["Search", "Logo", "Open it", "Open", "go now", "Save"]


def test_lint_sees_text_between_tags_and_variables():
    assert _lines("<td>{{ n }} of {{ m }} used</td>") == [(1, "of • used")]
    assert _lines('<option value="">As my browser says</option>') == [(1, "As my browser says")]


def test_lint_reads_plain_text_mail():
    assert _lines("{% autoescape off %}Hello {{ user }},\n{% endautoescape %}") == [(1, "Hello •,")]
