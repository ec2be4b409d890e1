import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from accounts.models import AuditEntry, Customer, Reseller, User
from accounts.services.tenants import reseller_branding_update, reseller_customer_create, reseller_customer_update
from tests.support.factories import PASSWORD, make_cast

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def _create(cast, actor=None, name="Charlie", username="charlie", **plan):
    return reseller_customer_create(
        actor=actor or cast.reseller_a_admin, reseller=cast.reseller_a, name=name, username=username,
        email="c@example.net", password="long enough secret", **plan)


def test_reseller_creates_a_customer_and_its_first_user(cast):
    customer = _create(cast, max_mailboxes=20, send_per_hour=100)
    assert customer.reseller == cast.reseller_a
    assert customer.max_mailboxes == 20 and customer.send_per_hour == 100
    user = User.objects.get(username="charlie")
    assert user.customer == customer and user.role == User.Role.CUSTOMER
    assert user.check_password("long enough secret")
    assert AuditEntry.objects.filter(action="customer.create", actor=cast.reseller_a_admin).exists()


def test_other_resellers_admin_and_customers_may_not_create(cast):
    for actor in (cast.reseller_b_admin, cast.a.user):
        with pytest.raises(PermissionDenied):
            _create(cast, actor=actor)
    assert not Customer.objects.filter(name="Charlie").exists()


def test_customer_must_fit_in_the_pool(cast):
    Reseller.objects.filter(pk=cast.reseller_a.pk).update(max_mailboxes=170)
    with pytest.raises(ValidationError) as exc:
        _create(cast, max_mailboxes=121)
    assert exc.value.message_dict["max_mailboxes"] == ["Your pool has 120 mailboxes left to hand out."]
    assert not User.objects.filter(username="charlie").exists()
    _create(cast, max_mailboxes=120)


def test_plan_defaults_count_against_the_pool(cast):
    Reseller.objects.filter(pk=cast.reseller_a.pk).update(max_domains=6)
    with pytest.raises(ValidationError) as exc:  # the default plan has 5 domains; Alpha holds 5
        _create(cast)
    assert "1 domains left" in exc.value.message_dict["max_domains"][0]


def test_customer_count_is_part_of_the_pool(cast):
    Reseller.objects.filter(pk=cast.reseller_a.pk).update(max_customers=1)
    with pytest.raises(ValidationError) as exc:
        _create(cast)
    assert exc.value.message_dict["name"] == ["Your pool has 0 customers left to hand out."]


def test_user_problems_leave_nothing_half_written(cast):
    with pytest.raises(ValidationError) as exc:
        _create(cast, username="alpha-user")  # taken by the cast
    assert "taken" in exc.value.message_dict["username"][0]
    assert not Customer.objects.filter(name="Charlie").exists()
    with pytest.raises(ValidationError) as exc:
        reseller_customer_create(actor=cast.reseller_a_admin, reseller=cast.reseller_a, name="Charlie",
                                 username="charlie", password="short")
    assert "password" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        _create(cast, name="Alpha")
    assert "already exists" in exc.value.message_dict["name"][0]


def test_bad_plan_numbers_are_refused(cast):
    with pytest.raises(ValidationError) as exc:
        _create(cast, max_domains=-1, max_mailboxes=None)
    assert set(exc.value.message_dict) == {"max_domains", "max_mailboxes"}


def _brand(cast, actor=None, **kwargs):
    values = {"panel_title": "Acme Mail", "support_email": "help@acme.example", "help_url": "https://acme.example/help"}
    return reseller_branding_update(actor=actor or cast.reseller_a_admin, reseller=cast.reseller_a,
                                    **(values | kwargs))


def test_branding_is_saved_with_a_logo_and_audited(cast, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    reseller = _brand(cast, logo=SimpleUploadedFile("x.png", PNG, content_type="image/png"))
    assert reseller.panel_title == "Acme Mail"
    assert reseller.logo.name.endswith(".png")
    assert (tmp_path / reseller.logo.name).read_bytes() == PNG
    entry = AuditEntry.objects.get(action="reseller.branding")
    assert entry.after["panel_title"] == "Acme Mail" and entry.before["panel_title"] == ""
    reseller = _brand(cast, remove_logo=True)
    assert not reseller.logo


@pytest.mark.parametrize("name,content,error", [
    ("x.svg", b"<svg onload='alert(1)'/>", "PNG, JPEG or GIF"),
    ("x.png", b"not really a png", "PNG, JPEG or GIF"),
    ("x.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (256 * 1024), "at most 256 KB"),
])
def test_bad_logos_are_refused(cast, settings, tmp_path, name, content, error):
    settings.MEDIA_ROOT = tmp_path
    with pytest.raises(ValidationError) as exc:
        _brand(cast, logo=SimpleUploadedFile(name, content))
    assert error in exc.value.message_dict["logo"][0]
    cast.reseller_a.refresh_from_db()
    assert cast.reseller_a.panel_title == ""


def test_bad_branding_fields_are_refused(cast):
    with pytest.raises(ValidationError) as exc:
        _brand(cast, support_email="nope", help_url="javascript:alert(1)", panel_title="x" * 101)
    assert set(exc.value.message_dict) == {"support_email", "help_url", "panel_title"}


def test_only_its_admins_brand_a_reseller(cast):
    for actor in (cast.reseller_b_admin, cast.a.user):
        with pytest.raises(PermissionDenied):
            _brand(cast, actor=actor)


@pytest.mark.django_db(transaction=True)
def test_two_admins_creating_customers_for_the_last_of_the_pool_one_wins():
    cast = make_cast()
    Reseller.objects.filter(pk=cast.reseller_a.pk).update(max_customers=2)  # Alpha holds one: one left
    second_admin = User.objects.create_user("reseller-a2", password=PASSWORD, role=User.Role.RESELLER,
                                            reseller=cast.reseller_a)
    barrier = threading.Barrier(2)
    results = []

    def create(actor, name):
        try:
            barrier.wait(timeout=10)
            reseller_customer_create(actor=actor, reseller=cast.reseller_a, name=name,
                                     username=name.lower(), password="long enough secret")
            results.append("ok")
        except ValidationError as exc:
            results.append(" ".join(exc.message_dict["name"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(cast.reseller_a_admin, "Echo")),
               threading.Thread(target=create, args=(second_admin, "Foxtrot"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == ["Your pool has 0 customers left to hand out.", "ok"]
    assert Customer.objects.filter(reseller=cast.reseller_a).count() == 2


def test_only_its_resellers_admins_edit_a_customer(cast):
    for actor in (cast.reseller_b_admin, cast.a.user):
        with pytest.raises(PermissionDenied):
            reseller_customer_update(actor=actor, customer=cast.a.customer, name="X")
    with pytest.raises(PermissionDenied):  # the provider's own customer
        reseller_customer_update(actor=cast.reseller_a_admin, customer=cast.direct.customer, name="X")
    with pytest.raises(ValidationError) as exc:
        reseller_customer_update(actor=cast.reseller_a_admin, customer=cast.a.customer, name=" ",
                                 contact_email="nope")
    assert set(exc.value.message_dict) == {"name", "contact_email"}
