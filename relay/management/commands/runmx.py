"""`manage.py runmx`: the MX for the hosted domains (port 25). The same machinery as runrelay — certificate,
PROXY protocol, --processes, SIGHUP/SIGTERM/SIGUSR2, --http — with relay.smtpd.mx's handler."""

import gc
import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from relay.inbound import senderauth
from relay.management.commands.runrelay import Command as RunRelay
from relay.management.commands.runrelay import parse_listen
from relay.smtpd.mx import Mx, MxConfig
from relay.smtpd.server import run_relay
from relay.smtpd.supervisor import READY_ENV, cores


class Command(RunRelay):
    command_name = "runmx"
    help = ("Run the MX for the hosted domains (port 25: STARTTLS offered, no AUTH). SIGTERM stops, SIGHUP reloads "
            "TLS; with --processes, SIGUSR2 restarts the processes one by one.")

    def add_arguments(self, parser):
        parser.add_argument("--listen", default=settings.MX_LISTEN, help="HOST:PORT (default %(default)s)")
        parser.add_argument("--cert", default=settings.RELAY_TLS_CERT, help="certificate chain (PEM)")
        parser.add_argument("--key", default=settings.RELAY_TLS_KEY, help="private key (PEM)")
        parser.add_argument("--processes", type=int, default=None,
                            help=f"MX processes sharing the port with SO_REUSEPORT (default: one per core, {cores()} here)")
        parser.add_argument("--http", default="", help="HOST:PORT for /health and /metrics (default: none)")
        parser.add_argument("--grace", type=float, default=30.0,
                            help="seconds a stop waits for sessions inside DATA (default %(default)s)")
        parser.add_argument("--reuse-port", action="store_true", help="bind with SO_REUSEPORT (set for workers)")

    def handle(self, *args, listen, cert, key, processes, http, grace, reuse_port, **options):
        address, http_listen = parse_listen(listen), parse_listen(http)
        if address is None:
            raise CommandError("--listen is off: give HOST:PORT")
        processes = self._check(processes=processes, grace=grace, cert=cert, key=key)
        if processes > 1:
            return self._supervise(processes, {"listen": listen, "cert": cert, "key": key,
                                                  "http": http or "off", "grace": grace})
        config = MxConfig(cert=Path(cert), key=Path(key), mx=address, http=http_listen,
                          proxy_from=settings.RELAY_PROXY_PROTOCOL_FROM, reuse_port=reuse_port, grace=grace,
                          hostname=settings.MAIL_MX_HOST)

        def ready(mx):
            ports = ", ".join(f"{name} {port}" for name, port in mx.ports.items())
            self.stdout.write(f"MX listening ({ports}), pid {os.getpid()}")
            self.stdout.flush()
            if os.environ.get(READY_ENV):
                Path(os.environ[READY_ENV]).touch()

        senderauth.get_org_domain("example.com")  # the public suffix list, parsed once before the first message
        gc.collect()
        gc.freeze()
        try:
            run_relay(config, ready=ready, server_class=Mx)
        except OSError as error:
            raise CommandError(f"cannot listen: {error}") from None
