"""A customer's spam settings: thresholds for the customer and for each of its domains (within the bounds support
sets), a domain's "hold instead of refuse", and the allow and block lists of senders. The MX reads them at the
end of DATA (relay.inbound.spam); every change is in the audit log."""

import math

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Customer, Domain, SenderRule, SpamPolicy, User
from accounts.normalize import normalize_domain
from accounts.services.audit_log import audit

MAX_SENDER_RULES = 1000
_NEITHER = gettext_lazy("“%(value)s” is neither an e-mail address nor a domain.")


def customer_policy(customer: Customer) -> SpamPolicy:
    """The customer's own row (unsaved and empty when it has none yet)."""
    return (SpamPolicy.objects.filter(customer=customer, domain__isnull=True).first()
            or SpamPolicy(customer=customer))


def domain_policy(domain: Domain) -> SpamPolicy:
    return SpamPolicy.objects.filter(domain=domain).first() or SpamPolicy(customer_id=domain.customer_id,
                                                                           domain=domain)


def score_bounds(customer: Customer) -> tuple[float, float]:
    """The lowest and highest threshold this customer may choose."""
    own = customer_policy(customer)
    low = own.min_score if own.min_score is not None else settings.SPAM_SCORE_MIN
    high = own.max_score if own.max_score is not None else settings.SPAM_SCORE_MAX
    return low, high


def _check_score(value: float | None, field: str) -> None:
    if value is not None and not math.isfinite(value):
        raise ValidationError({field: _("Enter a number.")})


def _check_thresholds(customer: Customer, mark: float | None, reject: float | None) -> None:
    low, high = score_bounds(customer)
    errors = {}
    for field, value in (("mark_score", mark), ("reject_score", reject)):
        _check_score(value, field)
        if value is not None and not low <= value <= high:
            errors[field] = _("Choose a score from %(low)s to %(high)s (the range your provider allows).") % {
                "low": f"{low:g}", "high": f"{high:g}"}
    if not errors and mark is not None and reject is not None and mark >= reject:
        errors["reject_score"] = _("The score to refuse must be higher than the score to mark as spam.")
    if errors:
        raise ValidationError(errors)


def _save(policy: SpamPolicy, *, actor: User | None, action: str, changes: dict, client_ip: str | None):
    with transaction.atomic():
        if policy.pk:
            policy = SpamPolicy.objects.select_for_update().get(pk=policy.pk)
        before = {name: getattr(policy, name) for name in changes}
        if before == changes and policy.pk:
            return policy
        for name, value in changes.items():
            setattr(policy, name, value)
        policy.updated_at = timezone.now()
        policy.save()
        audit(actor=actor, action=action, obj=policy.domain or policy.customer, before=before, after=changes,
              client_ip=client_ip)
    return policy


def spam_thresholds_set(*, actor: User | None, customer: Customer, domain: Domain | None = None,
                        mark_score: float | None, reject_score: float | None, quarantine: bool = False,
                        client_ip: str | None = None) -> SpamPolicy:
    """The scores from which mail is marked as spam and refused, for the customer or one of its domains (empty:
    the customer's, then rspamd's own); for a domain, whether mail it would refuse is held in quarantine."""
    if domain is not None and domain.customer_id != customer.pk:
        raise ValidationError(_("That domain is not this customer's."))
    _check_thresholds(customer, mark_score, reject_score)
    changes = {"mark_score": mark_score, "reject_score": reject_score}
    if domain is not None:
        changes["quarantine"] = bool(quarantine)
    policy = domain_policy(domain) if domain is not None else customer_policy(customer)
    return _save(policy, actor=actor, action="spam.thresholds", changes=changes, client_ip=client_ip)


def spam_bounds_set(*, actor: User, customer: Customer, min_score: float | None, max_score: float | None,
                    client_ip: str | None = None) -> SpamPolicy:
    """Support's range for the customer's thresholds (empty: SPAM_SCORE_MIN / SPAM_SCORE_MAX)."""
    if not actor.is_support:
        raise ValidationError(_("Only support sets the range of spam scores."))
    _check_score(min_score, "min_score")
    _check_score(max_score, "max_score")
    low = min_score if min_score is not None else settings.SPAM_SCORE_MIN
    high = max_score if max_score is not None else settings.SPAM_SCORE_MAX
    if low >= high:
        raise ValidationError({"max_score": _("The highest score must be above the lowest.")})
    return _save(customer_policy(customer), actor=actor, action="spam.bounds",
                 changes={"min_score": min_score, "max_score": max_score}, client_ip=client_ip)


def normalize_sender(value: str) -> str:
    """An address (local part kept, domain as its A-label) or a bare domain, lower-case as the MX compares it."""
    text = (value or "").strip().strip("<>").strip().lower()
    local, at, domain = text.rpartition("@")
    if at and not local:
        text, at = domain, ""  # "@example.com" is the domain
    try:
        domain = normalize_domain(domain if at else text)
    except ValidationError:
        raise ValidationError({"value": _NEITHER % {"value": value}}) from None
    if not at:
        return domain
    try:
        validate_email(f"{local}@{domain}")
    except ValidationError:
        raise ValidationError({"value": _NEITHER % {"value": value}}) from None
    return f"{local}@{domain}"


def sender_rule_add(*, actor: User | None, customer: Customer, kind: str, value: str,
                    client_ip: str | None = None) -> SenderRule:
    if kind not in SenderRule.Kind.values:
        raise ValidationError({"kind": _("Choose allow or block.")})
    value = normalize_sender(value)
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).first()  # one add at a time per customer
        if SenderRule.objects.filter(customer=customer, value=value).exists():
            raise ValidationError({"value": _("%(value)s is already on a list; delete it there first.")
                                   % {"value": value}})
        if SenderRule.objects.filter(customer=customer).count() >= MAX_SENDER_RULES:
            raise ValidationError(_("At most %(count)s senders can be listed.") % {"count": MAX_SENDER_RULES})
        rule = SenderRule.objects.create(customer=customer, kind=kind, value=value)
        audit(actor=actor, action="spam.sender_rule_add", obj=customer, after={"kind": kind, "value": value},
              client_ip=client_ip)
    return rule


def sender_rule_delete(*, actor: User | None, rule: SenderRule, client_ip: str | None = None) -> None:
    with transaction.atomic():
        before = {"kind": rule.kind, "value": rule.value}
        rule.delete()
        audit(actor=actor, action="spam.sender_rule_delete", obj=rule.customer, before=before, client_ip=client_ip)
