"""`make run`: the panel, the relay, the MX and a Celery worker (with beat) side by side, stopped together."""

import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def dev_processes(*, panel: str) -> dict[str, list[str]]:
    python = sys.executable
    return {
        "panel": [python, "manage.py", "runserver", panel, "--noreload"],
        "relay": [python, "manage.py", "runrelay"],
        "mx": [python, "manage.py", "runmx"],
        "worker": [python, "-m", "celery", "-A", "hostingmail", "worker", "--beat", "--loglevel", "INFO",
                   "--concurrency", "2", "--schedule", str(settings.VAR_DIR / "celerybeat-schedule")],
    }


class Command(BaseCommand):
    help = "Run the panel, the relay, the MX and a delivery worker for local use (not for production)."

    def add_arguments(self, parser):
        parser.add_argument("--panel", default="127.0.0.1:8000", help="address:port for the panel")

    def handle(self, *args, panel, **options):
        if settings.PRODUCTION:
            raise CommandError("rundev is for local use; in production run gunicorn, runrelay, runmx and celery (see README)")
        for folder in ("out", "processed", "control"):
            (settings.VAR_DIR / "broker" / folder).mkdir(parents=True, exist_ok=True)
        children = {name: subprocess.Popen(cmd) for name, cmd in dev_processes(panel=panel).items()}
        self.stdout.write(self.style.SUCCESS(
            f"panel http://{panel}/ · relay {settings.RELAY_SUBMISSION_LISTEN} (STARTTLS) and "
            f"{settings.RELAY_SMTPS_LISTEN} (TLS) · MX {settings.MX_LISTEN} · worker with beat — Ctrl-C stops them all"
        ))
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        while not stopping:
            for name, proc in children.items():
                if proc.poll() is not None:
                    self.stderr.write(f"{name} exited with {proc.returncode}; stopping the others")
                    exit_code = proc.returncode or 1
                    stopping = True
            time.sleep(0.5)
        for proc in children.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in children.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if exit_code:
            raise CommandError("a process of the development stack failed")
