"""A real HTTP receiver for webhooks on 127.0.0.1, in a thread: records every request, answers a chosen status,
and can be stopped and started again on the same port (a receiver that is down for a while)."""

import http.server
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Received:
    headers: dict
    body: bytes
    path: str


@dataclass
class Receiver:
    status: int = 200
    port: int = 0
    # Seconds the first request waits before its answer (a sender killed while it waits never gets one).
    stall_first: float = 0.0
    requests: list[Received] = field(default_factory=list)
    _server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/in?src=hm"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(Received(dict(self.headers.items()), body, self.path))
                if len(receiver.requests) == 1 and receiver.stall_first:
                    time.sleep(receiver.stall_first)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def event_ids(self) -> list[str]:
        return [r.headers["X-Hostingmail-Event-Id"] for r in self.requests]
