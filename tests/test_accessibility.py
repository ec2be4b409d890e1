"""The panel's markup, page by page: every page of the authorization matrix, for every role that may open it, GET
and (where the matrix posts) an empty POST that answers with the form's errors.

What is checked needs no browser: every aria-describedby, aria-labelledby and label[for] names an id on the page,
the first thing the keyboard reaches is the skip link to the main landmark, and the page links the favicon. The
browser's part (axe-core, focus, phone width) is tests/browser/test_accessibility.py.
"""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from tests.test_authorization_matrix import ROLES, TABLE, _request, _url, panel_urls, world  # noqa: F401

pytestmark = pytest.mark.django_db

FOCUSABLE = {"a", "button", "input", "select", "textarea", "summary"}
# Words that say nothing about their object when a table repeats them on every row.
BARE = {"edit", "delete", "view", "revoke", "lift", "release", "redeliver", "remove", "open", "details", "limits",
        "suspend", "restore", "change", "settings", "route", "smart host"}


class PageMarkup(HTMLParser):
    """The ids on a page, what points at them, and the first element the Tab key reaches."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: dict[str, str] = {}
        self.references: list[tuple[str, str, str]] = []  # (tag, attribute, id)
        self.first_focusable: dict | None = None
        self.icons: list[str] = []
        self.cells = 0  # how deep inside table cells the parser is
        self.action: dict | None = None  # the link or button being read, and its text so far
        self.row_actions: list[str] = []  # each table link's or button's accessible name

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids[attrs["id"]] = tag
        for name in ("aria-describedby", "aria-labelledby"):
            for target in (attrs.get(name) or "").split():
                self.references.append((tag, name, target))
        if tag == "label" and attrs.get("for"):
            self.references.append((tag, "for", attrs["for"]))
        if tag == "link" and "icon" in (attrs.get("rel") or "").split():
            self.icons.append(attrs.get("href") or "")
        if self.first_focusable is None and self._focusable(tag, attrs):
            self.first_focusable = {"tag": tag, **attrs}
        if tag == "td":
            self.cells += 1
        if tag in ("a", "button") and self.cells and tag != "br":
            self.action = {"tag": tag, "text": "", "label": attrs.get("aria-label")}

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag in ("a", "button"):
            self.handle_endtag(tag)

    def handle_data(self, data):
        if self.action is not None:
            self.action["text"] += data

    def handle_endtag(self, tag):
        if tag == "td" and self.cells:
            self.cells -= 1
        if self.action is not None and tag == self.action["tag"]:
            self.row_actions.append(" ".join((self.action["label"] or self.action["text"]).split()))
            self.action = None

    @staticmethod
    def _focusable(tag, attrs) -> bool:
        if "disabled" in attrs or (attrs.get("tabindex") or "0").lstrip("-") != (attrs.get("tabindex") or "0"):
            return False
        if tag == "a":
            return "href" in attrs
        if tag == "input":
            return attrs.get("type") != "hidden"
        return tag in FOCUSABLE or "tabindex" in attrs

    def missing_targets(self) -> list[str]:
        return [f'<{tag} {name}="{target}">' for tag, name, target in self.references if target not in self.ids]


def parse(html: str) -> PageMarkup:
    markup = PageMarkup()
    markup.feed(html)
    markup.close()
    return markup


def panel_pages(world):
    """(where, response) for every HTML page of the panel each role may open, and each form's error answer.

    Only the requests the authorization table answers with a page (200, or 400 for a form's errors): the others are
    redirects, 403s and 404s, whose answers tests/test_authorization_matrix.py checks."""
    for key, route, _ in panel_urls():
        spec = TABLE[key]
        for tenant in ("a", "b") if spec.kwargs else (None,):
            url = _url(key, route, spec, world["objects"][tenant or "a"])
            for role in ROLES:
                for method, expected in (("get", spec.get), ("post", spec.post)):
                    if expected is None or expected.for_role(role, tenant) not in (200, 400):
                        continue
                    response, _ = _request(world["clients"][role], method, url)
                    if response.status_code in (200, 400) and response.get("Content-Type", "").startswith("text/html"):
                        yield f"{method.upper()} {url} as {role}", response.content.decode()


@pytest.fixture(scope="module")
def _rendered() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def pages(_rendered, request) -> list[tuple[str, str]]:
    """panel_pages, walked once for this module's checks: each reads the markup, none writes, so the pages
    of the first test's walk serve the others (instead of rendering them again for each)."""
    if not _rendered:
        _rendered.extend(panel_pages(request.getfixturevalue("world")))
    return _rendered


def test_described_and_labelled_by_ids_that_exist_on_every_page(pages):
    failures = []
    for where, html in pages:
        missing = parse(html).missing_targets()
        if missing:
            failures.append(f"{where}: {', '.join(sorted(set(missing)))}")
    assert len(pages) > 100, len(pages)  # the walk reached the panel, not only error pages
    assert failures == [], "\n".join(failures)


def test_skip_link_is_the_first_focusable_element_and_reaches_main(pages):
    failures = []
    for where, html in pages:
        if "<main" not in html:  # not a panel page (the API's documentation has its own layout)
            continue
        markup = parse(html)
        first = markup.first_focusable or {}
        target = (first.get("href") or "").removeprefix("#")
        if first.get("class") != "skip-link" or markup.ids.get(target) != "main":
            failures.append(f"{where}: the first focusable element is {first}")
        if not any(icon.endswith("favicon.svg") for icon in markup.icons):
            failures.append(f"{where}: no favicon linked")
    assert failures == [], "\n".join(failures)


def test_describedby_points_at_the_rendered_help_text_and_error(client, cast):
    """A form rendered field by field (the support console's limits) still renders the ids its inputs name."""
    from tests.support.signin import sign_in_verified

    sign_in_verified(client, cast.support)
    response = client.post(reverse("support:customer_limits", args=[cast.a.customer.pk]), {"send_per_hour": "-5"})
    markup = parse(response.content.decode())
    described = [target for tag, name, target in markup.references if name == "aria-describedby"]
    assert any(target.endswith("_error") for target in described), described
    assert markup.missing_targets() == []
    assert 'role="alert"' in response.content.decode()  # the error summary is announced


def test_row_actions_in_tables_say_what_they_act_on(pages):
    failures, actions = [], 0
    for where, html in pages:
        markup = parse(html)
        actions += len(markup.row_actions)
        bare = sorted({name for name in markup.row_actions if name.lower() in BARE})
        if bare:
            failures.append(f"{where}: {bare}")
    assert actions > 50, actions
    assert failures == [], "\n".join(failures)


def test_favicon_ico_answers_with_the_svg_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("/static/favicon.svg")
