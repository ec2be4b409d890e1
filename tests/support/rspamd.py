"""A private rspamd (Debian's package) for tests: the packaged configuration with a local.d/override.d of our own in
a temporary directory, its normal worker (/checkv2) and controller (/learnham) on free loopback ports.

Nothing reaches the network: every DNS query goes to a closed loopback port and fails at once, and the modules
whose work is only lookups are off. rspamd's test patterns are on (its GTUBE variants: "XJS*..." is rejected,
"YJS*..." scores into "add header"); hyperscan is off and the TLD list is a few lines, so it starts in seconds.
"""

import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.peers import free_port, wait_for_port
from tests.support.processes import stop_group
from tests.support.workers import redis_url

GTUBE_TAIL = "JS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
GTUBE = "X" + GTUBE_TAIL  # action "reject"
GTUBE_ADD_HEADER = "Y" + GTUBE_TAIL  # action "add header"
PASSWORD = "rspamd-test-password"
# The suite's Redis (TEST_REDIS_URL's server), in a database of rspamd's own: the broker tests use the URL's.
_REDIS = urlsplit(redis_url())
REDIS_HOST = f"{_REDIS.hostname or '127.0.0.1'}:{_REDIS.port or 6379}"
REDIS_DB = "8"
# Modules that only ask DNS lists or outside services: off, so a scan never waits on a lookup.
_NETWORK_MODULES = ["rbl", "surbl", "hfilter", "asn", "fuzzy_check", "dcc", "replies", "url_redirector",
                    "phishing", "emails", "neural", "ratelimit", "greylist", "history_redis", "mx_check",
                    "reputation", "external_services", "clickhouse", "elastic", "metadata_exporter"]


@dataclass
class Rspamd:
    port: int
    controller_port: int
    root: Path
    proc: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def controller_url(self) -> str:
        return f"http://127.0.0.1:{self.controller_port}"

    def log(self) -> str:
        path = self.root / "log" / "rspamd.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _config(root: Path, port: int, controller_port: int) -> Path:
    conf = (Path("/etc/rspamd/rspamd.conf").read_text()
            .replace('"localhost:11333"', f'"127.0.0.1:{port}"')
            .replace('"localhost:11334"', f'"127.0.0.1:{controller_port}"')
            .replace('"localhost:11332"', f'"127.0.0.1:{free_port()}"'))
    (root / "rspamd.conf").write_text(conf)
    for name in ("local.d", "override.d", "db", "run", "log"):
        (root / name).mkdir()
    (root / "tld.dat").write_text("com\nnet\norg\nexample\ntest\n")
    (root / "local.d" / "options.inc").write_text(f"""\
enable_test_patterns = true;
disable_hyperscan = true;
url_tld = "{root}/tld.dat";
local_addrs = [];
dns {{ nameserver = ["127.0.0.1:9"]; timeout = 0.2s; retransmits = 1; }}
""")
    (root / "local.d" / "logging.inc").write_text('level = "notice";\n')
    (root / "override.d" / "worker-controller.inc").write_text(
        f'count = 1;\npassword = "{PASSWORD}";\nenable_password = "{PASSWORD}";\nsecure_ip = "192.0.2.1";\n')
    (root / "override.d" / "worker-proxy.inc").write_text("count = 0;\n")
    # Bayes learns (the controller's /learnham) into the suite's Redis, database REDIS_DB, under a key prefix of
    # this instance's own.
    (root / "local.d" / "classifier-bayes.conf").write_text(
        f'servers = "{REDIS_HOST}";\ndb = "{REDIS_DB}";\nprefix = "hm-{port}-";\nmin_learns = 1;\n')
    for module in _NETWORK_MODULES:
        (root / "override.d" / f"{module}.conf").write_text("enabled = false;\n")
    return root / "rspamd.conf"


@contextmanager
def running_rspamd():
    binary = shutil.which("rspamd")
    if binary is None:
        pytest.fail("rspamd is not installed: install the Debian package rspamd (.ci/peers does)")
    root = Path(tempfile.mkdtemp(prefix="hm-rspamd-", dir="/tmp"))
    port, controller_port = free_port(), free_port()
    conf = _config(root, port, controller_port)
    user = ["-u", "root", "-g", "root"] if os.getuid() == 0 else []
    args = [binary, "-f", "-c", str(conf), *user, "--insecure",
            "--var", f"LOCAL_CONFDIR={root}", "--var", f"DBDIR={root}/db", "--var", f"RUNDIR={root}/run",
            "--var", f"LOGDIR={root}/log"]
    # Its own session: the main process and the workers it forks are stopped together.
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    server = Rspamd(port=port, controller_port=controller_port, root=root, proc=proc)
    try:
        try:
            wait_for_port(port, proc=proc, timeout=90)
            wait_for_port(controller_port, proc=proc, timeout=30)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"rspamd did not start: {exc}\n{server.log()[-3000:]}")
        yield server
    finally:
        stop(server)
        shutil.rmtree(root, ignore_errors=True)


def stop(server: Rspamd) -> None:
    stop_group(server.proc, timeout=15)  # with the workers that outlive their main process
    _forget_learns(server)


def _forget_learns(server: Rspamd) -> None:
    import redis

    host, _, port = REDIS_HOST.partition(":")
    client = redis.Redis(host=host, port=int(port or 6379), db=int(REDIS_DB), socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"hm-{server.port}-*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass  # nothing was learned there
    finally:
        client.close()
