"""Mailbox hashes are readable by other implementations: passlib's argon2 and Dovecot's own `doveadm pw -t`."""

import os
import shutil
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from argon2 import PasswordHasher, Type, extract_parameters

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # passlib 1.7.4 imports the stdlib's deprecated crypt
    from passlib.hash import argon2 as passlib_argon2

from accounts import hashing

ROOT = Path(__file__).resolve().parents[2]

# passlib 1.7.4 reads argon2-cffi's deprecated __version__.
pytestmark = pytest.mark.filterwarnings("ignore:Accessing argon2.__version__:DeprecationWarning")

PASSWORDS = ["correct horse battery", "pässwörd mit € und ✓", 'quotes \' " and $dollar']


def doveadm() -> str:
    path = shutil.which("doveadm") or "/usr/bin/doveadm"
    if not shutil.which(path):
        pytest.fail("doveadm is missing: install the Debian package dovecot-core")
    return path


def doveadm_accepts(stored: str, password: str) -> bool:
    result = subprocess.run([doveadm(), "pw", "-t", stored, "-p", password], capture_output=True, text=True, timeout=30)
    if result.returncode not in (0, 75):  # 75 (EX_TEMPFAIL) is "Password mismatch"
        pytest.fail(f"doveadm pw failed: {result.stderr}")
    return result.returncode == 0 and "(verified)" in result.stdout


# The defaults of hostingmail/settings.py (which tests/settings.py lowers for speed), and the earlier ones: hashes
# made under those keep verifying, here and in Dovecot, since the cost is read from each hash.
COSTS = {"production cost": (1, 46 * 1024, 1), "earlier production cost": (3, 65536, 1)}


def test_the_production_cost_is_at_least_owasps_minimum_and_what_the_costs_above_say():
    """The defaults of hostingmail/settings.py, read in a process of its own (tests/settings.py lowers them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAIL_HASH_")}
    env["DJANGO_SETTINGS_MODULE"] = "hostingmail.settings"
    out = subprocess.run([sys.executable, "-c", "from hostingmail import settings as s; "
                          "print(s.MAIL_HASH_TIME_COST, s.MAIL_HASH_MEMORY_KIB, s.MAIL_HASH_PARALLELISM)"],
                         env=env, capture_output=True, text=True, check=True, cwd=ROOT).stdout.split()
    time_cost, memory, parallelism = (int(x) for x in out)
    assert (time_cost, memory, parallelism) == COSTS["production cost"]
    # OWASP's minimum is 19 MiB with t=2; its equivalent settings trade memory for passes at about the same product.
    assert memory * time_cost >= 19 * 1024 * 2 and memory >= 19 * 1024


@pytest.fixture(params=["test cost", *COSTS])
def cost(request, settings):
    if request.param in COSTS:
        time_cost, memory, parallelism = COSTS[request.param]
        settings.MAIL_HASH_TIME_COST, settings.MAIL_HASH_MEMORY_KIB, settings.MAIL_HASH_PARALLELISM = (
            time_cost, memory, parallelism)
    return request.param


@pytest.mark.parametrize("password", PASSWORDS)
def test_passlib_verifies_our_hash(password, cost):
    stored = hashing.make_hash(password)
    assert stored.startswith("{ARGON2ID}$argon2id$")
    bare = stored.removeprefix("{ARGON2ID}")
    assert passlib_argon2.identify(bare)
    assert passlib_argon2.verify(password, bare)
    assert not passlib_argon2.verify(password + "x", bare)


@pytest.mark.parametrize("password", PASSWORDS)
def test_doveadm_verifies_our_hash(password, cost):
    stored = hashing.make_hash(password)
    assert doveadm_accepts(stored, password)
    assert not doveadm_accepts(stored, password.upper())
    assert not doveadm_accepts(stored, "")


def test_we_verify_a_hash_made_by_doveadm():
    made = subprocess.run([doveadm(), "pw", "-s", "ARGON2ID", "-p", "made by dovecot"], capture_output=True, text=True,
                          timeout=30, check=True).stdout.strip()
    assert made.startswith("{ARGON2ID}")
    assert hashing.check_hash("made by dovecot", made)
    assert not hashing.check_hash("made by dovecot!", made)


def test_a_thread_given_a_process_pool_verifies_there():
    stored = hashing.make_hash("right password")
    pool = hashing.process_pool(1)

    def in_thread():
        hashing.use_pool(pool)
        return hashing.check_hash("right password", stored), hashing.check_hash("wrong password", stored)

    try:
        with ThreadPoolExecutor(max_workers=1) as thread:
            assert thread.submit(in_thread).result() == (True, False)
        workers = list(pool._processes)
        assert workers and os.getpid() not in workers  # the hashing ran in a worker process
        # ... at the lowest priority: only CPU time nobody else wants
        assert {os.sched_getscheduler(pid) for pid in workers} == {os.SCHED_IDLE}
        assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in workers} == {19}
    finally:
        pool.shutdown()
    assert hashing.check_hash("right password", stored)  # this thread was given no pool: verifies itself


def _minor_faults(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rpartition(")")[2].split()[7])  # field 10, minflt


def _worker_faults(stored: str, *, hashes: int, first: bool) -> int:
    """Minor page faults of a new pool's one worker while it verifies `stored` `hashes` times, after verifying it
    once more (first) or after only starting."""
    pool = hashing.process_pool(1)

    def in_thread():
        hashing.use_pool(pool)
        if first:
            assert hashing.check_hash("pw", stored)
        else:
            pool.submit(os.getpid).result()  # started, and its initializer done
        worker = next(iter(pool._processes))
        before = _minor_faults(worker)
        assert all(hashing.check_hash("pw", stored) for _ in range(hashes))
        return _minor_faults(worker) - before

    try:
        with ThreadPoolExecutor(max_workers=1) as thread:
            return thread.submit(in_thread).result()
    finally:
        pool.shutdown()


def _argon2_v16(password: str, *, memory_kib: int = 1024) -> str:
    """An argon2id hash of Argon2's earlier version 1.0 (v=16), which argon2-cffi reads and libsodium does not."""
    from argon2.low_level import hash_secret

    return hash_secret(password.encode(), os.urandom(16), time_cost=1, memory_cost=memory_kib, parallelism=1,
                       hash_len=32, type=Type.ID, version=16).decode()


def test_a_worker_reuses_the_memory_of_one_hash_for_the_next():
    """For the hashes argon2-cffi verifies, Argon2's 64 MiB are faulted in once per worker, not once per hash
    (16 384 page faults each). (libsodium maps its own memory for each hash and verifies ours for less CPU anyway:
    bench/argon2_params.py.)"""
    stored = hashing.SCHEME + _argon2_v16("pw", memory_kib=64 * 1024)
    assert _worker_faults(stored, hashes=3, first=True) < 2000  # each would fault 16 384 pages in afresh


@pytest.mark.parametrize("password", PASSWORDS)
def test_our_hashes_are_verified_by_libsodium_with_argon2_cffis_answers(password, cost, monkeypatch):
    import nacl.pwhash.argon2id

    asked = []
    sodium_verify = nacl.pwhash.argon2id.verify
    monkeypatch.setattr(nacl.pwhash.argon2id, "verify", lambda *args: asked.append(args) or sodium_verify(*args))
    stored = hashing.make_hash(password)
    bare = stored.removeprefix(hashing.SCHEME)
    assert PasswordHasher(type=Type.ID).verify(bare, password)  # argon2-cffi's own answer
    for attempt in (password, password + "x", "", password.upper()):
        assert hashing.check_hash(attempt, stored) is (attempt == password)
    assert len(asked) == 4  # each answer came from libsodium, a mismatch included (no second hash after it)
    assert not hashing.check_hash(password, hashing.SCHEME + hashing._matching_nothing())


def test_a_hash_libsodium_cannot_read_is_verified_by_argon2_cffi(monkeypatch):
    import nacl.pwhash.argon2id

    monkeypatch.setattr(nacl.pwhash.argon2id, "verify", lambda *args: pytest.fail("libsodium asked"))
    stored = hashing.SCHEME + _argon2_v16("pässwörd")
    assert hashing.check_hash("pässwörd", stored)
    assert not hashing.check_hash("passwort", stored)
    for malformed in ("$argon2id$v=19$m=1024,t=1,p=1$short$hash", "$argon2id$garbage", "$argon2i$v=19$m=8,t=1,p=1$"):
        assert not hashing.check_hash("x", hashing.SCHEME + malformed)


def test_the_hash_a_worker_starts_with_is_at_the_current_cost_and_matches_nothing(settings):
    settings.MAIL_HASH_MEMORY_KIB, settings.MAIL_HASH_TIME_COST, settings.MAIL_HASH_PARALLELISM = 2048, 2, 2
    first = hashing._matching_nothing()
    made = extract_parameters(hashing.make_hash("")[len(hashing.SCHEME):])
    assert extract_parameters(first) == made
    assert not any(hashing._verify(first, password) for password in ("", "pw", "\0"))


def test_credential_secrets_are_never_given_to_dovecot_and_mailbox_passwords_never_leave_argon2(settings):
    """Dovecot reads mailboxes' password_hash only (hostingmail/deploy/dovecot/dovecot-sql.conf.ext): that stays
    {ARGON2ID}; the keyed scheme is for credentials' secrets, which no Dovecot query reads."""
    from pathlib import Path

    deploy = Path(__file__).resolve().parents[2] / "hostingmail" / "deploy" / "dovecot"
    queries = "".join(path.read_text() for path in deploy.rglob("*") if path.is_file())
    assert "password_hash" in queries and "secret_hash" not in queries and "smtpcredential" not in queries
    assert hashing.make_hash("a mailbox password").startswith("{ARGON2ID}$argon2id$")
    assert hashing.make_secret_hash("a generated secret").startswith("{HMAC-SHA256}")
