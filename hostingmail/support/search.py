"""One search box over customers, domains (Unicode or IDNA), mailbox and alias addresses, credential usernames,
queue ids."""

from dataclasses import dataclass

from django.utils.translation import gettext as _

from accounts import selectors
from accounts.models import User
from accounts.normalize import domain_search_term
from relay.panel.selectors import messages_visible_to

LIMIT = 20


@dataclass(frozen=True)
class Hit:
    label: str
    detail: str
    customer_id: int | None
    customer_name: str
    url_name: str  # every hit is a link: its own page (a customer's is the support page of that customer)
    url_pk: int


def _domain_part(text: str) -> str:
    # Label by label, so a partial name ("bücher." or ".test") finds its stored A-labels too.
    return ".".join(domain_search_term(label) if label else "" for label in text.split("."))


def search(user: User, query: str) -> dict[str, list[Hit]]:
    query = (query or "").strip()
    results: dict[str, list[Hit]] = {"customers": [], "domains": [], "mailboxes": [], "aliases": [], "credentials": [],
                                     "messages": []}
    if not query:
        return results
    provider = _("provider")
    for c in selectors.customers_visible_to(user).filter(name__icontains=query).order_by("name")[:LIMIT]:
        detail = f"{c.reseller or provider} · {c.get_status_display()}"
        results["customers"].append(Hit(c.name, detail, c.pk, c.name, "support:customer", c.pk))

    local, at, domain_text = query.rpartition("@")
    domain_q = _domain_part(domain_text if at else query)
    if domain_q.strip(".") and " " not in domain_q:
        domains = (selectors.domains_visible_to(user).filter(name__contains=domain_q)
                   .order_by("name")[:LIMIT])
        for d in domains:
            results["domains"].append(Hit(d.unicode_name, f"{d.name} · {d.get_status_display()}", d.customer_id,
                                          d.customer.name, "domain_detail", d.pk))
    if at or " " not in query:
        # "anna" finds anna@… and joanna@… (any part of the local part); "anna@alp" narrows to domains that start so.
        mailboxes = selectors.mailboxes_visible_to(user)
        aliases = selectors.aliases_visible_to(user)
        if at:
            mailboxes = mailboxes.filter(domain__name__startswith=domain_q)
            aliases = aliases.filter(domain__name__startswith=domain_q)
        if local or not at:
            mailboxes = mailboxes.filter(local_part__icontains=local if at else query)
            aliases = aliases.filter(local_part__icontains=local if at else query)
        for m in mailboxes.order_by("domain__name", "local_part")[:LIMIT]:
            results["mailboxes"].append(Hit(m.unicode_address, _("active") if m.is_active else _("suspended"),
                                            m.domain.customer_id, m.domain.customer.name, "mailbox_edit", m.pk))
        for a in aliases.order_by("domain__name", "local_part")[:LIMIT]:
            results["aliases"].append(Hit(a.unicode_address, "→ " + ", ".join(a.destinations)[:200],
                                          a.domain.customer_id, a.domain.customer.name, "alias_edit", a.pk))
    if " " not in query and not at:  # generated usernames are lower-case, without spaces or "@"
        # By prefix: the unique index answers it (generated usernames are typed from their start).
        credentials = (selectors.credentials_visible_to(user).select_related("customer")
                       .filter(username__startswith=query.lower()))
        for cred in credentials.order_by("username")[:LIMIT]:
            results["credentials"].append(Hit(cred.username, cred.scope_label, cred.customer_id, cred.customer.name,
                                              "credential_settings", cred.pk))

    if query.isalnum() and len(query) <= 20:
        messages = messages_visible_to(user).select_related("customer").filter(queue_id=query.upper())
        for msg in messages[:LIMIT]:
            results["messages"].append(Hit(msg.queue_id, f"{msg.mail_from or '<>'} · {msg.get_state_display()}",
                                           msg.customer_id, msg.customer.name if msg.customer else "",
                                           "relay:message_detail", msg.pk))
    return results
