"""The ceiling for bench/relay.py: a bare aiosmtpd server with STARTTLS and AUTH that discards every message.

    python bench/bare_smtpd.py PORT CERT KEY USERNAME PASSWORD
    python bench/bare_smtpd.py PORT CERT KEY --mx        (bench/mx.py: STARTTLS offered, no AUTH, as on port 25)

Same library, same TLS and AUTH exchange as the relay, and nothing else: no database, no policy, no hashing.
"""

import signal
import ssl
import sys
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Discard:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 Ok: discarded"


def main() -> None:
    warnings.filterwarnings("ignore", message="Session.login_data is deprecated")  # aiosmtpd 1.4 on every AUTH
    port, cert, key = int(sys.argv[1]), *sys.argv[2:4]
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load_cert_chain(cert, key)
    if sys.argv[4:5] == ["--mx"]:
        return serve(Controller(Discard(), hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=False,
                                ready_timeout=10))
    username, password = sys.argv[4:6]

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            username.encode(), password.encode())
        return AuthResult(success=ok)

    serve(Controller(Discard(), hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=True,
                     auth_require_tls=True, authenticator=authenticator, ready_timeout=10))


def serve(controller: Controller) -> None:
    controller.start()
    print("ready", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    controller.stop()


if __name__ == "__main__":
    main()
