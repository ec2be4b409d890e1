"""A reseller's brand colour: parsed, and checked for contrast by WCAG 2.x's formula (relative luminance, ratio
(L1 + 0.05) / (L2 + 0.05)); buttons carry white text on it and links are it on white, so it must reach 4.5:1
against white (success criterion 1.4.3, normal text)."""

import re

from django.utils.formats import number_format
from django.utils.translation import gettext as _

MIN_CONTRAST = 4.5
_HEX = re.compile(r"#?([0-9a-f]{6}|[0-9a-f]{3})", re.IGNORECASE)


def parse_color(text: str) -> str | None:
    """"#rrggbb" in lower case from "#RGB", "rrggbb", …; None when it is not a colour."""
    match = _HEX.fullmatch((text or "").strip())
    if match is None:
        return None
    digits = match[1].lower()
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return f"#{digits}"


def _luminance(color: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast_ratio(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def color_error(color: str) -> str | None:
    """Why this colour cannot be the brand colour, or None."""
    ratio = contrast_ratio(color, "#ffffff")
    if ratio < MIN_CONTRAST:
        return _("White text on %(color)s has a contrast ratio of %(ratio)s:1; it needs at least %(minimum)s:1 to "
                 "stay readable. Pick a darker colour.") % {
                     "color": color, "ratio": number_format(ratio, 1), "minimum": number_format(MIN_CONTRAST)}
    return None
