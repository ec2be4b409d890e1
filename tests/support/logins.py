"""A whole SMTP login in the calling thread, for tests: the relay runs its three steps (lookup, hash, record) on
separate pools (relay.smtpd.server), through the same functions of relay.submission.auth."""

from relay.submission import auth
from relay.submission.policy import Principal


def authenticate(username: str, password: str, client_ip: str) -> Principal | None:
    """The principal if these credentials may log in now; no lockout bookkeeping."""
    [candidate] = auth.lookup_many([(username, client_ip)], with_lockout=False)
    verified = auth.verify(candidate=candidate, password=password)
    return verified.principal if verified is not None else None


def verified(username: str, password: str, client_ip: str) -> auth.Verified:
    """A login that verified (nothing written yet): what `auth.succeeded_many` takes."""
    [candidate] = auth.lookup_many([(username, client_ip)], with_lockout=False)
    login = auth.verify(candidate=candidate, password=password)
    assert login is not None, f"{username} did not verify"
    return login


def check_login(*, username: str, password: str, client_ip: str, valid_request: bool = True) -> auth.LoginResult:
    """Lockout in force, password, then the success or the failure recorded, as the relay does."""
    [candidate] = auth.lookup_many([(username, client_ip)])
    if candidate.locked:
        return auth.LoginResult(locked=True)
    verified = auth.verify(candidate=candidate, password=password, valid_request=valid_request)
    if verified is not None:
        if verified.writes:
            auth.succeeded_many([(verified, client_ip)])
        return auth.LoginResult(principal=verified.principal)
    return auth.failed(username=username, client_ip=client_ip)
