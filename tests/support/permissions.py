"""The permission matrix every panel view is tested with: who asks, and what they must get."""

from collections.abc import Callable

from django.db import connection, transaction

from accounts.models import AuditEntry, User
from tests.support.factories import make_tenant

# Who asks about an object of tenant `a` (a customer of reseller A).
# "sibling" is another customer of the same reseller; "other_customer" one of reseller B.
VIEWERS = ("owner", "support", "reseller", "other_reseller", "sibling", "other_customer", "direct", "mailbox_owner")
# Managing a customer's objects: the customer, its reseller's admins and support; everyone else gets a 404.
MANAGE = {"owner": 200, "support": 200, "reseller": 200, "other_reseller": 404, "sibling": 404, "other_customer": 404,
          "direct": 404, "mailbox_owner": 404}
# Everyone who must not reach a customer's objects at all.
DENIED = {who: 404 for who, status in MANAGE.items() if status == 404}


def mailbox_user(mailbox) -> User:
    user, _ = User.objects.get_or_create(
        mailbox=mailbox,
        defaults={"username": f"mailbox:{mailbox.pk}", "role": User.Role.MAILBOX, "customer": mailbox.domain.customer},
    )
    return user


def sibling(cast) -> User:
    """The user of a second customer of reseller A, made once per cast."""
    if not hasattr(cast, "sibling"):
        cast.sibling = make_tenant("Alpine", "alpine.test", cast.reseller_a)
    return cast.sibling.user


def viewer(cast, who: str) -> User:
    if who == "mailbox_owner":
        return mailbox_user(cast.a.mailbox)
    if who == "sibling":
        return sibling(cast)
    return {
        "owner": cast.a.user, "support": cast.support, "reseller": cast.reseller_a_admin,
        "other_reseller": cast.reseller_b_admin, "other_customer": cast.b.user, "direct": cast.direct.user,
    }[who]


def assert_matrix(client, cast, url: str, expected: dict, *, method: str = "get", data=None) -> None:
    """Every viewer gets the expected status; anonymous is sent to the login page."""
    got = {}
    for who, status in expected.items():
        client.force_login(viewer(cast, who))
        response = getattr(client, method)(url, data or {})
        got[who] = response.status_code
        client.logout()
    assert got == expected, f"{method.upper()} {url}"
    response = getattr(client, method)(url, data or {})
    assert response.status_code == 302 and response["Location"].startswith("/login/"), f"anonymous {url}"


def assert_shows_only(client, user, url: str, shown: tuple[str, ...], hidden: tuple[str, ...]) -> None:
    """The page shows all of `shown` and nothing of `hidden` (another tenant's names) to this user."""
    client.force_login(user)
    body = client.get(url).content.decode()
    assert all(text in body for text in shown), (url, user)
    assert not any(text in body for text in hidden), (url, user)


AUDIT_INSERT = f'INSERT INTO "{AuditEntry._meta.db_table}"'


def rolled_back(send: Callable[[], object]) -> tuple[object, bool]:
    """`send()` (a request) in a savepoint that is rolled back, so that a write that works does not change what the
    next request sees; also whether it wrote an audit entry, seen in the SQL it sends (cheaper than counting the
    table before and after each of the matrices' thousands of requests)."""
    inserts = []

    def watch(execute, sql, params, many, context):
        if sql.startswith(AUDIT_INSERT):
            inserts.append(sql)
        return execute(sql, params, many, context)

    with transaction.atomic(), connection.execute_wrapper(watch):
        response = send()
        transaction.set_rollback(True)
    return response, bool(inserts)
