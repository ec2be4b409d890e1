"""Real peers on loopback for tests: a DNS server (dnsmasq) with the records a test needs, free ports."""

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field

import dns.message
import dns.query
import dns.rdatatype


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


@dataclass
class DnsServer:
    """dnsmasq answering only from the records given, on 127.0.0.1 and a free port.

    Records use dnsmasq's own options, e.g. ``txt=["example.com,v=spf1 -all"]``,
    ``mx=["example.com,mx1.example.com,10"]``, ``host=["mx1.example.com,127.0.0.1"]``,
    ``raw=["--dns-rr=nullmx.test,15,000000"]`` (a null MX, RFC 7505).
    Names with no record answer NXDOMAIN (``--local=/test/`` style zones are declared for every domain used).
    """

    txt: list[str] = field(default_factory=list)
    mx: list[str] = field(default_factory=list)
    host: list[str] = field(default_factory=list)
    cname: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    port: int = 0
    proc: subprocess.Popen | None = None

    def args(self) -> list[str]:
        args = [f"--txt-record={r}" for r in self.txt]
        args += [f"--mx-host={r}" for r in self.mx]
        args += [f"--host-record={r}" for r in self.host]
        args += [f"--cname={r}" for r in self.cname]
        return args + list(self.raw)

    def start(self) -> "DnsServer":
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

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
