"""A customer's spam filter page: thresholds for the customer and each domain, support's range, the allow and
block lists. Customers see their own; resellers and support the customers in their scope."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.conf import settings
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.forms.spam import BoundsForm, DomainThresholdsForm, SenderRuleForm, ThresholdsForm
from accounts.models import SenderRule, User
from accounts.services import spam
from accounts.views.common import _get_customer_for_user, _get_domain_for_user, client_ip, role_required, submit

_ON_LIST = {SenderRule.Kind.ALLOW: gettext_lazy("%(value)s is on the allow list."),
            SenderRule.Kind.BLOCK: gettext_lazy("%(value)s is on the block list.")}
_OFF_LIST = {SenderRule.Kind.ALLOW: gettext_lazy("%(value)s is off the allow list."),
             SenderRule.Kind.BLOCK: gettext_lazy("%(value)s is off the block list.")}


def _page(request, customer, *, bound: tuple[int, DomainThresholdsForm] | None = None, **forms):
    """The page, with the forms that failed (`forms`, and `bound`: one domain's) showing their errors."""
    policy = spam.customer_policy(customer)
    domains = []
    for domain in customer.domains.order_by("name"):
        if bound and bound[0] == domain.pk:
            domains.append((domain, bound[1]))
            continue
        own = spam.domain_policy(domain)
        domains.append((domain, DomainThresholdsForm(
            initial={"mark_score": own.mark_score, "reject_score": own.reject_score, "quarantine": own.quarantine},
            prefix=f"d{domain.pk}")))
    context = {
        "customer": customer, "bounds": spam.score_bounds(customer), "domains": domains,
        "checking": bool(settings.RSPAMD_URL),
        "rules": SenderRule.objects.filter(customer=customer),
        "form": ThresholdsForm(initial={"mark_score": policy.mark_score, "reject_score": policy.reject_score}),
        "bounds_form": BoundsForm(initial={"min_score": policy.min_score, "max_score": policy.max_score})
        if request.user.is_support else None,
        "rule_form": SenderRuleForm(),
    }
    context.update(forms)
    return render(request, "accounts/spam/settings.html", context, status=400 if forms or bound else 200)


@login_required
def spam_settings(request, pk):
    customer = _get_customer_for_user(request, pk)
    if request.method != "POST":
        return _page(request, customer)
    form = ThresholdsForm(request.POST)
    if submit(request, form, lambda data: spam.spam_thresholds_set(
            actor=request.user, customer=customer, mark_score=data["mark_score"], reject_score=data["reject_score"],
            client_ip=client_ip(request)), failure=_("The spam scores were not saved; see the errors below.")):
        messages.success(request, _("The spam scores are saved."))
        return redirect("spam_settings", pk=customer.pk)
    return _page(request, customer, form=form)


@login_required
@require_POST
def spam_domain(request, pk):
    domain = _get_domain_for_user(request, pk)
    form = DomainThresholdsForm(request.POST, prefix=f"d{domain.pk}")
    if submit(request, form, lambda data: spam.spam_thresholds_set(
            actor=request.user, customer=domain.customer, domain=domain, mark_score=data["mark_score"],
            reject_score=data["reject_score"], quarantine=data["quarantine"], client_ip=client_ip(request)),
            failure=_("The spam settings of %(name)s were not saved; see the errors below.")
            % {"name": domain.unicode_name}):
        messages.success(request, _("The spam settings of %(name)s are saved.") % {"name": domain.unicode_name})
        return redirect("spam_settings", pk=domain.customer_id)
    return _page(request, domain.customer, bound=(domain.pk, form))


@login_required  # signed in first, then the method, then the role
@require_POST
@role_required(User.Role.SUPPORT, verified=True)
def spam_bounds(request, pk):
    customer = _get_customer_for_user(request, pk)
    form = BoundsForm(request.POST)
    if submit(request, form, lambda data: spam.spam_bounds_set(
            actor=request.user, customer=customer, min_score=data["min_score"], max_score=data["max_score"],
            client_ip=client_ip(request)), failure=_("The range was not saved; see the errors below.")):
        messages.success(request, _("The range of spam scores is saved."))
        return redirect("spam_settings", pk=customer.pk)
    return _page(request, customer, bounds_form=form)


@login_required
@require_POST
def sender_rule_add(request, pk):
    customer = _get_customer_for_user(request, pk)
    form = SenderRuleForm(request.POST)
    rule = submit(request, form, lambda data: spam.sender_rule_add(
        actor=request.user, customer=customer, kind=data["kind"], value=data["value"], client_ip=client_ip(request)),
        failure=_("The sender was not listed; see the errors below."))
    if rule is not None:
        messages.success(request, _ON_LIST[rule.kind] % {"value": rule.value})
        return redirect("spam_settings", pk=customer.pk)
    return _page(request, customer, rule_form=form)


@login_required
@require_POST
def sender_rule_delete(request, pk, rule_pk):
    customer = _get_customer_for_user(request, pk)
    rule = get_object_or_404(SenderRule, customer=customer, pk=rule_pk)
    spam.sender_rule_delete(actor=request.user, rule=rule, client_ip=client_ip(request))
    messages.success(request, _OFF_LIST[rule.kind] % {"value": rule.value})
    return redirect("spam_settings", pk=customer.pk)
