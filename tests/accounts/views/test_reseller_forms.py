"""The reseller's forms: every error at once, the password kept on the same POST's response, sizes in MB, plan
templates, links from a customer to its mail, the brand colour (contrast checked) and the sign-in page by host."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.branding import contrast_ratio
from accounts.models import AuditEntry, Customer, PlanTemplate, Reseller
from accounts.services.plan_templates import plan_template_save
from tests.support.permissions import assert_matrix

pytestmark = pytest.mark.django_db
MIB = 1024 * 1024
OWN = {"owner": 403, "support": 403, "reseller": 200, "other_reseller": 404, "other_customer": 403, "direct": 403,
       "mailbox_owner": 403}
PLAN = {"max_domains": 2, "max_mailboxes": 10, "max_storage_mb": 1000, "send_per_hour": "", "send_per_day": "",
        "max_message_size_mb": 10, "max_recipients": 50, "max_aliases": 10}
SECRET = "long enough secret 1"


def test_every_error_at_once_and_the_password_kept_on_that_response_only(client, cast):
    Reseller.objects.filter(pk=cast.reseller_a.pk).update(max_mailboxes=100)
    client.force_login(cast.reseller_a_admin)
    url = reverse("reseller:customer_create")
    data = PLAN | {"name": "Alpha", "username": "alpha-user", "email": "not-an-address", "password": SECRET,
                   "max_mailboxes": 500, "max_recipients": "lots"}
    response = client.post(url, data)
    errors = response.context["form"].errors
    assert set(errors) == {"name", "username", "email", "max_mailboxes", "max_recipients"}
    assert "already exists" in errors["name"][0] and "is taken" in errors["username"][0]
    assert "mailboxes left to hand out" in errors["max_mailboxes"][0]
    page = response.content.decode()
    assert f'value="{SECRET}"' in page  # one mistake elsewhere does not cost retyping it
    assert SECRET not in client.get(url).content.decode()  # never on a fresh page
    assert not Customer.objects.filter(name="Alpha", reseller=cast.reseller_a).exclude(pk=cast.a.customer.pk).exists()
    # A weak password is one more error among the others.
    response = client.post(url, data | {"password": "short"})
    assert {"password", "name", "username"} <= set(response.context["form"].errors)


def test_message_sizes_are_entered_and_shown_in_mb(client, cast):
    client.force_login(cast.reseller_a_admin)
    response = client.post(reverse("reseller:customer_create"),
                           PLAN | {"name": "Charlie", "username": "charlie", "email": "", "password": SECRET})
    assert response.status_code == 302
    customer = Customer.objects.get(name="Charlie")
    assert customer.max_message_size == 10 * MIB
    page = client.get(reverse("reseller:customer", args=[customer.pk])).content.decode()
    assert "Largest message (MB)" in page and 'name="max_message_size_mb" value="10"' in page
    # A size that is no whole number of MB stays exactly as it was when the plan is saved unchanged.
    Customer.objects.filter(pk=customer.pk).update(max_message_size=10_000_000)
    form = client.get(reverse("reseller:customer", args=[customer.pk])).context["form"]
    unchanged = {name: "" if value is None else value for name, value in form.initial.items()
                 if not name.startswith("_")}
    assert unchanged["max_message_size_mb"] == 10
    client.post(reverse("reseller:customer", args=[customer.pk]), unchanged | {"max_domains": 3})
    customer.refresh_from_db()
    assert customer.max_message_size == 10_000_000 and customer.max_domains == 3


def test_plan_templates_are_the_resellers_own_and_audited(client, cast):
    assert_matrix(client, cast, reverse("reseller:plan_templates"), OWN | {"other_reseller": 200})
    template = plan_template_save(actor=cast.reseller_a_admin, reseller=cast.reseller_a, name="Small",
                                  plan={"max_domains": 1, "max_mailboxes": 5})
    assert_matrix(client, cast, reverse("reseller:plan_template", args=[template.pk]), OWN)
    client.force_login(cast.reseller_a_admin)
    url = reverse("reseller:plan_template_create")
    response = client.post(url, PLAN | {"name": "small", "max_domains": -1})
    assert {"name", "max_domains"} <= set(response.context["form"].errors)  # both at once
    response = client.post(url, PLAN | {"name": "Business", "max_message_size_mb": 50})
    assert response.status_code == 302
    business = PlanTemplate.objects.get(name="Business")
    assert business.reseller == cast.reseller_a and business.max_message_size == 50 * MIB
    client.post(reverse("reseller:plan_template", args=[business.pk]), PLAN | {"name": "Business+",
                                                                               "max_mailboxes": 20})
    business.refresh_from_db()
    assert (business.name, business.max_mailboxes) == ("Business+", 20)
    entries = AuditEntry.objects.filter(action__startswith="plantemplate.", reseller=cast.reseller_a)
    assert {e.action for e in entries} == {"plantemplate.create", "plantemplate.update"}
    client.post(reverse("reseller:plan_template_delete", args=[business.pk]))
    assert not PlanTemplate.objects.filter(pk=business.pk).exists()
    assert AuditEntry.objects.filter(action="plantemplate.delete").exists()
    client.force_login(cast.reseller_b_admin)
    assert "Small" not in client.get(reverse("reseller:plan_templates")).content.decode()
    assert client.get(reverse("reseller:customer_create"), {"template": template.pk}).context["chooser"].errors


def test_a_template_fills_in_a_new_customer_and_a_plan_change(client, cast):
    template = plan_template_save(actor=cast.reseller_a_admin, reseller=cast.reseller_a, name="Small",
                                  plan={"max_domains": 1, "max_mailboxes": 5, "max_storage_mb": 500,
                                        "max_message_size": 20 * MIB, "max_recipients": 30, "max_aliases": 5,
                                        "send_per_hour": 100, "send_per_day": 1000})
    client.force_login(cast.reseller_a_admin)
    form = client.get(reverse("reseller:customer_create"), {"template": template.pk}).context["form"]
    assert form.initial["max_mailboxes"] == 5 and form.initial["max_message_size_mb"] == 20
    url = reverse("reseller:customer", args=[cast.a.customer.pk])
    page = client.get(url, {"template": template.pk}).content.decode()
    assert "The limits of plan template Small are filled in" in page
    values = dict(re.findall(r'name="(\w+)" value="(\d*)"', page))
    client.post(f"{url}?template={template.pk}", {k: v for k, v in values.items() if k != "csrfmiddlewaretoken"})
    customer = Customer.objects.get(pk=cast.a.customer.pk)
    assert (customer.max_mailboxes, customer.send_per_hour, customer.max_message_size) == (5, 100, 20 * MIB)


def test_customer_page_links_to_its_dashboard_domains_and_mailboxes(client, cast):
    client.force_login(cast.reseller_a_admin)
    page = client.get(reverse("reseller:customer", args=[cast.a.customer.pk])).content.decode()
    pk = cast.a.customer.pk
    links = [reverse("customer_dashboard", args=[pk]), f"{reverse('domain_list')}?customer={pk}",
             f"{reverse('mailbox_list')}?customer={pk}"]
    for link in links:
        assert f'href="{link}"' in page
    assert "info@alpha.test" in client.get(links[2]).content.decode()
    assert "alpha.test" in client.get(links[1]).content.decode()
    # Another reseller's customer id in the link finds nothing of it.
    other = client.get(f"{reverse('mailbox_list')}?customer={cast.b.customer.pk}")
    assert other.status_code == 404


@pytest.mark.parametrize("color,ok", [("#1f5fbf", True), ("#FFCC00", False), ("#777", False), ("#595959", True),
                                      ("blue", False)])
def test_brand_colour_is_contrast_checked(client, cast, color, ok):
    client.force_login(cast.reseller_a_admin)
    response = client.post(reverse("reseller:branding"), {"panel_title": "Acme", "brand_color": color})
    reseller = Reseller.objects.get(pk=cast.reseller_a.pk)
    if ok:
        assert response.status_code == 302 and reseller.brand_color == color.lower()
    else:
        error = response.context["form"].errors["brand_color"][0]
        assert ("contrast ratio" in error and "4.5:1" in error) or "#rrggbb" in error
        assert reseller.brand_color == "" and reseller.panel_title == ""  # nothing half-written


def test_contrast_ratio_is_wcags():
    assert round(contrast_ratio("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast_ratio("#767676", "#ffffff"), 2) == 4.54  # the lightest grey that passes AA


def test_brand_colour_reaches_the_customers_pages_through_a_stylesheet(client, cast):
    Reseller.objects.filter(pk=cast.reseller_a.pk).update(brand_color="#0b6e4f")
    client.force_login(cast.a.user)
    page = client.get(reverse("dashboard")).content.decode()
    css_url = reverse("brand_css", args=["0b6e4f"])
    assert f'<link rel="stylesheet" href="{css_url}">' in page
    css = client.get(css_url)
    assert css["Content-Type"].startswith("text/css") and "--accent: #0b6e4f" in css.content.decode()
    assert client.get(reverse("brand_css", args=["nothex"])).status_code == 404
    client.force_login(cast.b.user)
    assert css_url not in client.get(reverse("dashboard")).content.decode()


def test_sign_in_page_is_branded_by_host(cast, settings):
    settings.ALLOWED_HOSTS = ["panel.acme.example", "testserver"]
    client = Client()
    client.force_login(cast.reseller_a_admin)
    response = client.post(reverse("reseller:branding"), {"panel_title": "Acme Mail", "brand_color": "#0b6e4f",
                                                          "panel_host": "Panel.Acme.Example"})
    assert response.status_code == 302
    assert Reseller.objects.get(pk=cast.reseller_a.pk).panel_host == "panel.acme.example"
    anonymous = Client()
    branded = anonymous.get(reverse("login"), HTTP_HOST="panel.acme.example").content.decode()
    assert "Acme Mail" in branded and reverse("brand_css", args=["0b6e4f"]) in branded
    plain = anonymous.get(reverse("login")).content.decode()
    assert "Acme Mail" not in plain
    client.force_login(cast.reseller_b_admin)
    response = client.post(reverse("reseller:branding"), {"panel_host": "panel.acme.example"})
    assert "another reseller's panel" in response.context["form"].errors["panel_host"][0]
