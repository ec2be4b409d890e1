"""Aliases, catch-alls, alias domains and mailbox forwarding: creation within the plan, changes, deletion.

Destinations are addresses, resolved at every RCPT by accounts.selectors.recipients: a hosted one (a mailbox,
another alias) or an external one. An address at one of the customer's own domains must name something that
exists there when it is set, so that a typo is caught in the panel rather than refused later; addresses at other
customers' domains are taken like external ones (whether they exist is not this customer's business).
"""

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import transaction
from django.utils.translation import gettext as _, ngettext

from accounts.models import Alias, Customer, Domain, Mailbox, User
from accounts.normalize import normalize_domain, normalize_local_part
from accounts.services.audit_log import audit, snapshot
from accounts.services.routes import routes_changed

MAX_DESTINATIONS = 50
MAX_FORWARDS = 10
_EMAIL = EmailValidator()


def normalize_destination(address: str) -> str:
    """An address as stored: the domain as its lower-case A-label; the local part lower-cased for hosted domains
    (where local parts are stored so) and kept as given for external ones (RFC 5321 2.4: only the destination
    host may interpret its case)."""
    text = (address or "").strip().strip("<>").strip()
    local, at, domain = text.rpartition("@")
    if not at or not local:
        raise ValidationError(_("“%(address)s” is not an e-mail address.") % {"address": text}, code="invalid")
    try:
        domain = normalize_domain(domain)
    except ValidationError:
        raise ValidationError(_("“%(address)s” is not an e-mail address: its domain is not valid.") % {"address": text},
                              code="invalid") from None
    if Domain.objects.filter(name=domain).exists():
        return f"{normalize_local_part(local)}@{domain}"
    try:
        _EMAIL(f"{local}@{domain}")
    except ValidationError:
        raise ValidationError(_("“%(address)s” is not an e-mail address.") % {"address": text},
                              code="invalid") from None
    return f"{local}@{domain}"


def _exists_at(domain: Domain, local: str) -> bool:
    return (domain.catchall != "" or domain.alias_of_id is not None
            or Mailbox.objects.filter(domain=domain, local_part=local).exists()
            or Alias.objects.filter(domain=domain, local_part=local).exists())


def clean_destinations(addresses, *, customer: Customer, limit: int = MAX_DESTINATIONS,
                       field: str = "destinations", exclude: str = "") -> list[str]:
    """Normalized, de-duplicated destinations; ValidationError on `field` naming every bad one."""
    if isinstance(addresses, str):
        addresses = addresses.replace(",", "\n").split()
    cleaned, errors = [], []
    own = {d.name: d for d in Domain.objects.filter(customer=customer)}
    for raw in addresses:
        if not raw.strip():
            continue
        try:
            address = normalize_destination(raw)
        except ValidationError as exc:
            errors.extend(exc.messages)
            continue
        local, _at, domain = address.rpartition("@")
        if address == exclude:
            errors.append(_("%(address)s cannot be its own destination.") % {"address": address})
        elif domain in own and not _exists_at(own[domain], local):
            errors.append(_("There is no mailbox or alias %(address)s.")
                          % {"address": f"{local}@{own[domain].unicode_name}"})
        elif address not in cleaned:
            cleaned.append(address)
    if not cleaned and not errors and field == "destinations":
        errors.append(_("Give at least one destination."))
    if len(cleaned) > limit:
        errors.append(ngettext("Use at most %(count)s address.", "Use at most %(count)s addresses.", limit)
                      % {"count": limit})
    if errors:
        raise ValidationError({field: errors})
    return cleaned


def alias_create(*, actor: User | None, domain: Domain, local_part: str, destinations, description: str = "",
                 is_enabled: bool = True, client_ip: str | None = None) -> Alias:
    local = normalize_local_part(local_part)
    with transaction.atomic():
        # The customer row is the plan's lock: two adds cannot both take the last alias.
        customer = Customer.objects.select_for_update().get(pk=domain.customer_id)
        address = f"{local}@{domain.name}"
        cleaned = clean_destinations(destinations, customer=customer, exclude=address)
        if Mailbox.objects.filter(domain=domain, local_part=local).exists():
            raise ValidationError({"local_part": _("%(address)s is a mailbox; forward its mail from the mailbox's "
                                                   "page instead.") % {"address": f"{local}@{domain.unicode_name}"}})
        if Alias.objects.filter(domain=domain, local_part=local).exists():
            raise ValidationError({"local_part": _("The alias %(address)s already exists.")
                                                 % {"address": f"{local}@{domain.unicode_name}"}})
        if Alias.objects.filter(domain__customer=customer).count() >= customer.max_aliases:
            raise ValidationError({"local_part": _("Your plan allows %(count)s aliases and all are in use.")
                                                 % {"count": customer.max_aliases}})
        alias = Alias.objects.create(domain=domain, local_part=local, destinations=cleaned, is_enabled=is_enabled,
                                     description=(description or "").strip()[:200])
        audit(actor=actor, action="alias.create", obj=alias, after=snapshot(alias), client_ip=client_ip)
        routes_changed()  # an address the catch-all or an alias domain took now goes here
    return alias


def alias_update(*, actor: User | None, alias: Alias, destinations=None, description: str | None = None,
                 is_enabled: bool | None = None, client_ip: str | None = None) -> Alias:
    with transaction.atomic():
        alias = Alias.objects.select_for_update().select_related("domain", "domain__customer").get(pk=alias.pk)
        before = snapshot(alias)
        if destinations is not None:
            alias.destinations = clean_destinations(destinations, customer=alias.domain.customer,
                                                     exclude=alias.address)
        if description is not None:
            alias.description = description.strip()[:200]
        if is_enabled is not None:
            alias.is_enabled = is_enabled
        after = snapshot(alias)
        if after != before:
            alias.save()
            audit(actor=actor, action="alias.update", obj=alias, before=before, after=after, client_ip=client_ip)
            routes_changed()
    return alias


def alias_delete(*, actor: User | None, alias: Alias, client_ip: str | None = None) -> None:
    with transaction.atomic():
        audit(actor=actor, action="alias.delete", obj=alias, before=snapshot(alias), client_ip=client_ip)
        alias.delete()
        routes_changed()


def domain_set_catchall(*, actor: User | None, domain: Domain, destination: str,
                        client_ip: str | None = None) -> Domain:
    """Mail to any address of the domain that nothing else takes goes to `destination`; "" switches it off."""
    with transaction.atomic():
        domain = Domain.objects.select_for_update().select_related("customer").get(pk=domain.pk)
        value = ""
        if (destination or "").strip():
            value = clean_destinations([destination], customer=domain.customer, limit=1, field="catchall")[0]
            if value.rpartition("@")[2] == domain.name and not (
                    Mailbox.objects.filter(domain=domain, local_part=value.rpartition("@")[0]).exists()
                    or Alias.objects.filter(domain=domain, local_part=value.rpartition("@")[0]).exists()):
                raise ValidationError({"catchall": _("The catch-all of a domain cannot be an address that only the "
                                                     "catch-all itself would take.")})
        if value == domain.catchall:
            return domain
        before = {"catchall": domain.catchall}
        domain.catchall = value
        domain.save(update_fields=["catchall"])
        routes_changed()
        audit(actor=actor, action="domain.catchall", obj=domain, before=before, after={"catchall": value},
              client_ip=client_ip)
    return domain


def domain_set_alias_of(*, actor: User | None, domain: Domain, target: Domain | None,
                        client_ip: str | None = None) -> Domain:
    """Make `domain` an alias domain of `target` (mail to x@domain goes to x@target), or a domain of its own
    again with target None. Both must be the customer's; alias domains do not chain."""
    with transaction.atomic():
        domain = Domain.objects.select_for_update().get(pk=domain.pk)
        if target is not None:
            target = Domain.objects.select_for_update().get(pk=target.pk)
            if target.customer_id != domain.customer_id:
                raise ValidationError({"alias_of": _("Choose one of your own domains.")})
            if target.pk == domain.pk:
                raise ValidationError({"alias_of": _("A domain cannot be an alias of itself.")})
            if target.alias_of_id is not None:
                raise ValidationError({"alias_of": _("%(domain)s is itself an alias domain; choose the domain it "
                                                     "points to.") % {"domain": target.unicode_name}})
            if domain.alias_domains.exists():
                names = ", ".join(d.unicode_name for d in domain.alias_domains.all())
                raise ValidationError({"alias_of": _("%(domain)s is the target of %(names)s; an alias domain cannot "
                                                     "have alias domains of its own.")
                                                   % {"domain": domain.unicode_name, "names": names}})
        new = target.pk if target is not None else None
        if new == domain.alias_of_id:
            return domain
        before = {"alias_of": domain.alias_of_id}
        domain.alias_of = target
        domain.save(update_fields=["alias_of"])
        routes_changed()
        audit(actor=actor, action="domain.alias_of", obj=domain, before=before,
              after={"alias_of": new, "alias_of_name": target.name if target else ""}, client_ip=client_ip)
    return domain


def mailbox_set_forwarding(*, actor: User | None, mailbox: Mailbox, addresses, keep_copy: bool = True,
                           client_ip: str | None = None) -> Mailbox:
    """Forward a copy of the mailbox's mail to `addresses` (none: no forwarding); without keep_copy the mailbox
    itself keeps nothing."""
    with transaction.atomic():
        mailbox = Mailbox.objects.select_for_update().select_related("domain", "domain__customer").get(pk=mailbox.pk)
        cleaned = clean_destinations(addresses, customer=mailbox.domain.customer, limit=MAX_FORWARDS,
                                     field="forward_to", exclude=mailbox.address)
        before = {"forward_to": mailbox.forward_to, "forward_keep_copy": mailbox.forward_keep_copy}
        after = {"forward_to": cleaned, "forward_keep_copy": bool(keep_copy) or not cleaned}
        if after == before:
            return mailbox
        mailbox.forward_to, mailbox.forward_keep_copy = after["forward_to"], after["forward_keep_copy"]
        mailbox.save(update_fields=["forward_to", "forward_keep_copy"])
        routes_changed()
        audit(actor=actor, action="mailbox.forwarding", obj=mailbox, before=before, after=after, client_ip=client_ip)
    return mailbox
