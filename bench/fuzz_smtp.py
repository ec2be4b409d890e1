"""Grammar fuzzing at length: the suite's random walk (tests/relay/smtpd/test_fuzz.py) with more sessions.

    .venv/bin/python bench/fuzz_smtp.py --sessions 20000 [--seed 17] [--database-url postgres://...]

It runs that test through pytest on a throw-away test database (SQLite unless --database-url), against a
`runrelay` process with production-like settings, and prints what it found.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    args = parser.parse_args()
    env = dict(os.environ, HM_FUZZ_SESSIONS=str(args.sessions), HM_FUZZ_SEED=str(args.seed))
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    # No per-test time limit: the suite's 300 s is for its 2 500 sessions, 20 000 take several minutes.
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q", "-s", "--timeout=0",
               "tests/relay/smtpd/test_fuzz.py"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, errors="replace")
    lines = result.stdout.splitlines()
    print("\n".join(line for line in lines if " sessions in " in line or line.startswith(("E ", "FAILED", "1 "))))
    if result.returncode:
        print(result.stdout[-5000:], result.stderr[-3000:], sep="\n")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
