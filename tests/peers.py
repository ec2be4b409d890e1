"""Real peers on loopback for tests: a DNS server (dnsmasq) with the records a test needs, free ports."""

import random
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field

import dns.message
import dns.query
import dns.rdatatype


def _ephemeral_ports() -> range:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            low, high = (int(n) for n in ports.read().split())
        return range(low, high + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


# Not the random module's shared state, which a test or a plugin (pytest-randomly) may seed alike in every worker:
# the workers would then try the same ports in the same order.
_choice = random.SystemRandom().choice


def free_port(kind=socket.SOCK_STREAM) -> int:
    """A port nothing is bound to, for a server a test starts in another process.

    Taken below the kernel's ephemeral range: a port from that range (what binding port 0 gives) can be handed to
    some other test's outgoing connection before the server binds it ("address already in use")."""
    ephemeral = _ephemeral_ports()
    below = range(10000, ephemeral.start) if ephemeral.start > 11000 else range(ephemeral.stop, 65536)
    for _ in range(200):
        port = _choice(below)
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port found in {below.start}-{below.stop - 1}")


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 15.0, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def split_txt(record: str) -> str:
    """``name,text`` with text longer than 255 octets cut into dnsmasq's comma-separated character-strings."""
    name, sep, text = record.partition(",")
    if not sep or len(text) <= 255 or "," in text:
        return record
    return ",".join([name] + [text[i:i + 255] for i in range(0, len(text), 255)])


@dataclass
class DnsServer:
    """dnsmasq answering only from the records given, on 127.0.0.1 and a free port.

    Records use dnsmasq's own options, e.g. ``txt=["example.com,v=spf1 -all"]``,
    ``mx=["example.com,mx1.example.com,10"]``, ``host=["mx1.example.com,127.0.0.1"]``,
    ``raw=["--dns-rr=nullmx.test,15,000000"]`` (a null MX, RFC 7505), ``silent=["hang.example"]`` (names whose
    queries dnsmasq forwards to a socket that never answers: the client times out).
    Long TXT values are split into 255-octet strings (a DKIM key of 2048 bits needs two), as a zone file would.
    Every top-level domain used by a record (and any name in ``local``) is answered authoritatively with
    ``--local=/tld/``: a name with no record answers NXDOMAIN, a name with other record types answers NODATA.
    """

    txt: list[str] = field(default_factory=list)
    mx: list[str] = field(default_factory=list)
    host: list[str] = field(default_factory=list)
    cname: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    local: list[str] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)
    port: int = 0
    black_hole: socket.socket | None = None
    proc: subprocess.Popen | None = None

    def args(self) -> list[str]:
        args = [f"--txt-record={split_txt(r)}" for r in self.txt]
        args += [f"--mx-host={r}" for r in self.mx]
        args += [f"--host-record={r}" for r in self.host]
        args += [f"--cname={r}" for r in self.cname]
        args += list(self.raw)
        if self.silent:
            self.black_hole = self.black_hole or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            if not self.black_hole.getsockname()[1]:
                self.black_hole.bind(("127.0.0.1", 0))
            args += [f"--server=/{name}/127.0.0.1#{self.black_hole.getsockname()[1]}" for name in self.silent]
        return args + [f"--local=/{zone}/" for zone in self.zones()]

    def zones(self) -> list[str]:
        names = [r.split(",", 1)[0] for r in self.txt + self.mx + self.host + self.cname]
        names += [r.split("=", 1)[1].split(",", 1)[0] for r in self.raw if "=" in r]
        zones = {name.rstrip(".").rsplit(".", 1)[-1].lower() for name in names if name}
        return sorted(zones | {z.strip(".").lower() for z in self.local})

    def start(self, tries: int = 5) -> "DnsServer":
        # dnsmasq listens on TCP as well: a UDP port free a moment ago may be taken on the TCP side. Try again.
        for attempt in range(tries):
            try:
                return self._start()
            except RuntimeError as error:
                if "Address already in use" not in str(error) or attempt == tries - 1:
                    raise

    def _start(self) -> "DnsServer":
        binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        self.port = free_port(socket.SOCK_DGRAM)
        self.proc = subprocess.Popen(
            [binary, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--no-poll",
             "--listen-address=127.0.0.1", "--bind-interfaces", f"--port={self.port}", "--user=root",
             "--pid-file=", "--log-facility=-", "--cache-size=0", *self.args()],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        query = dns.message.make_query("probe.invalid", dns.rdatatype.A)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dnsmasq exited: {self.proc.stderr.read().decode()}")
            try:
                dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.2)
                return self
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        if self.black_hole is not None:
            self.black_hole.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def database_url(settings_dict: dict) -> str:
    """DATABASE_URL for another process to open the database a test runs on (its test database)."""
    from urllib.parse import quote

    if "sqlite" in settings_dict["ENGINE"]:
        return f"sqlite:///{settings_dict['NAME']}"
    auth = quote(settings_dict.get("USER") or "")
    if settings_dict.get("PASSWORD"):
        auth += ":" + quote(settings_dict["PASSWORD"])
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{settings_dict['NAME']}"
