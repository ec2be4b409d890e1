"""Resellers, customers and panel users: creation, a reseller admin's customers within its pool, and its brand."""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import EmailValidator, URLValidator
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.branding import color_error, parse_color
from accounts.models import Customer, Reseller, User
from accounts.normalize import normalize_domain
from accounts.services.audit_log import audit, snapshot
from accounts.services.logins import logins_end
from accounts.services.routes import routes_changed
from accounts.services.limits import FIELDS, PLAN_FIELDS, check_pool, clean_limits

LOGO_MAX_BYTES = 256 * 1024
# Raster formats only: an SVG can carry script.
LOGO_TYPES = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpg", b"GIF87a": "gif", b"GIF89a": "gif"}


def reseller_create(*, actor: User | None, name: str, client_ip: str | None = None, **fields) -> Reseller:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": _("Enter a name.")})
    fields |= clean_limits(Reseller, {f: v for f, v in fields.items() if f in FIELDS[Reseller]})
    with transaction.atomic():
        if Reseller.objects.filter(name__iexact=name).exists():
            raise ValidationError({"name": _("A reseller named “%(name)s” already exists.") % {"name": name}})
        reseller = Reseller.objects.create(name=name, **fields)
        audit(actor=actor, action="reseller.create", obj=reseller, after=snapshot(reseller), client_ip=client_ip)
    return reseller


def customer_create(*, actor: User | None, name: str, reseller: Reseller | None = None,
                    client_ip: str | None = None, **plan) -> Customer:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": _("Enter a name.")})
    plan |= clean_limits(Customer, {f: v for f, v in plan.items() if f in FIELDS[Customer]})
    with transaction.atomic():
        if Customer.objects.filter(reseller=reseller, name__iexact=name).exists():
            raise ValidationError({"name": _("A customer named “%(name)s” already exists.") % {"name": name}})
        customer = Customer(name=name, reseller=reseller, **plan)
        customer.full_clean()
        customer.save()
        audit(actor=actor, action="customer.create", obj=customer, after=snapshot(customer), client_ip=client_ip)
    return customer


def user_create(*, actor: User | None, username: str, password: str | None, role: str,
                customer: Customer | None = None, reseller: Reseller | None = None, email: str = "",
                client_ip: str | None = None) -> User:
    username = (username or "").strip()
    if not username:
        raise ValidationError({"username": _("Enter a username.")})
    with transaction.atomic():
        if User.objects.filter(username__iexact=username).exists():
            raise ValidationError({"username": _("The username “%(username)s” is taken.") % {"username": username}})
        user = User(username=username, role=role, customer=customer, reseller=reseller, email=email,
                    is_staff=role == User.Role.SUPPORT)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
        audit(actor=actor, action="user.create", obj=customer or reseller or user,
              after={"username": username, "role": role}, client_ip=client_ip)
    return user


def user_set_password(*, actor: User | None, user: User, password: str, client_ip: str | None = None,
                      reason: str = "") -> None:
    """A panel user's own sign-in password (validated by the caller's form against AUTH_PASSWORD_VALIDATORS), set
    from their password page or through a reset link (reason says which)."""
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        audit(actor=actor, action="user.password", obj=user.customer or user.reseller or user,
              after={"username": user.get_username()}, reason=reason, client_ip=client_ip)


def user_password_set_for(*, actor: User, user: User, password: str, reason: str = "",
                          client_ip: str | None = None) -> None:
    """Someone else sets a panel user's password: support staff any user's (with a reason for the audit log), a
    reseller admin its customers' users'. The user's other sessions end (their session hash no longer matches)."""
    reason = (reason or "").strip()
    if actor.is_support:
        if not reason:
            raise ValidationError({"reason": _("Give a reason: it goes into the audit log.")})
    elif not (actor.role == User.Role.RESELLER and actor.reseller_id and user.role == User.Role.CUSTOMER
              and user.customer_id and user.customer.reseller_id == actor.reseller_id):
        raise PermissionDenied("You may not set this user's password.")
    try:
        validate_password(password or "", user=user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        audit(actor=actor, action="user.password", obj=user.customer or user.reseller or user,
              after={"username": user.get_username()}, reason=reason[:500], client_ip=client_ip)


def _check_new_user(*, username: str, password: str, email: str, user: User | None = None) -> None:
    """The panel's rules for a sign-in: a valid e-mail address if any, a password AUTH_PASSWORD_VALIDATORS accept
    (compared with the username and address too); every error under its field."""
    errors = {}
    if email:
        try:
            EmailValidator()(email)
        except ValidationError:
            errors["email"] = _("Enter a valid e-mail address.")
    try:
        validate_password(password or "", user=user or User(username=username, email=email))
    except ValidationError as exc:
        errors["password"] = exc.messages
    if errors:
        raise ValidationError(errors)


def _check_customer_admin(actor: User | None, customer: Customer) -> None:
    """Support staff, the system and the customer's reseller admins manage a customer's panel users."""
    if actor is None or actor.is_support:
        return
    if customer.reseller_id is None:
        raise PermissionDenied("Support staff manage this customer's users.")
    check_reseller_admin(actor, customer.reseller)


def customer_user_create(*, actor: User | None, customer: Customer, username: str, password: str, email: str = "",
                         client_ip: str | None = None) -> User:
    """Another panel user for a customer (its reseller's admins or support)."""
    _check_customer_admin(actor, customer)
    _check_new_user(username=username, password=password, email=email)
    return user_create(actor=actor, username=username, password=password, role=User.Role.CUSTOMER,
                       customer=customer, email=email, client_ip=client_ip)


def customer_user_set_password(*, actor: User | None, user: User, password: str,
                               client_ip: str | None = None) -> None:
    """A customer's panel user's password, set by the customer's reseller admins, support, or the user."""
    if user.role != User.Role.CUSTOMER or user.customer_id is None:
        raise PermissionDenied("Only customers' panel users have their password set here.")
    if actor is None or actor.pk != user.pk:
        _check_customer_admin(actor, user.customer)
    _check_new_user(username=user.get_username(), password=password, email=user.email, user=user)
    user_set_password(actor=actor, user=user, password=password, client_ip=client_ip)


def check_reseller_admin(actor: User | None, reseller: Reseller) -> None:
    """The actor administers this reseller (support staff and the system may act for any)."""
    if actor is None or actor.is_support:
        return
    if actor.role == User.Role.RESELLER and actor.reseller_id == reseller.pk:
        return
    raise PermissionDenied("You do not administer this reseller.")


def _clean_external_id(reseller: Reseller, external_id: str, *, exclude: Customer | None = None) -> str:
    external_id = (external_id or "").strip()
    if len(external_id) > 100:
        raise ValidationError({"external_id": _("Use at most 100 characters.")})
    taken = Customer.objects.filter(reseller=reseller, external_id=external_id)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if external_id and taken.exists():
        raise ValidationError({"external_id": _("Another customer has the external id “%(external_id)s”.")
                               % {"external_id": external_id}})
    return external_id


def _merge(errors: dict, exc: ValidationError) -> None:
    for field, messages in exc.message_dict.items():
        errors.setdefault(field, []).extend(messages)


def reseller_customer_errors(*, reseller: Reseller, name: str, username: str, password: str, email: str = "",
                             external_id: str = "", plan: dict) -> dict:
    """Every reason a new customer of the reseller would be refused, by field, all at once (a form shows them
    together). Reads only; reseller_customer_create checks again with the pool locked."""
    errors = {}
    name, username = (name or "").strip(), (username or "").strip()
    if not name:
        errors["name"] = [_("Enter a name.")]
    elif Customer.objects.filter(reseller=reseller, name__iexact=name).exists():
        errors["name"] = [_("A customer named “%(name)s” already exists.") % {"name": name}]
    if not username:
        errors["username"] = [_("Enter a username.")]
    elif User.objects.filter(username__iexact=username).exists():
        errors["username"] = [_("The username “%(username)s” is taken.") % {"username": username}]
    try:
        _check_new_user(username=username, password=password, email=email)
    except ValidationError as exc:
        _merge(errors, exc)
    try:
        _clean_external_id(reseller, external_id)
    except ValidationError as exc:
        _merge(errors, exc)
    try:
        # What the caller leaves out is the model's default, which counts against the pool too.
        cleaned = {f: Customer._meta.get_field(f).get_default() for f in PLAN_FIELDS} | clean_limits(Customer, plan)
        check_pool(reseller, cleaned, customer=None, new_customer=True)
    except ValidationError as exc:
        _merge(errors, exc)
    return errors


def reseller_customer_create(*, actor: User | None, reseller: Reseller, name: str, username: str, password: str,
                             email: str = "", external_id: str = "", client_ip: str | None = None,
                             **plan) -> Customer:
    """A customer of the reseller with its plan taken from the pool, and its first user, both or neither.
    `external_id`: the reseller's own id for it (its billing system's), unique among its customers."""
    check_reseller_admin(actor, reseller)
    cleaned = {f: Customer._meta.get_field(f).get_default() for f in PLAN_FIELDS} | clean_limits(Customer, plan)
    with transaction.atomic():
        # The reseller row is the pool's lock: every allocation from this pool queues behind it.
        locked = Reseller.objects.select_for_update().get(pk=reseller.pk)
        errors = reseller_customer_errors(reseller=locked, name=name, username=username, password=password,
                                          email=email, external_id=external_id, plan=cleaned)
        if errors:
            raise ValidationError(errors)
        customer = customer_create(actor=actor, name=name, reseller=locked, contact_email=email,
                                   external_id=_clean_external_id(locked, external_id), client_ip=client_ip,
                                   **cleaned)
        user_create(actor=actor, username=username, password=password, role=User.Role.CUSTOMER,
                    customer=customer, email=email, client_ip=client_ip)
    return customer


def _logo_extension(logo: UploadedFile) -> str:
    if logo.size > LOGO_MAX_BYTES:
        raise ValidationError({"logo": _("The logo may be at most %(size)s KB.") % {"size": LOGO_MAX_BYTES // 1024}})
    head = logo.read(8)
    logo.seek(0)
    for magic, ext in LOGO_TYPES.items():
        if head.startswith(magic):
            return ext
    raise ValidationError({"logo": _("Upload a PNG, JPEG or GIF image.")})


def _brand_values(reseller: Reseller, *, panel_title: str, support_email: str, help_url: str, brand_color: str,
                  panel_host: str) -> tuple[dict, dict]:
    """The brand's text fields cleaned, and every error at once."""
    errors = {}
    values = {"panel_title": (panel_title or "").strip(), "support_email": (support_email or "").strip(),
              "help_url": (help_url or "").strip(), "brand_color": "", "panel_host": ""}
    if len(values["panel_title"]) > 100:
        errors["panel_title"] = _("Use at most 100 characters.")
    for field, validator, message in (("support_email", EmailValidator(), _("Enter a valid e-mail address.")),
                                      ("help_url", URLValidator(schemes=["http", "https"]),
                                       _("Enter a web address starting with https:// or http://."))):
        if values[field]:
            try:
                validator(values[field])
            except ValidationError:
                errors[field] = message
    if (brand_color or "").strip():
        color = parse_color(brand_color)
        if color is None:
            errors["brand_color"] = _("Enter a colour as #rrggbb, e.g. #1f5fbf.")
        elif problem := color_error(color):
            errors["brand_color"] = problem
        else:
            values["brand_color"] = color
    if (panel_host or "").strip():
        try:
            values["panel_host"] = normalize_domain(panel_host.strip().lower().split(":")[0])
        except ValidationError as exc:
            errors["panel_host"] = exc.messages
        else:
            if Reseller.objects.filter(panel_host=values["panel_host"]).exclude(pk=reseller.pk).exists():
                errors["panel_host"] = _("%(host)s is another reseller's panel.") % {"host": values["panel_host"]}
    return values, errors


def reseller_branding_update(*, actor: User | None, reseller: Reseller, panel_title: str, support_email: str,
                             help_url: str, logo: UploadedFile | None = None, remove_logo: bool = False,
                             brand_color: str = "", panel_host: str = "", client_ip: str | None = None) -> Reseller:
    check_reseller_admin(actor, reseller)
    values, errors = _brand_values(reseller, panel_title=panel_title, support_email=support_email, help_url=help_url,
                                   brand_color=brand_color, panel_host=panel_host)
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
        changed = {k for k in after if before[k] != after[k]}
        audit(actor=actor, action="reseller.branding", obj=reseller, before={k: before[k] for k in changed},
              after={k: after[k] for k in changed}, client_ip=client_ip)
    return reseller


def reseller_customer_update(*, actor: User | None, customer: Customer, name: str, contact_email: str = "",
                             external_id: str | None = None, client_ip: str | None = None) -> Customer:
    """Rename a reseller's customer or change its contact address (the plan goes through services.limits.limit_set)."""
    if customer.reseller_id is None:
        raise PermissionDenied("This customer belongs to no reseller.")
    check_reseller_admin(actor, customer.reseller)
    name, contact_email = (name or "").strip(), (contact_email or "").strip()
    errors = {}
    if not name:
        errors["name"] = _("Enter a name.")
    elif len(name) > 150:
        errors["name"] = _("Use at most 150 characters.")
    if contact_email:
        try:
            EmailValidator()(contact_email)
        except ValidationError:
            errors["contact_email"] = _("Enter a valid e-mail address.")
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        taken = Customer.objects.filter(reseller_id=customer.reseller_id, name__iexact=name).exclude(pk=customer.pk)
        if taken.exists():
            raise ValidationError({"name": _("A customer named “%(name)s” already exists.") % {"name": name}})
        before = {"name": customer.name, "contact_email": customer.contact_email, "external_id": customer.external_id}
        customer.name, customer.contact_email = name, contact_email
        if external_id is not None:
            customer.external_id = _clean_external_id(customer.reseller, external_id, exclude=customer)
        customer.save(update_fields=["name", "contact_email", "external_id"])
        audit(actor=actor, action="customer.update", obj=customer, before=before,
              after={"name": name, "contact_email": contact_email, "external_id": customer.external_id},
              client_ip=client_ip)
    return customer


def customer_delete(*, actor: User | None, customer: Customer, client_ip: str | None = None) -> None:
    """Terminate a reseller's customer: its domains (with their mailboxes, aliases and credentials), its panel
    users and the customer go; its message log rows stay, without the customer. Support or its reseller admin."""
    if actor is not None and not actor.is_support:
        if customer.reseller_id is None:
            raise PermissionDenied("This customer belongs to no reseller.")
        check_reseller_admin(actor, customer.reseller)
    with transaction.atomic():
        if customer.reseller_id:
            Reseller.objects.select_for_update().get(pk=customer.reseller_id)
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        audit(actor=actor, action="customer.delete", obj=customer.reseller or customer,
              before={**snapshot(customer), "domains": list(customer.domains.values_list("name", flat=True))},
              client_ip=client_ip)
        logins_end(customer_ids=[customer.pk])
        routes_changed()
        for domain in customer.domains.all():
            domain.delete()
        customer.delete()
