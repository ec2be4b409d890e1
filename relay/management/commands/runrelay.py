"""`manage.py runrelay`: arguments, certificate, processes and signals; the relay itself is relay.smtpd.server."""

import gc
import os
import ssl
import sys
from pathlib import Path

from django.conf import settings
from django.core.checks import Tags
from django.core.management.base import BaseCommand, CommandError

from accounts.networks import InvalidNetwork, parse_networks
from relay.smtpd.server import RelayConfig, run_relay
from relay.smtpd.supervisor import READY_ENV, Supervisor, SupervisorError, cores, stop_with_supervisor
from relay.smtpd.threads import hash_workers_for, write_lanes_for
from relay.smtpd.tls import ensure_certificate, server_context


def parse_listen(value: str) -> tuple[str, int] | None:
    """'HOST:PORT' or '[IPv6]:PORT' -> (host, port); '' or 'off' -> None (listener disabled)."""
    value = (value or "").strip()
    if value.lower() in ("", "off", "none"):
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise CommandError(f"“{value}” is not HOST:PORT (e.g. 127.0.0.1:2587 or [::]:587)")
    return host.strip("[]") or "0.0.0.0", int(port)


class Command(BaseCommand):
    command_name = "runrelay"  # what the supervisor starts N of (runmx subclasses this command)
    # Every system check but those of the URL configuration, the template engines and the admin (which sets the
    # engines up): they import the panel's views and tag libraries, and the relay process serves no page.
    requires_system_checks = [Tags.async_support, Tags.caches, Tags.compatibility, Tags.files, Tags.models,
                              Tags.security, Tags.signals, Tags.sites, Tags.staticfiles, Tags.translation]
    help = ("Run the SMTP submission relay (STARTTLS and implicit TLS listeners). SIGTERM stops, SIGHUP reloads "
            "TLS; with --processes, SIGUSR2 restarts the processes one by one.")

    def add_arguments(self, parser):
        parser.add_argument("--submission", default=settings.RELAY_SUBMISSION_LISTEN,
                            help="HOST:PORT of the STARTTLS listener, or 'off' (default %(default)s)")
        parser.add_argument("--smtps", default=settings.RELAY_SMTPS_LISTEN,
                            help="HOST:PORT of the implicit TLS listener, or 'off' (default %(default)s)")
        parser.add_argument("--cert", default=settings.RELAY_TLS_CERT, help="certificate chain (PEM)")
        parser.add_argument("--key", default=settings.RELAY_TLS_KEY, help="private key (PEM)")
        parser.add_argument("--processes", type=int, default=None,
                            help="relay processes sharing the ports with SO_REUSEPORT (default: one per core, "
                                 f"{cores()} here)")
        parser.add_argument("--http", default="", help="HOST:PORT for /health and /metrics (default: none)")
        parser.add_argument("--grace", type=float, default=30.0,
                            help="seconds a stop waits for sessions inside DATA (default %(default)s)")
        parser.add_argument("--reuse-port", action="store_true", help="bind with SO_REUSEPORT (set for workers)")

    def handle(self, *args, submission, smtps, cert, key, processes, http, grace, reuse_port, **options):
        worker_options = {"submission": submission or "off", "smtps": smtps or "off", "cert": cert, "key": key,
                          "http": http or "off", "grace": grace}
        submission, smtps, http_listen = parse_listen(submission), parse_listen(smtps), parse_listen(http)
        if submission is None and smtps is None:
            raise CommandError("both listeners are off: give --submission or --smtps")
        processes = self._check(processes=processes, grace=grace, cert=cert, key=key)
        if processes > 1:
            # Each relay process hashes on its share of the cores: all of them in all (the supervisor's environment
            # goes to every process it starts).
            os.environ.setdefault("RELAY_HASH_WORKERS", str(hash_workers_for(processes)))
            # And writes on its share of the lanes: as full batches as one process would commit.
            os.environ.setdefault("RELAY_WRITE_LANES", str(write_lanes_for(processes)))
            return self._supervise(processes, worker_options)
        config = RelayConfig(cert=Path(cert), key=Path(key), submission=submission, smtps=smtps, http=http_listen,
                             proxy_from=settings.RELAY_PROXY_PROTOCOL_FROM, reuse_port=reuse_port, grace=grace,
                             start_hashing=True)

        def ready(relay):
            ports = ", ".join(f"{name} {port}" for name, port in relay.ports.items())
            self.stdout.write(f"relay listening ({ports}), pid {os.getpid()}")
            self.stdout.flush()
            if os.environ.get(READY_ENV):  # started by a supervisor, which waits for this
                Path(os.environ[READY_ENV]).touch()

        # Everything loaded so far lives as long as the process: out of the collector's sight, a full collection
        # walks only what serving creates (a 40 ms stop of the event loop became a few ms).
        gc.collect()
        gc.freeze()
        if os.environ.get(READY_ENV):
            stop_with_supervisor()
        try:
            run_relay(config, ready=ready)
        except OSError as error:
            raise CommandError(f"cannot listen: {error}") from None

    def _check(self, *, processes: int | None, grace: float, cert: str, key: str) -> int:
        """What every listening command checks before it starts (runmx too); the number of processes to run:
        one per core unless told, since a process serves all its sessions on one event loop, i.e. one core."""
        if processes is None:
            processes = cores()
        if processes < 1:
            raise CommandError("--processes must be at least 1")
        if grace < 0:
            raise CommandError("--grace cannot be negative")
        self._certificate(Path(cert), Path(key))
        try:
            server_context(cert, key)
        except (OSError, ssl.SSLError) as error:
            raise CommandError(f"cannot load the TLS certificate {cert} with key {key}: {error}") from None
        try:
            parse_networks(settings.RELAY_PROXY_PROTOCOL_FROM)
        except InvalidNetwork as error:
            raise CommandError(f"RELAY_PROXY_PROTOCOL_FROM: {error.message}") from None
        if settings.CELERY_BROKER_URL == "filesystem://":
            # The embedded broker is a set of folders; the relay publishes into them from its first message.
            options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
            for name in ("data_folder_in", "data_folder_out", "processed_folder"):
                if options.get(name):
                    Path(options[name]).mkdir(parents=True, exist_ok=True)
        return processes

    def _certificate(self, cert: Path, key: Path) -> None:
        if cert.exists() and key.exists():
            return
        if settings.PRODUCTION:
            raise CommandError(f"TLS certificate {cert} or key {key} is missing (RELAY_TLS_CERT/RELAY_TLS_KEY)")
        try:
            made = ensure_certificate(cert, key, hostname=settings.RELAY_HOSTNAME)
        except (OSError, ValueError) as error:
            raise CommandError(f"cannot make a development certificate: {error}") from None
        if made:
            self.stdout.write(self.style.WARNING(
                f"No TLS certificate found: made a self-signed development certificate for "
                f"{settings.RELAY_HOSTNAME} at {cert} (key {key}). Clients will warn; set RELAY_TLS_CERT and "
                f"RELAY_TLS_KEY to a real one in production."))

    def _supervise(self, processes: int, worker_options: dict) -> None:
        command = [sys.executable, str(settings.BASE_DIR / "manage.py"), self.command_name, "--reuse-port", "--processes=1",
                   *(f"--{name}={value}" for name, value in worker_options.items())]

        def write(text):
            self.stdout.write(text)
            self.stdout.flush()

        try:
            Supervisor(command, processes, write=write).run()
        except SupervisorError as error:
            raise CommandError(str(error)) from None
