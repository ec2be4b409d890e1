"""The geometry of the panel's bar charts (inline SVG): one group of bars per day, one bar per series."""


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above value (at least 1): a readable axis top."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if step * m >= value:
                return step * m
        step *= 10


def bar_chart(days: list[dict], series: tuple[str, ...], *, width: int, height: int, left: int = 0, top: int = 0,
              bottom: int = 0, right: int = 0, margin: float = 0, margin_share: float = 0, bar_gap: float = 0,
              nice: bool = True) -> dict:
    """Bars for days = [{"day": date, <series>: n, ...}] in a width x height box, the plot inset by left, top,
    bottom and right. Each day's slot keeps margin pixels plus margin_share of the slot free on either side; bars
    are bar_gap narrower than their share. The axis tops at a nice number (nice) or at the busiest value."""
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((d[s] for d in days for s in series), default=0)
    axis_top = nice_ceiling(peak) if nice else peak or 1
    slot = plot_w / max(len(days), 1)
    bar_w = (slot * (1 - 2 * margin_share) - 2 * margin) / len(series)
    baseline = top + plot_h
    groups = []
    for i, d in enumerate(days):
        x0 = left + i * slot + slot * margin_share + margin
        bars = []
        for j, name in enumerate(series):
            h = round(d[name] * plot_h / axis_top, 1)
            bars.append({"series": name, "value": d[name], "x": round(x0 + j * bar_w, 1), "y": round(baseline - h, 1),
                         "width": round(bar_w - bar_gap, 1), "height": h})
        groups.append({"day": d["day"], "bars": bars, "label_x": round(left + i * slot + slot / 2, 1)})
    ticks = [{"value": v, "y": round(baseline - v * plot_h / axis_top, 1)} for v in sorted({0, axis_top // 2, axis_top})]
    return {"width": width, "height": height, "left": left, "right": width - right, "baseline": baseline,
            "groups": groups, "ticks": ticks, "top": axis_top, "peak": peak,
            "totals": {s: sum(d[s] for d in days) for s in series}}
