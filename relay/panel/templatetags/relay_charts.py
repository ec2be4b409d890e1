"""{% sending_chart customer=... %}: the dashboard's 14-day picture of sent, delivered, deferred and bounced."""

from django import template

from relay.panel.selectors import CHART_SERIES, sending_chart_days

register = template.Library()

SERIES_STYLE = {
    "sent": ("Sent (accepted)", "#1f5fbf"),
    "delivered": ("Delivered", "#1d7a3a"),
    "deferred": ("Deferred", "#a35f00"),
    "bounced": ("Bounced", "#b42318"),
}
WIDTH, HEIGHT = 720, 240
LEFT, TOP, BOTTOM = 40, 12, 48  # room for the y labels, and the x labels plus the legend below
PLOT_W, PLOT_H = WIDTH - LEFT - 8, HEIGHT - TOP - BOTTOM


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above value (at least 1): a readable axis top."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if step * m >= value:
                return step * m
        step *= 10


def chart_layout(days: list[dict]) -> dict:
    top = nice_ceiling(max((d[s] for d in days for s in CHART_SERIES), default=0))
    slot = PLOT_W / len(days)
    bar_w = slot * 0.8 / len(CHART_SERIES)
    baseline = TOP + PLOT_H
    groups = []
    for i, d in enumerate(days):
        x0 = LEFT + i * slot + slot * 0.1
        bars = []
        for j, name in enumerate(CHART_SERIES):
            h = round(d[name] * PLOT_H / top, 1)
            bars.append({"series": name, "label": SERIES_STYLE[name][0], "color": SERIES_STYLE[name][1],
                         "value": d[name], "x": round(x0 + j * bar_w, 1), "y": round(baseline - h, 1),
                         "width": round(bar_w - 1, 1), "height": h})
        groups.append({"day": d["day"], "bars": bars, "label_x": round(LEFT + i * slot + slot / 2, 1)})
    ticks = [{"value": v, "y": round(baseline - v * PLOT_H / top, 1)} for v in sorted({0, top // 2, top})]
    legend = [{"label": label, "color": color, "x": LEFT + k * 150}
              for k, (label, color) in enumerate(SERIES_STYLE[s] for s in CHART_SERIES)]
    totals = {s: sum(d[s] for d in days) for s in CHART_SERIES}
    return {"width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - 8, "baseline": baseline,
            "label_y": baseline + 16, "legend_y": HEIGHT - 10, "groups": groups, "ticks": ticks,
            "legend": legend, "totals": totals, "top": top, "first": days[0]["day"], "last": days[-1]["day"]}


@register.inclusion_tag("relay/_sending_chart.html", takes_context=True)
def sending_chart(context, customer=None, reseller=None, days: int = 14):
    """A customer's chart, a reseller's customers' together, or (neither given) all the viewer may see."""
    user = context["request"].user
    # A missing template variable arrives as "": treat it as "not given", never as a filter on nothing.
    data = sending_chart_days(user=user, customer=customer or None, reseller=reseller or None, days=days)
    return {"chart": chart_layout(data), "days": days}
