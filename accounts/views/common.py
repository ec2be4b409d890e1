"""What every panel view shares: the role gate, the tenant-scoped getters, the client address, service errors
onto forms, paging."""

import time
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, resolve_url
from django.utils.functional import cached_property
from django.utils.http import urlencode

from accounts import selectors
from accounts.models import Alias, Customer, Domain, Mailbox, SmtpCredential, User

# The tenant a role's user must belong to for the role to count (a reseller admin without a reseller is no one's).
_ROLE_TENANT = {User.Role.RESELLER: "reseller_id", User.Role.CUSTOMER: "customer_id", User.Role.MAILBOX: "mailbox_id"}


def code_url(next_url: str) -> str:
    """The two-factor code page, coming back to next_url once the code is given."""
    return f"{resolve_url('security:code')}?{urlencode({'next': next_url})}"


def role_required(*roles: str, verified: bool = False):
    """The one gate on a view's role: anonymous users go to the sign-in page, other roles get a 403.

    verified=True: the session must also have passed the two-factor check (support staff acting on other people's
    accounts); a session that has not is sent to the code page, and back here after it.
    """

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            user = request.user
            tenant = _ROLE_TENANT.get(user.role)
            if user.role not in roles or (tenant and not getattr(user, tenant)):
                raise PermissionDenied("This page is not for your role.")
            if verified and not user.is_verified():
                return redirect(code_url(request.get_full_path()))
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def client_ip(request) -> str | None:
    # REMOTE_ADDR only: behind a proxy, the proxy (or SECURE_PROXY_SSL_HEADER setups) must set it right.
    return request.META.get("REMOTE_ADDR") or None


def _get_customer_for_user(request, pk) -> Customer:
    return get_object_or_404(selectors.customers_visible_to(request.user), pk=pk)


def _get_domain_for_user(request, pk) -> Domain:
    return get_object_or_404(selectors.domains_visible_to(request.user), pk=pk)


def _get_mailbox_for_user(request, pk, *, manage: bool = True) -> Mailbox:
    """A mailbox the user may see; with manage=True one they may also administer (not its own owner)."""
    qs = selectors.mailboxes_managed_by(request.user) if manage else selectors.mailboxes_visible_to(request.user)
    return get_object_or_404(qs, pk=pk)


def _get_alias_for_user(request, pk) -> Alias:
    return get_object_or_404(selectors.aliases_visible_to(request.user), pk=pk)


def _get_credential_for_user(request, pk) -> SmtpCredential:
    return get_object_or_404(selectors.credentials_visible_to(request.user), pk=pk)


def customer_in_context(request) -> Customer:
    """The customer a page works for: a customer user's own; for staff, ?customer= (or the POSTed one)."""
    user = request.user
    if user.role == User.Role.CUSTOMER:
        if not user.customer_id:
            raise Http404("No customer")
        return user.customer
    pk = request.POST.get("customer") or request.GET.get("customer")
    if not pk or not str(pk).isdigit():
        raise Http404("Choose a customer first")
    return _get_customer_for_user(request, pk)


def apply_errors(form, exc: ValidationError) -> None:
    """Put a service's ValidationError next to the matching field, or at the top of the form."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def add_refusals(form, errors: dict) -> None:
    """A service's refusals (a name taken, a pool exhausted) beside the form's own errors, so that one response
    shows every problem at once: only on fields that were filled in and passed the form's checks."""
    for field, messages_ in errors.items():
        if field in form.fields and field not in form.errors and str(form.data.get(field, "")).strip():
            form.add_error(field, messages_)


def submit(request, form, action, *, failure: str):
    """On a POST with a valid form, action(cleaned_data) — a service call — and its result.

    None when there is nothing to do yet or it failed; a service's ValidationError then goes next to the fields
    and the failure message is flashed.
    """
    if request.method != "POST":
        return None
    if form.is_valid():
        try:
            return action(form.cleaned_data)
        except ValidationError as exc:
            apply_errors(form, exc)
    messages.error(request, failure)
    return None


def flash_outcome(request, action, success: str) -> bool:
    """A service call without a form (a button): its refusal, a ValidationError, is flashed instead of the
    success note. True when it succeeded."""
    try:
        action()
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return False
    messages.success(request, success)
    return True


# A new secret (credential, API key, webhook signing secret) is shown once on the page a creation redirects to
# (post/redirect/get: a reload or a resubmitted form makes no second one). It waits in the session for that one
# page, taken out when shown; one not fetched within this many seconds is not shown at all.
SHOWN_ONCE_SECONDS = 600


def _shown_once_key(kind: str, pk) -> str:
    return f"shown_once:{kind}:{pk}"


def shown_once_keep(request, *, kind: str, pk, secret: str) -> None:
    request.session[_shown_once_key(kind, pk)] = {"secret": secret, "at": time.time()}


def shown_once_take(request, *, kind: str, pk) -> str | None:
    """The secret kept for this object, removed from the session: None when it was shown already."""
    kept = request.session.pop(_shown_once_key(kind, pk), None)
    if not kept or time.time() - kept.get("at", 0) > SHOWN_ONCE_SECONDS:
        return None
    return kept["secret"]


PAGE_SIZE = 50
# Lists count at most this many rows: an exact COUNT(*) reads every row (support's lists cover the whole data
# set), a capped one stops there. Past it the page says "more than 10,000" and the pages stop; a search narrows.
COUNT_CAP = 10_000


class CappedPaginator(Paginator):
    """A Paginator whose count reads at most cap + 1 rows of the queryset, without its ordering (and the list
    views page querysets that have no annotations or joins that multiply rows, so the count is the cheap one).
    Past the cap, `more_than` is true and `count` is the cap."""

    def __init__(self, object_list, per_page, *, cap: int | None = None, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.cap = COUNT_CAP if cap is None else cap

    @cached_property
    def _counted(self) -> int:
        return self.object_list.order_by()[: self.cap + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._counted, self.cap)

    @property
    def more_than(self) -> bool:
        return self._counted > self.cap

    def get_page(self, number):
        return self.page(1) if number in (None, "", 1, "1") else super().get_page(number)

    def page(self, number):
        rows = None
        if number in (1, "1") and "_counted" not in self.__dict__:
            # The first page is fetched before counting: a list shorter than a page (a search's usual answer, a
            # customer's own objects) is counted by that fetch, without a COUNT(*) that would run its filters again.
            rows = list(self.object_list[: self.per_page])
            if len(rows) < self.per_page and len(rows) <= self.cap:
                self.__dict__["_counted"] = len(rows)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            # The last page asks for a whole page, not for the rows counted: a LIMIT below PostgreSQL's estimate of
            # a search's matches (20 for a substring no statistics know) makes it walk the created_at index
            # through every row for the few it needs, where the trigram index finds them at once
            # (bench/README.md: 1 sender match, LIMIT 1: 180 ms; LIMIT 50: the trigram index).
            top = self.count if self.more_than else max(top, self.count)
        if rows is not None and top <= self.per_page:
            return self._get_page(rows[:top], number, self)
        return self._get_page(self.object_list[bottom:top], number, self)


def paginate(request, queryset):
    """One page of a list (?page=N, 50 a page); a page past the end shows the last one."""
    return CappedPaginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
