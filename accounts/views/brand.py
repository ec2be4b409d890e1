"""A reseller's colour as a stylesheet: the Content-Security-Policy allows styles from this site only (no inline
style), so the brand's CSS variables come from a URL named by the colour itself, cacheable for good."""

from django.http import Http404, HttpResponse
from django.views.decorators.cache import cache_control

from accounts.branding import parse_color


@cache_control(public=True, max_age=31536000, immutable=True)
def brand_css(request, color):
    parsed = parse_color(color)
    if parsed is None or parsed.lstrip("#") != color:
        raise Http404("No such colour")
    return HttpResponse(f":root {{ --accent: {parsed}; }}\n", content_type="text/css; charset=utf-8")
