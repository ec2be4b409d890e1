"""The baseline of bench/relay.py: what a provider would run instead of the relay — Debian's Postfix on the
submission port, with SASL through Dovecot reading the relay's own PostgreSQL tables.

Everything lives in a temporary directory (nothing in /etc): Postfix's main.cf and master.cf (`postfix -c DIR
start`, as root), its queue (fsynced, as Postfix always does) drained by the `discard` transport; STARTTLS required
before AUTH; `smtpd_sender_login_maps` over the same tables, so a login sends only as its own addresses (a
`proxy:pgsql:` map: one connection pool in proxymap, not one per smtpd). Dovecot (`dovecot -c`) runs only its auth
service, a socket for Postfix, with the SQL passdb of hostingmail/deploy/dovecot/dovecot-sql.conf.ext and the auth
cache on. App credentials are stored by the relay in a scheme Dovecot cannot read, so the baseline's own copy of
them, hashed as a Postfix + Dovecot installation would store them (`{BLF-CRYPT}`, doveadm's default cost), is
a table of the bench's (BASELINE_TABLE), joined to the credential's row for its state.
"""

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bench import cpu

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_SQL = ROOT / "hostingmail" / "deploy" / "dovecot" / "dovecot-sql.conf.ext"
BASELINE_TABLE = "bench_dovecot_credential"
NEEDS = {"/usr/sbin/postfix": "postfix", "/usr/lib/postfix/postfix-pgsql.so": "postfix-pgsql",
         "/usr/sbin/dovecot": "dovecot-core", "/usr/lib/dovecot/modules/auth/libdriver_pgsql.so": "dovecot-pgsql"}


def missing() -> list[str]:
    """Debian packages the baseline needs that are not installed (.ci/peers installs them), and whether we may run
    it at all (Postfix's master starts as root)."""
    absent = sorted({package for path, package in NEEDS.items() if not os.path.exists(path)})
    if os.geteuid() != 0:
        absent.append("(root: Postfix starts its master as root)")
    return absent


def pg_parts(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    found = {"host": parts.hostname or "127.0.0.1", "port": str(parts.port or 5432), "dbname": parts.path.lstrip("/"),
             "user": unquote(parts.username or "postgres")}
    if parts.password:
        found["password"] = unquote(parts.password)
    return found


def _shipped_query(name: str) -> str:
    """A query of the shipped dovecot-sql.conf.ext, its continuation lines joined."""
    text = SHIPPED_SQL.read_text()
    match = re.search(rf"^{name} = \\\n((?:.*\\\n)*.*\n)", text, flags=re.M)
    return " ".join(line.rstrip("\\").strip() for line in match.group(1).splitlines())


def password_query() -> str:
    """The shipped passdb query for mailboxes (with SMTP access, as the relay requires), then the baseline's copy of
    the app credentials under the same conditions the relay applies to a credential."""
    mailboxes = _shipped_query("password_query") + " AND m.smtp_enabled"
    credentials = (
        f'SELECT k.username AS "user", b.password AS password FROM {BASELINE_TABLE} b '
        "JOIN accounts_smtpcredential k ON k.username = b.username "
        "JOIN accounts_domain d ON d.id = k.domain_id "
        "JOIN accounts_customer c ON c.id = d.customer_id "
        "LEFT JOIN accounts_reseller r ON r.id = c.reseller_id "
        "WHERE b.username = '%Lu' AND k.is_active AND (k.expires_at IS NULL OR k.expires_at > now()) "
        "AND d.status <> 'suspended' AND c.status = 'active' AND (r.id IS NULL OR r.status = 'active')"
    )
    return f"{mailboxes} UNION ALL {credentials}"


# The logins that may use a sender address: the mailbox itself, its credentials, the credentials of its whole domain.
SENDER_LOGINS = (
    "SELECT m.local_part || '@' || d.name FROM accounts_mailbox m JOIN accounts_domain d ON d.id = m.domain_id "
    "WHERE m.local_part = '%u' AND d.name = '%d' "
    "UNION ALL SELECT k.username FROM accounts_smtpcredential k JOIN accounts_mailbox m ON m.id = k.mailbox_id "
    "JOIN accounts_domain d ON d.id = m.domain_id WHERE m.local_part = '%u' AND d.name = '%d' "
    "UNION ALL SELECT k.username FROM accounts_smtpcredential k JOIN accounts_domain d ON d.id = k.domain_id "
    "WHERE k.mailbox_id IS NULL AND d.name = '%d'"
)


def store_baseline_hashes(connection, logins: list[tuple[str, str, str]]) -> None:
    """The baseline's `{BLF-CRYPT}` copy of these app credentials' secrets, hashed by doveadm (Dovecot's default
    cost), in BASELINE_TABLE (created if needed)."""
    def blf(secret: str) -> str:
        return subprocess.run(["doveadm", "pw", "-s", "BLF-CRYPT", "-p", secret], capture_output=True, text=True,
                              check=True).stdout.strip()

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        hashes = list(pool.map(blf, [secret for _, secret, _ in logins]))
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {BASELINE_TABLE} (username text PRIMARY KEY, password text)")
        cursor.executemany(f"INSERT INTO {BASELINE_TABLE} (username, password) VALUES (%s, %s)",
                           [(username, hashed) for (username, _, _), hashed in zip(logins, hashes)])


DOVECOT_CONF = """\
instance_name = hm-bench-{port}
base_dir = {root}/dovecot-run
state_dir = {root}/dovecot-state
log_path = {root}/dovecot.log
protocols =
ssl = no
# Postfix talks to the auth socket; TLS is Postfix's, required before AUTH.
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_cache_size = 64M
auth_cache_ttl = 1 hour
auth_cache_negative_ttl = 1 hour
passdb {{
  driver = sql
  args = {root}/dovecot-sql.conf.ext
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/home allow_all_users=yes
}}
service auth {{
  unix_listener auth-postfix {{
    mode = 0666
  }}
}}
"""

DOVECOT_SQL = """\
driver = pgsql
connect = {connect}
default_pass_scheme = ARGON2ID
password_query = {query}
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/postfix-spool
data_directory = {root}/postfix-data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {root}/postfix.log
maillog_file_prefixes = {root}
myhostname = baseline.bench.test
mydomain = bench.test
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
smtpd_peername_lookup = no
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = {root}/dovecot-run/auth-postfix
smtpd_sender_login_maps = proxy:pgsql:{root}/postfix-etc/sender-logins.cf
smtpd_sender_restrictions = reject_sender_login_mismatch
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
default_transport = discard:bench
relay_transport = discard:bench
local_transport = discard:bench
"""

SENDER_LOGINS_CF = """\
hosts = {host}:{port}
user = {user}
password = {password}
dbname = {dbname}
query = {query}
"""

# Postfix's own master.cf services, none chrooted (a private instance has no copy of /etc to chroot into).
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixDovecot:
    """A private Postfix submission service with Dovecot SASL in a temporary directory; `stop()` ends both and
    removes it (BENCH_KEEP set: kept, with both logs)."""

    label = "Postfix + Dovecot"
    uses_database = True
    processes = 0  # every core: Postfix runs a process per session

    def __init__(self, *, database_url: str, cert: Path, key: Path, port: int):
        # Not under the bench's own folder (mode 0700): Dovecot's and Postfix's unprivileged processes must reach
        # their sockets through every parent.
        self.root = root = Path(tempfile.mkdtemp(prefix="hm-bench-baseline-", dir="/tmp"))
        self.port = port
        self.log = root / "postfix.log"
        db = pg_parts(database_url)
        for folder in ("dovecot-run", "dovecot-state", "home", "postfix-etc", "postfix-spool", "postfix-data"):
            (root / folder).mkdir(parents=True)
        root.chmod(0o755)
        connect = " ".join(f"{name}={value}" for name, value in db.items())
        (root / "dovecot-sql.conf.ext").write_text(DOVECOT_SQL.format(connect=connect, query=password_query()))
        (root / "dovecot.conf").write_text(DOVECOT_CONF.format(root=root, port=port))
        etc = root / "postfix-etc"
        (etc / "main.cf").write_text(MAIN_CF.format(root=root, cert=cert, key=key))
        (etc / "master.cf").write_text(MASTER_CF.format(port=port))
        (etc / "sender-logins.cf").write_text(SENDER_LOGINS_CF.format(query=SENDER_LOGINS, **{"password": "", **db}))
        postfix = pwd.getpwnam("postfix")
        (etc / "sender-logins.cf").chmod(0o640)  # it may hold the database's password: proxymap reads it as postfix
        os.chown(etc / "sender-logins.cf", 0, postfix.pw_gid)
        os.chown(root / "postfix-data", postfix.pw_uid, postfix.pw_gid)
        self.dovecot = subprocess.Popen(["dovecot", "-F", "-c", str(root / "dovecot.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait(lambda: (root / "dovecot-run" / "auth-postfix").exists(), "Dovecot's auth socket",
                       root / "dovecot.log")
            self._postfix("check")  # creates the queue's folders, owned as Postfix wants them
            self._postfix("start")
            self._wait(self._listening, f"Postfix on port {port}", self.log)
            self.master = int((root / "postfix-spool" / "pid" / "master.pid").read_text().split()[0])
        except BaseException:
            self.stop()
            raise

    def _postfix(self, command: str) -> None:
        done = subprocess.run(["postfix", "-c", str(self.root / "postfix-etc"), command], capture_output=True,
                              text=True)
        if done.returncode:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise SystemExit(f"postfix {command} failed: {done.stdout}{done.stderr}{log}")

    def _listening(self) -> bool:
        import socket

        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def _wait(self, ready, what: str, log: Path, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline or self.dovecot.poll() is not None:
                text = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise SystemExit(f"the baseline did not start: no {what}\n{text}")
            time.sleep(0.05)

    def pids(self) -> list[int]:
        """Postfix's master and every service under it (the CPU of sessions that ended is in the master's
        children's time), Dovecot and its auth processes."""
        return cpu.tree(self.master) + cpu.tree(self.dovecot.pid)

    def stop(self) -> None:
        if (self.root / "postfix-spool" / "pid" / "master.pid").exists():
            subprocess.run(["postfix", "-c", str(self.root / "postfix-etc"), "abort"], capture_output=True)
            deadline = time.monotonic() + 10
            while os.path.exists(f"/proc/{getattr(self, 'master', 0)}") and time.monotonic() < deadline:
                time.sleep(0.1)
        if self.dovecot.poll() is None:
            os.killpg(self.dovecot.pid, signal.SIGTERM)
            try:
                self.dovecot.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.dovecot.pid, signal.SIGKILL)
                self.dovecot.wait()
        if os.environ.get("BENCH_KEEP"):
            print("kept", self.root)
        else:
            shutil.rmtree(self.root, ignore_errors=True)
