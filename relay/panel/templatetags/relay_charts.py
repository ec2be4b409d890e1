"""{% sending_chart customer=... %}: the dashboard's 14-day picture of sent, delivered, deferred and bounced."""

from django import template
from django.utils.translation import gettext_lazy as _

from accounts.charts import bar_chart, nice_ceiling  # noqa: F401 (nice_ceiling: the axis the tests check)
from relay.panel.selectors import CHART_SERIES, sending_chart_days

register = template.Library()

SERIES_STYLE = {
    "sent": (_("Sent (accepted)"), "#1f5fbf"),
    "delivered": (_("Delivered"), "#1d7a3a"),
    "deferred": (_("Deferred"), "#a35f00"),
    "bounced": (_("Bounced"), "#b42318"),
}
WIDTH, HEIGHT = 720, 240
LEFT, TOP, BOTTOM = 40, 12, 48  # room for the y labels, and the x labels plus the legend below
PLOT_W, PLOT_H = WIDTH - LEFT - 8, HEIGHT - TOP - BOTTOM


def chart_layout(days: list[dict]) -> dict:
    chart = bar_chart(days, CHART_SERIES, width=WIDTH, height=HEIGHT, left=LEFT, top=TOP, bottom=BOTTOM, right=8,
                      margin_share=0.1, bar_gap=1)
    for group in chart["groups"]:
        for bar in group["bars"]:
            bar["label"], bar["color"] = SERIES_STYLE[bar["series"]]
    legend = [{"label": label, "color": color, "x": LEFT + k * 150}
              for k, (label, color) in enumerate(SERIES_STYLE[s] for s in CHART_SERIES)]
    return chart | {"label_y": chart["baseline"] + 16, "legend_y": HEIGHT - 10, "legend": legend,
                    "first": days[0]["day"], "last": days[-1]["day"]}


@register.inclusion_tag("relay/_sending_chart.html", takes_context=True)
def sending_chart(context, customer=None, reseller=None, days: int = 14):
    """A customer's chart, a reseller's customers' together, or (neither given) all the viewer may see."""
    user = context["request"].user
    # A missing template variable arrives as "": treat it as "not given", never as a filter on nothing.
    data = sending_chart_days(user=user, customer=customer or None, reseller=reseller or None, days=days)
    return {"chart": chart_layout(data), "days": days}
