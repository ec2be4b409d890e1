"""What a reseller admin does to its own account: customers created within its pool, and its brand."""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import EmailValidator, URLValidator
from django.db import transaction

from accounts import services
from accounts.limits import NULLABLE, check_pool
from accounts.models import Customer, Reseller, User
from accounts.services import audit

PLAN_FIELDS = ("max_domains", "max_mailboxes", "max_storage_mb", "send_per_hour", "send_per_day",
               "max_message_size", "max_recipients")
LOGO_MAX_BYTES = 256 * 1024
# Raster formats only: an SVG can carry script.
LOGO_TYPES = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpg", b"GIF87a": "gif", b"GIF89a": "gif"}


def check_reseller_admin(actor: User | None, reseller: Reseller) -> None:
    """The actor administers this reseller (support staff and the system may act for any)."""
    if actor is None or actor.is_support:
        return
    if actor.role == User.Role.RESELLER and actor.reseller_id == reseller.pk:
        return
    raise PermissionDenied("You do not administer this reseller.")


def _clean_plan(plan: dict) -> dict:
    unknown = set(plan) - set(PLAN_FIELDS)
    if unknown:
        raise ValueError(f"not plan fields: {sorted(unknown)}")
    cleaned, errors = {}, {}
    for field, value in plan.items():
        if value in ("", None):
            if (Customer, field) not in NULLABLE:
                errors[field] = "Enter a number."
            else:
                cleaned[field] = None
        elif not isinstance(value, int) or value < 0:
            errors[field] = "Enter zero or more."
        else:
            cleaned[field] = value
    if errors:
        raise ValidationError(errors)
    # What the caller leaves out is the model's default, which counts against the pool too.
    defaults = {f: Customer._meta.get_field(f).get_default() for f in PLAN_FIELDS}
    return defaults | cleaned


def reseller_customer_create(*, actor: User | None, reseller: Reseller, name: str, username: str, password: str,
                             email: str = "", client_ip: str | None = None, **plan) -> Customer:
    """A customer of the reseller with its plan taken from the pool, and its first user, both or neither."""
    check_reseller_admin(actor, reseller)
    cleaned = _clean_plan(plan)
    errors = {}
    if email:
        try:
            EmailValidator()(email)
        except ValidationError:
            errors["email"] = "Enter a valid e-mail address."
    try:
        validate_password(password or "", user=User(username=username, email=email))
    except ValidationError as exc:
        errors["password"] = exc.messages
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        # The reseller row is the pool's lock: every allocation from this pool queues behind it.
        locked = Reseller.objects.select_for_update().get(pk=reseller.pk)
        check_pool(locked, cleaned, customer=None, new_customer=True)
        customer = services.customer_create(actor=actor, name=name, reseller=locked, contact_email=email,
                                            client_ip=client_ip, **cleaned)
        services.user_create(actor=actor, username=username, password=password, role=User.Role.CUSTOMER,
                             customer=customer, email=email, client_ip=client_ip)
    return customer


def _logo_extension(logo: UploadedFile) -> str:
    if logo.size > LOGO_MAX_BYTES:
        raise ValidationError({"logo": f"The logo may be at most {LOGO_MAX_BYTES // 1024} KB."})
    head = logo.read(8)
    logo.seek(0)
    for magic, ext in LOGO_TYPES.items():
        if head.startswith(magic):
            return ext
    raise ValidationError({"logo": "Upload a PNG, JPEG or GIF image."})


def reseller_branding_update(*, actor: User | None, reseller: Reseller, panel_title: str, support_email: str,
                             help_url: str, logo: UploadedFile | None = None, remove_logo: bool = False,
                             client_ip: str | None = None) -> Reseller:
    check_reseller_admin(actor, reseller)
    errors = {}
    values = {"panel_title": (panel_title or "").strip(), "support_email": (support_email or "").strip(),
              "help_url": (help_url or "").strip()}
    if len(values["panel_title"]) > 100:
        errors["panel_title"] = "Use at most 100 characters."
    for field, validator, message in (("support_email", EmailValidator(), "Enter a valid e-mail address."),
                                      ("help_url", URLValidator(schemes=["http", "https"]),
                                       "Enter a web address starting with https:// or http://.")):
        if values[field]:
            try:
                validator(values[field])
            except ValidationError:
                errors[field] = message
    ext = None
    if logo is not None:
        try:
            ext = _logo_extension(logo)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        reseller = Reseller.objects.select_for_update().get(pk=reseller.pk)
        before = {**{k: getattr(reseller, k) for k in values}, "logo": reseller.logo.name}
        for field, value in values.items():
            setattr(reseller, field, value)
        if ext is not None:
            reseller.logo.save(f"reseller-{reseller.pk}.{ext}", logo, save=False)
        elif remove_logo:
            reseller.logo = ""
        reseller.save(update_fields=[*values, "logo"])
        after = {**values, "logo": reseller.logo.name}
        audit(actor=actor, action="reseller.branding", obj=reseller, before=before, after=after, client_ip=client_ip)
    return reseller


def reseller_customer_update(*, actor: User | None, customer: Customer, name: str, contact_email: str = "",
                             client_ip: str | None = None) -> Customer:
    """Rename a reseller's customer or change its contact address (the plan goes through limits.limit_set)."""
    if customer.reseller_id is None:
        raise PermissionDenied("This customer belongs to no reseller.")
    check_reseller_admin(actor, customer.reseller)
    name, contact_email = (name or "").strip(), (contact_email or "").strip()
    errors = {}
    if not name:
        errors["name"] = "Enter a name."
    elif len(name) > 150:
        errors["name"] = "Use at most 150 characters."
    if contact_email:
        try:
            EmailValidator()(contact_email)
        except ValidationError:
            errors["contact_email"] = "Enter a valid e-mail address."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        taken = Customer.objects.filter(reseller_id=customer.reseller_id, name__iexact=name).exclude(pk=customer.pk)
        if taken.exists():
            raise ValidationError({"name": f"A customer named “{name}” already exists."})
        before = {"name": customer.name, "contact_email": customer.contact_email}
        customer.name, customer.contact_email = name, contact_email
        customer.save(update_fields=["name", "contact_email"])
        audit(actor=actor, action="customer.update", obj=customer, before=before,
              after={"name": name, "contact_email": contact_email}, client_ip=client_ip)
    return customer
