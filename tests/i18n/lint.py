"""Finds human text in a template that is not marked for translation.

The template is read with Django's own Lexer: variables, tags and whole translate / blocktranslate blocks become a
placeholder without letters (keeping the line count), comments vanish. What is left is HTML (or the plain text of a
mail) that html.parser reads: every text node, and the attributes people read (title, placeholder, aria-label, alt,
and the value of buttons), is one node. A node fails if it holds a word of two letters or more that is not a
technical term that reads the same in every language (SMTP, DKIM, …). Text inside <code>, <pre>, <kbd>, <samp>
(and script/style), or in an element of class "mono" (the panel's style for machine text: usernames, key
prefixes, header lines), is not prose: record values, commands, addresses.
"""

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from django.template.base import Lexer, TokenType

PLACEHOLDER = "\u2022"  # "•": not a letter, so not a word
# Technical words that stay as they are in every language the panel ships in.
TECHNICAL = {
    "SMTP", "IMAP", "POP3", "POP", "LMTP", "DKIM", "SPF", "DMARC", "MX", "TXT", "CNAME", "SRV", "API", "CSV", "JSON",
    "URL", "TLS", "SSL", "STARTTLS", "ARC", "SRS", "IP", "IPv4", "IPv6", "ID", "OK", "DNS", "DSN", "HTTP", "HTTPS",
    "MB", "GB", "KB", "UTC", "TOTP", "QR", "IDNA", "MTA", "ASCII", "UTF",
}
# Attributes people read (and a screen reader speaks); `value` only where it is a button's label.
HUMAN_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt"}
BUTTON_INPUTS = {"submit", "button", "reset"}
NOT_PROSE = {"code", "pre", "kbd", "samp", "script", "style"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
WORD = re.compile(r"[^\W\d_]{2,}")
TRANSLATE_TAGS = ("translate", "trans")
BLOCK_TAGS = {"blocktranslate": "endblocktranslate", "blocktrans": "endblocktrans"}
SKIPPED_BLOCKS = {"comment": "endcomment"}


@dataclass(frozen=True)
class Finding:
    line: int
    text: str

    def __str__(self):
        return f"{self.line}: {self.text!r}"


def _tag_name(contents: str) -> str:
    return contents.split(None, 1)[0] if contents.strip() else ""


def _newlines(token) -> str:
    return "\n" * token.contents.count("\n")


def flatten(source: str) -> str:
    """The template's text with every tag, variable and translated block replaced by a placeholder."""
    out: list[str] = []
    closing = None  # the end tag of the block being skipped
    for token in Lexer(source).tokenize():
        if closing is not None:
            if token.token_type == TokenType.BLOCK and _tag_name(token.contents) == closing:
                closing = None
                out.append(PLACEHOLDER)
            # the skipped part's own line breaks stay, so later lines keep their numbers
            out.append(token.contents.count("\n") * "\n")
            continue
        if token.token_type == TokenType.TEXT:
            out.append(token.contents)
        elif token.token_type == TokenType.VAR:
            out.append(PLACEHOLDER + _newlines(token))
        elif token.token_type == TokenType.BLOCK:
            name = _tag_name(token.contents)
            if name in BLOCK_TAGS:
                closing = BLOCK_TAGS[name]
            elif name in SKIPPED_BLOCKS:
                closing = SKIPPED_BLOCKS[name]
            out.append(PLACEHOLDER + _newlines(token))
        else:  # a {# comment #}
            out.append(_newlines(token))
    return "".join(out)


def unmarked_words(text: str) -> list[str]:
    return [word for word in WORD.findall(text) if word not in TECHNICAL and word.upper() not in TECHNICAL]


def _shown(text: str) -> str:
    """The node as a report shows it: one line, without the placeholders at its ends."""
    return " ".join(text.split()).strip(PLACEHOLDER + " ")


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.findings: list[Finding] = []
        self.not_prose = 0
        self.mono: list[list] = []  # [tag, how many of that tag are open] for each open class="mono" element

    def _check(self, text: str) -> None:
        if self.not_prose == 0 and unmarked_words(text):
            self.findings.append(Finding(self.getpos()[0], _shown(text)))

    def handle_starttag(self, tag, attrs):
        if tag in NOT_PROSE:
            self.not_prose += 1
        attributes = dict(attrs)
        if self.mono and self.mono[-1][0] == tag:
            self.mono[-1][1] += 1
        elif "mono" in (attributes.get("class") or "").split() and tag not in VOID:
            self.mono.append([tag, 1])
            self.not_prose += 1
        for name, value in attrs:
            if value is None:
                continue
            if name in HUMAN_ATTRIBUTES or (name == "value" and (
                    tag == "button" or (tag == "input" and (attributes.get("type") or "").lower() in BUTTON_INPUTS))):
                self._check(value)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag in NOT_PROSE:
            self.not_prose -= 1

    def handle_endtag(self, tag):
        if tag in NOT_PROSE and self.not_prose:
            self.not_prose -= 1
        if self.mono and self.mono[-1][0] == tag:
            self.mono[-1][1] -= 1
            if not self.mono[-1][1]:
                self.mono.pop()
                self.not_prose -= 1

    def handle_data(self, data):
        if data.strip():
            # getpos() is where the node starts; report the line of its first word
            line = self.getpos()[0] + data[:len(data) - len(data.lstrip())].count("\n")
            if self.not_prose == 0 and unmarked_words(data):
                self.findings.append(Finding(line, _shown(data)))


def unmarked_text(source: str) -> list[Finding]:
    """Each piece of human text of a template that is not inside a translate or blocktranslate tag."""
    collector = _Collector()
    collector.feed(flatten(source))
    collector.close()
    return collector.findings
