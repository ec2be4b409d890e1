import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.template import Context, Template
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from relay.panel.templatetags.relay_charts import PLOT_H, nice_ceiling
from tests.support.logdata import make_message

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    """Support's chart keeps its earlier days in the cache: every test here starts without them."""
    cache.clear()
SVG = ""  # inline SVG in HTML needs no namespace


def render_chart(user, tag_args=""):
    request = RequestFactory().get("/")
    request.user = user
    html = Template("{% load relay_charts %}{% sending_chart " + tag_args + " %}").render(
        Context({"request": request, "user": user, "customer": getattr(user, "customer", None)}))
    svg = re.search(r"<svg.*</svg>", html, re.S).group(0)
    return html, ET.fromstring(svg)


def bars(svg):
    """{day: {series: (value, height)}} read back from the picture."""
    out = {}
    for group in svg.iter(f"{SVG}g"):
        if group.get("class") == "day":
            out[group.get("data-day")] = {
                r.get("data-series"): (int(r.get("data-value")), float(r.get("height")))
                for r in group.iter(f"{SVG}rect")
            }
    return out


def test_nice_ceiling():
    assert [nice_ceiling(v) for v in (0, 1, 3, 4, 5, 7, 10, 11, 180, 2001)] == [1, 1, 5, 5, 5, 10, 10, 20, 200, 5000]


def test_chart_draws_bars_of_the_right_height_for_known_data(cast):
    now = timezone.now()
    make_message(cast.a, to=("d1@x.org", "d2@x.org"), recipient_state="delivered")
    make_message(cast.a, to=("q@x.org",), recipient_state="deferred")
    make_message(cast.a, to=("b@x.org",), recipient_state="bounced")
    make_message(cast.a, to=("y@x.org",), created_at=now - timedelta(days=1))
    make_message(cast.b, to=(f"o{i}@x.org" for i in range(9)), recipient_state="delivered")  # not a's

    html, svg = render_chart(cast.a.user, "customer=customer")
    drawn = bars(svg)
    assert len(drawn) == 14
    today, yesterday = timezone.localdate().isoformat(), (timezone.localdate() - timedelta(days=1)).isoformat()
    unit = PLOT_H / 5  # the tallest value, 4, puts the axis top at 5
    assert drawn[today] == {"sent": (4, 4 * unit), "delivered": (2, 2 * unit), "deferred": (1, unit),
                            "bounced": (1, unit)}
    assert drawn[yesterday] == {"sent": (1, unit), "delivered": (0, 0.0), "deferred": (0, 0.0), "bounced": (0, 0.0)}
    assert all(h == 0 for day, series in drawn.items() if day not in (today, yesterday) for _, h in series.values())
    # An accessible picture with a legend.
    assert svg.get("role") == "img"
    assert svg.find(f"{SVG}title").text == "Mail sent over the last 14 days"
    assert "5 recipients accepted, 2 delivered, 1 deferred, 1 bounced" in svg.find(f"{SVG}desc").text
    legend = [t.text for t in svg.find(f"{SVG}g[@class='legend']").iter(f"{SVG}text")]
    assert legend == ["Sent (accepted)", "Delivered", "Deferred", "Bounced"]


def test_chart_without_a_scope_shows_what_the_viewer_may_see(cast):
    make_message(cast.a, to=("a@x.org",))
    make_message(cast.b, to=("b1@x.org", "b2@x.org"))
    today = timezone.localdate().isoformat()
    assert bars(render_chart(cast.support)[1])[today]["sent"][0] == 3
    assert bars(render_chart(cast.reseller_b_admin)[1])[today]["sent"][0] == 2
    assert bars(render_chart(cast.reseller_b_admin, "reseller=user.reseller")[1])[today]["sent"][0] == 2


def test_empty_chart_draws_flat_bars(cast):
    drawn = bars(render_chart(cast.a.user, "customer=customer")[1])
    assert {h for series in drawn.values() for _, h in series.values()} == {0.0}


def test_dashboards_show_the_chart(client, cast):
    make_message(cast.a, to=("a@x.org",))
    make_message(cast.b, to=("b@x.org", "c@x.org"))
    for user, sent in ((cast.a.user, 1), (cast.reseller_b_admin, 2), (cast.support, 3)):
        client.force_login(user)
        page = client.get(reverse("dashboard")).content.decode()
        assert "Mail sent over the last 14 days" in page
        assert f"{sent} recipient{'s' if sent > 1 else ''} accepted" in page
    client.force_login(cast.support)
    page = client.get(reverse("customer_dashboard", args=[cast.a.customer.pk])).content.decode()
    assert "1 recipient accepted" in page


def test_supports_chart_of_everything_counts_today_live_and_earlier_days_once_per_period(cast, settings):
    yesterday = timezone.now() - timedelta(days=1)
    make_message(cast.a, to=("y1@x.org",), created_at=yesterday)
    days = {d: series["sent"][0] for d, series in bars(render_chart(cast.support)[1]).items()}
    today, before = timezone.localdate().isoformat(), (timezone.localdate() - timedelta(days=1)).isoformat()
    assert (days[before], days[today]) == (1, 0)

    make_message(cast.b, to=("y2@x.org",), created_at=yesterday)
    make_message(cast.b, to=("t1@x.org", "t2@x.org"))
    with CaptureQueriesContext(connection) as ctx:
        drawn = bars(render_chart(cast.support)[1])
    assert len(ctx.captured_queries) == 1  # today's only: the earlier days come from the cache
    assert (drawn[before]["sent"][0], drawn[today]["sent"][0]) == (1, 2)
    # Scoped charts and other roles' charts are never cached: they count what they may see, now.
    assert bars(render_chart(cast.reseller_b_admin)[1])[before]["sent"][0] == 1
    cache.clear()  # the period is over
    assert bars(render_chart(cast.support)[1])[before]["sent"][0] == 2


def test_the_cached_days_of_supports_chart_are_never_shown_to_a_reseller(cast):
    make_message(cast.b, to=("y@x.org",), created_at=timezone.now() - timedelta(days=1))
    before = (timezone.localdate() - timedelta(days=1)).isoformat()
    assert bars(render_chart(cast.support)[1])[before]["sent"][0] == 1
    assert bars(render_chart(cast.reseller_a_admin)[1])[before]["sent"][0] == 0
    assert bars(render_chart(cast.a.user, "customer=customer")[1])[before]["sent"][0] == 0
