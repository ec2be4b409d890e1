"""Domains: list, add, detail with DNS verification and record status, check now, delete."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import dnscheck, selectors
from accounts.forms.domains import DmarcRejectPolicyForm, DomainForm
from accounts.forms.filters import GreylistingForm
from accounts.models import User
from accounts.normalize import domain_search_term
from accounts.services import domains
from accounts.views import aliases as alias_views
from accounts.views.common import _get_domain_for_user, client_ip, customer_in_context, paginate, submit


@login_required
def domain_list(request):
    # Counted and paged without the mailbox counts: those are fetched for the page's rows only.
    visible = selectors.domains_visible_to(request.user).order_by("name")
    customer = None
    if request.user.role != User.Role.CUSTOMER and request.GET.get("customer"):
        customer = customer_in_context(request)
        visible = visible.filter(customer=customer)
    q = request.GET.get("q", "").strip()
    if q:
        visible = visible.filter(name__icontains=domain_search_term(q))
    page = paginate(request, visible)
    page.object_list = selectors.with_mailbox_counts(list(page.object_list))
    return render(request, "accounts/domains/list.html", {"page": page, "customer": customer, "q": q})


@login_required
def domain_add(request):
    customer = customer_in_context(request)
    form = DomainForm(request.POST or None)
    domain = submit(request, form, lambda data: domains.domain_create(
        actor=request.user, customer=customer, name=data["name"], client_ip=client_ip(request)),
        failure=_("The domain was not added; see the errors below."))
    if domain is not None:
        messages.success(request, _("%(name)s was added. Publish the records below in one go: the ownership TXT record "
                                    "proves it is yours.") % {"name": domain.unicode_name})
        return redirect("domain_detail", pk=domain.pk)
    return render(request, "accounts/domains/add.html", {"form": form, "customer": customer})


def _dns_context(domain) -> dict:
    published = dnscheck.records_to_publish(domain)
    # The page says why DKIM signs or not in the reader's language; the API and dns_check keep the English.
    return {"domain": domain, **published, "dkim": dnscheck.dkim_state(domain, localized=True),
            "next_check": dnscheck.next_check(domain),
            "zone_lines": "\n".join(r["zone_line"] for r in [published["verification"], *published["records"]])}


def _names(records: list[dict]) -> str:
    return ", ".join(_(r["label"]) for r in records)


def _check_outcome(domain, *, newly_verified: bool) -> tuple[str, str]:
    """(level, text) of the banner after a check: what was found, in the colour it deserves."""
    published = dnscheck.records_to_publish(domain)
    proof, records = published["verification"], published["records"]
    name = domain.unicode_name
    if proof["status"] == "error":
        return "error", _("The DNS could not be asked: %(error)s Try again in a minute.") % {"error": proof["error"]}
    failed = [r for r in records if r["status"] == "error"]
    if failed:
        text = _("The DNS could not be asked for %(records)s of %(name)s: %(error)s Try again in a minute.")
        return "error", text % {"records": _names(failed), "name": name, "error": failed[0]["error"]}
    required = [r for r in records if r["required"]]
    missing = [r for r in required if r["status"] == "missing"]
    wrong = [r for r in required if r["status"] == "wrong"]
    optional = [r for r in records if not r["required"] and r["status"] != "found"]
    parts = []
    if not domain.is_verified:
        parts.append(_("The ownership TXT record was not found yet. DNS changes can take a while to show; check "
                       "again in a few minutes."))
    elif newly_verified:
        parts.append(_("%(name)s is verified.") % {"name": name})
    if missing:
        parts.append(_("Not found: %(records)s.") % {"records": _names(missing)})
    if wrong:
        parts.append(_("Found but not what to publish: %(records)s.") % {"records": _names(wrong)})
    if not domain.is_verified or missing or wrong:
        return "warning", " ".join(parts)
    parts.append(_("All records mail needs are in place for %(name)s: %(records)s.")
                 % {"name": name, "records": _names(required)})
    if optional:
        parts.append(_("Not published (optional, for automatic client setup): %(records)s.")
                     % {"records": _names(optional)})
    return "success", " ".join(parts)


@login_required
def domain_detail(request, pk):
    domain = _get_domain_for_user(request, pk)
    context = _dns_context(domain)
    context["mailboxes"] = selectors.mailboxes_visible_to(request.user).filter(domain=domain)
    credentials = selectors.credentials_visible_to(request.user)
    context["credentials"] = credentials.filter(domain=domain, revoked_at__isnull=True)
    context["aliases"] = selectors.aliases_visible_to(request.user).filter(domain=domain)
    context.update(alias_views.domain_forms(domain))
    context["dmarc_form"] = DmarcRejectPolicyForm(initial={"dmarc_reject_policy": domain.dmarc_reject_policy})
    context["greylisting_form"] = GreylistingForm(initial={"greylisting": domain.greylisting})
    return render(request, "accounts/domains/detail.html", context)


@login_required
@require_POST
def domain_dmarc_reject_policy(request, pk):
    domain = _get_domain_for_user(request, pk)
    form = DmarcRejectPolicyForm(request.POST)
    if form.is_valid():
        domains.domain_set_dmarc_reject_policy(actor=request.user, domain=domain,
                                               policy=form.cleaned_data["dmarc_reject_policy"],
                                               client_ip=client_ip(request))
        messages.success(request, _("The DMARC setting of %(name)s is saved.") % {"name": domain.unicode_name})
    else:
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    return redirect("domain_detail", pk=domain.pk)


@login_required
@require_POST
def domain_check(request, pk):
    domain = _get_domain_for_user(request, pk)
    was_verified = domain.is_verified
    domain = domains.domain_check_now(actor=request.user, domain=domain, client_ip=client_ip(request))
    level, text = _check_outcome(domain, newly_verified=domain.is_verified and not was_verified)
    messages.add_message(request, {"success": messages.SUCCESS, "warning": messages.WARNING,
                                   "error": messages.ERROR}[level], text)
    if request.htmx:
        return render(request, "accounts/domains/_dns.html", _dns_context(domain))
    return redirect("domain_detail", pk=domain.pk)


@login_required
def domain_delete(request, pk):
    domain = _get_domain_for_user(request, pk)
    if request.method == "POST":
        name = domain.unicode_name
        domains.domain_delete(actor=request.user, domain=domain, client_ip=client_ip(request))
        messages.success(request, _("%(name)s and its mailboxes were deleted.") % {"name": name})
        return redirect("domain_list")
    return render(request, "accounts/domains/delete.html", {"domain": domain,
                                                            "mailbox_count": domain.mailboxes.count()})
