"""Argon2id cost settings for mailbox passwords: what each costs us per login and an attacker per guess.

    .venv/bin/python bench/argon2_params.py                  # every setting below, 20 hashes each
    .venv/bin/python bench/argon2_params.py --hashes 50

For each setting (the MAIL_HASH_* defaults, OWASP's minimum m=19 MiB t=2 p=1, OWASP's listed equivalents and a
setting between), on this machine:

- CPU ms per hash and per verify (CPU time: on a shared machine wall times move with the neighbours, and the
  relay's hashing workers run at SCHED_IDLE), through the relay's own worker (accounts.hashing.process_pool, whose
  workers keep Argon2's memory between hashes);
- cold logins/s per core those CPU times allow (the relay hashes on every core: times the cores for the machine);
- Dovecot's CPU time to verify the same hash (`doveadm pw -t`, less that of `doveadm pw -t` on a {PLAIN} hash,
  i.e. the program's own start), since IMAP/POP3 log in against the same hashes;
- the attacker's cost per guess relative to OWASP's minimum, as memory × passes (Argon2's work and the memory a
  guesser must hold per guess in flight: what bounds a GPU's parallelism).
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hostingmail.settings")

import django  # noqa: E402

django.setup()

from argon2 import PasswordHasher, Type  # noqa: E402
from django.conf import settings  # noqa: E402

from accounts import hashing  # noqa: E402

OWASP = (19 * 1024, 2)  # memory KiB, passes
PREVIOUS = (64 * 1024, 3)  # the defaults before this review


def candidates() -> list[tuple[str, int, int]]:
    found = [("current MAIL_HASH_* defaults", settings.MAIL_HASH_MEMORY_KIB, settings.MAIL_HASH_TIME_COST)]
    if (settings.MAIL_HASH_MEMORY_KIB, settings.MAIL_HASH_TIME_COST) != PREVIOUS:
        found.append(("previous defaults", *PREVIOUS))
    found += [
        ("between", 32 * 1024, 2),
        ("OWASP option 1", 46 * 1024, 1),
        ("OWASP minimum (option 2)", *OWASP),
        ("OWASP option 3", 12 * 1024, 3),
        ("OWASP option 5", 7 * 1024, 5),
    ]
    labels: dict[tuple[int, int], list[str]] = {}
    for label, memory, passes in found:
        labels.setdefault((memory, passes), []).append(label)
    return [(" = ".join(names), memory, passes) for (memory, passes), names in labels.items()]


def _hash(memory: int, passes: int, password: str) -> str:
    return PasswordHasher(time_cost=passes, memory_cost=memory, parallelism=1, type=Type.ID).hash(password)


def _timed(func, *args) -> float:
    # CPU time, not wall time: on a machine shared with other work (and in a worker at SCHED_IDLE) the wall time
    # says more about the neighbours than about the setting.
    started = time.thread_time()
    func(*args)
    return (time.thread_time() - started) * 1000


def one_core(pool, memory: int, passes: int, count: int) -> tuple[float, float, list[str]]:
    """Median CPU ms per hash and per verify, one at a time on one worker."""
    pool.submit(_hash, memory, passes, "warm-up").result()
    hashes, hash_ms, verify_ms = [], [], []
    for i in range(count):
        hash_ms.append(pool.submit(_timed, _hash, memory, passes, f"password {i}").result())
        hashes.append(pool.submit(_hash, memory, passes, f"password {i}").result())
    for i, encoded in enumerate(hashes):
        verify_ms.append(pool.submit(_timed, hashing._verify, encoded, f"password {i}").result())
    return statistics.median(hash_ms), statistics.median(verify_ms), hashes


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _doveadm(stored: str, password: str) -> float:
    """CPU ms of one `doveadm pw -t`."""
    started = _children_cpu()
    done = subprocess.run(["doveadm", "pw", "-t", stored, "-p", password], capture_output=True, text=True)
    elapsed = (_children_cpu() - started) * 1000
    if done.returncode != 0 or "(verified)" not in done.stdout:
        raise SystemExit(f"doveadm did not verify {stored[:40]}...: {done.stdout}{done.stderr}")
    return elapsed


def dovecot_ms(hashes: list[str], start_ms: float) -> float:
    return max(0.0, statistics.median(_doveadm(hashing.SCHEME + h, f"password {i}") for i, h in enumerate(hashes))
               - start_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hashes", type=int, default=20, help="hashes per setting")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the start")
    start_ms = statistics.median(_doveadm("{PLAIN}password", "password") for _ in range(args.hashes))
    print(f"doveadm pw -t on a {{PLAIN}} hash (the program's start, subtracted below): {start_ms:.1f} CPU ms")
    pool = hashing.process_pool(1)
    rows = []
    try:
        for label, memory, passes in candidates():
            hash_ms, verify_ms, hashes = one_core(pool, memory, passes, args.hashes)
            rows.append((label, memory, passes, hash_ms, verify_ms, 1000 / verify_ms, dovecot_ms(hashes, start_ms)))
    finally:
        pool.shutdown()
    print()
    print(f"| setting | m (MiB) / t / p | hash CPU ms | verify CPU ms | cold logins/s per core | Dovecot verify CPU ms "
          f"| attacker cost × OWASP min |")
    print("|---|---|---|---|---|---|---|")
    for label, memory, passes, hash_ms, verify_ms, rate, dovecot in rows:
        cost = memory * passes / (OWASP[0] * OWASP[1])
        print(f"| {label} | {memory // 1024} / {passes} / 1 | {hash_ms:.1f} | {verify_ms:.1f} | {rate:.1f} "
              f"| {dovecot:.1f} | {cost:.2f} |")
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
