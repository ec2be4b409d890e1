"""A private Dovecot with IMAP and LMTP from the shipped configuration (hostingmail/deploy/dovecot/), on this
test's PostgreSQL database, with the LMTP listener the workers deliver to (a unix socket, as in production, and a
loopback port): what tests/test_dovecot.py signs in to and the delivery tests deliver to."""

import imaplib
import os
import pwd
import re
import shlex
import shutil
import signal
import site
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection

from tests.peers import free_port, wait_for_port
from tests.support.relays import ROOT, child_env

DEPLOY = ROOT / "hostingmail" / "deploy" / "dovecot"


def binaries() -> dict[str, str]:
    found = {"dovecot": shutil.which("dovecot") or "/usr/sbin/dovecot"}
    for path, package in [(found["dovecot"], "dovecot-core"), ("/usr/lib/dovecot/imap", "dovecot-imapd"),
                          ("/usr/lib/dovecot/modules/auth/libdriver_pgsql.so", "dovecot-pgsql")]:
        if not os.path.exists(path):
            pytest.fail(f"Dovecot is not installed: install the Debian package {package} (.ci/peers does)")
    return found


def pg_connect() -> str:
    db = connection.settings_dict
    parts = {"host": db.get("HOST") or "127.0.0.1", "port": db.get("PORT") or 5432, "dbname": db["NAME"],
             "user": db.get("USER") or "postgres"}
    if db.get("PASSWORD"):
        parts["password"] = db["PASSWORD"]
    return "connect = " + " ".join(f"{k}={v}" for k, v in parts.items())


def install(conf_dir: Path, mail_dir: Path) -> None:
    """The shipped files, with only the connection and the paths pointed at this test's database and directory."""
    for name in ("dovecot-sql.conf.ext", "dovecot-dict-sql.conf.ext"):
        text = re.sub(r"^connect = .*$", pg_connect(), (DEPLOY / name).read_text(), flags=re.M)
        (conf_dir / name.replace("dovecot-", "hostingmail-")).write_text(text)
    snippet = (DEPLOY / "conf.d" / "90-hostingmail.conf").read_text()
    snippet = snippet.replace("/etc/dovecot/", f"{conf_dir}/").replace("/var/vmail/", f"{mail_dir}/")
    (conf_dir / "90-hostingmail.conf").write_text(snippet)


class Dovecot:
    def __init__(self, *, port: int, log: Path, mail_dir: Path):
        self.port, self.log, self.mail_dir = port, log, mail_dir

    def login(self, username: str, password: str) -> imaplib.IMAP4:
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        try:
            imap.login(username, password)
        except BaseException:
            imap.logout()
            raise
        return imap

    def refuses(self, username: str, password: str) -> bool:
        try:
            self.login(username, password).logout()
        except imaplib.IMAP4.error as exc:
            assert "AUTHENTICATIONFAILED" in str(exc) or "Authentication failed" in str(exc), self.log.read_text()
            return True
        return False


def use_test_sendmail(conf_dir: Path, root: Path) -> None:
    """Sieve redirects go to `manage.py sieve_sendmail` on this test's database: Dovecot starts sendmail with an
    empty environment, so a wrapper script carries it."""
    # The mail user may not reach this interpreter's installation (e.g. under /root): the system's Python of
    # the same version runs the project with this environment's packages on its path instead.
    system_python = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    python = str(system_python) if system_python.exists() else sys.executable
    env = child_env(PYTHONPATH=os.pathsep.join([str(ROOT), *site.getsitepackages()]))
    exports = "".join(f"export {name}={shlex.quote(env[name])}\n" for name in
                      ("DJANGO_SETTINGS_MODULE", "HM_TEST_DATABASE", "VAR_DIR", "PATH", "PYTHONPATH") if name in env)
    wrapper = root / "sendmail"
    wrapper.write_text(f"#!/bin/sh\n{exports}cd {shlex.quote(str(ROOT))}\n"
                       f"exec {shlex.quote(python)} manage.py sieve_sendmail \"$@\"\n")
    wrapper.chmod(0o755)
    snippet = conf_dir / "90-hostingmail.conf"
    snippet.write_text(re.sub(r"^sendmail_path = .*$", f"sendmail_path = {wrapper}", snippet.read_text(), flags=re.M))


class LmtpDovecot(Dovecot):
    def __init__(self, *, port: int, lmtp_port: int, lmtp_socket: Path, log: Path, mail_dir: Path, pid: int):
        super().__init__(port=port, log=log, mail_dir=mail_dir)
        self.lmtp_port, self.lmtp_socket, self.pid = lmtp_port, lmtp_socket, pid

    def services(self, name: str) -> list[int]:
        """Pids of this Dovecot's service processes called `name` (auth, dict, lmtp, ...): its master's children."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                comm = (entry / "comm").read_text().strip()
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
            if ppid == self.pid and comm == name:
                found.append(int(entry.name))
        return found

    def pause(self, name: str) -> list[int]:
        """Stop the `name` service processes (SIGSTOP): whatever waits on them waits, until resume(pids)."""
        pids = self.services(name)
        assert pids, f"no {name} process under Dovecot {self.pid}"
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids

    @staticmethod
    def resume(pids: list[int]) -> None:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)

    def userdb_lookups(self) -> int:
        """How many userdb lookups Dovecot's processes have started (an LMTP RCPT starts one), answered or not."""
        return self.log.read_text(errors="replace").count("Started userdb lookup") if self.log.exists() else 0


@contextmanager
def running_dovecot(*, log_userdb_lookups: bool = True):
    """A private Dovecot (IMAP and LMTP) on the panel's tables. log_userdb_lookups: a debug line in its log as each
    userdb lookup starts (LmtpDovecot.userdb_lookups), where a test aims a kill; a benchmark turns it off."""
    dovecot_bin = binaries()["dovecot"]
    for path, package in [("/usr/lib/dovecot/lmtp", "dovecot-lmtpd"),
                          ("/usr/lib/dovecot/modules/lib90_sieve_plugin.so", "dovecot-sieve")]:
        if not os.path.exists(path):
            pytest.fail(f"Dovecot's {path} is missing: install the Debian package {package} (.ci/peers does)")
    root = Path(tempfile.mkdtemp(prefix="hm-dovecot-lmtp-", dir="/tmp"))
    root.chmod(0o755)
    conf_dir, mail_dir = root / "etc", root / "vmail"
    conf_dir.mkdir()
    mail_dir.mkdir(mode=0o777)
    mail_dir.chmod(0o777)
    install(conf_dir, mail_dir)
    use_test_sendmail(conf_dir, root)
    (conf_dir / "sieve").mkdir()
    shutil.copy(DEPLOY / "sieve" / "hostingmail-junk.sieve", conf_dir / "sieve")
    (conf_dir / "sieve").chmod(0o777)
    port, lmtp_port = free_port(), free_port()
    if os.getuid() == 0:
        users, mail_user = "", pwd.getpwnam("dovecot")
    else:
        me = pwd.getpwuid(os.getuid()).pw_name
        users, mail_user = f"default_internal_user = {me}\ndefault_login_user = {me}\n", pwd.getpwuid(os.getuid())
    (conf_dir / "dovecot.conf").write_text(f"""\
instance_name = hm-lmtp-{port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
{"log_debug = event=auth_client_userdb_lookup_started" if log_userdb_lookups else ""}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
# Refusals answer at once: no delay after a failure, no growing per-address penalty (anvil) from loopback.
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{users}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
!include {conf_dir}/90-hostingmail.conf
mail_uid = {mail_user.pw_uid}
mail_gid = {mail_user.pw_gid}
first_valid_uid = {min(mail_user.pw_uid, 500)}
service dict {{
  unix_listener dict {{
    mode = 0666
    user =
    group =
  }}
}}
# After the shipped snippet: no vmail user or hostingmail group here; and a loopback port beside the socket.
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
    user =
    group =
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
""")
    proc = subprocess.Popen([dovecot_bin, "-F", "-c", str(conf_dir / "dovecot.conf")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log = root / "dovecot.log"
    try:
        try:
            wait_for_port(port, proc=proc, timeout=20)
            wait_for_port(lmtp_port, proc=proc, timeout=20)
        except (RuntimeError, TimeoutError) as exc:
            output = proc.stdout.read().decode() if proc.poll() is not None else ""
            pytest.fail(f"Dovecot did not start: {exc}\n{output}\n{log.read_text() if log.exists() else ''}")
        yield LmtpDovecot(port=port, lmtp_port=lmtp_port, lmtp_socket=root / "run" / "lmtp", log=log,
                          mail_dir=mail_dir, pid=proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(root, ignore_errors=True)
