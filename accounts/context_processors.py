from django.conf import settings


def brand_for(reseller) -> dict:
    """A reseller's brand where it set one, the provider's otherwise."""
    return {
        "title": (reseller and reseller.panel_title) or settings.PANEL_TITLE,
        "logo_url": reseller.logo.url if reseller and reseller.logo else "",
        "support_email": (reseller and reseller.support_email) or settings.SUPPORT_EMAIL,
        "help_url": (reseller and reseller.help_url) or settings.SUPPORT_URL,
    }


def branding(request):
    """Panel title and support contact: the signed-in customer's reseller's brand, else the provider's."""
    user = getattr(request, "user", None)
    reseller = None
    if user is not None and user.is_authenticated:
        if user.reseller_id:
            reseller = user.reseller
        elif user.customer_id and user.customer.reseller_id:
            reseller = user.customer.reseller
        elif user.mailbox_id and user.mailbox.domain.customer.reseller_id:
            reseller = user.mailbox.domain.customer.reseller
    return {"brand": brand_for(reseller)}
