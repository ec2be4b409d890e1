from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http.request import split_domain_port

from accounts.models import Reseller


def brand_for(reseller) -> dict:
    """A reseller's brand where it set one, the provider's otherwise."""
    return {
        "title": (reseller and reseller.panel_title) or settings.PANEL_TITLE,
        "logo_url": reseller.logo.url if reseller and reseller.logo else "",
        "support_email": (reseller and reseller.support_email) or settings.SUPPORT_EMAIL,
        "help_url": (reseller and reseller.help_url) or settings.SUPPORT_URL,
        # Without the "#": it names the brand stylesheet (accounts.views.brand.brand_css).
        "color": reseller.brand_color.lstrip("#") if reseller and reseller.brand_color else "",
    }


def _reseller_of_host(request) -> Reseller | None:
    """Before sign-in, the reseller whose panel host this request came to (its customers' sign-in page)."""
    try:
        host, _ = split_domain_port(request.get_host())
    except DisallowedHost:  # the view's own answer reports it
        return None
    return Reseller.objects.filter(panel_host=host).first() if host else None


def branding(request):
    """Panel title, colour and support contact: the signed-in user's reseller's brand, before sign-in the brand of
    the reseller whose panel host was opened, else the provider's."""
    user = getattr(request, "user", None)
    reseller = None
    if user is not None and user.is_authenticated:
        if user.reseller_id:
            reseller = user.reseller
        elif user.customer_id and user.customer.reseller_id:
            reseller = user.customer.reseller
        elif user.mailbox_id and user.mailbox.domain.customer.reseller_id:
            reseller = user.mailbox.domain.customer.reseller
    elif request is not None and hasattr(request, "get_host"):
        reseller = _reseller_of_host(request)
    return {"brand": brand_for(reseller)}
