"""A web hook for the notifications: a real HTTP server on 127.0.0.1 and a free port, as Apprise's json://
(or ntfy://) target, keeping every request it gets; it can also refuse them (HTTP 500) or hang."""

from __future__ import annotations

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from support.waiting import wait_for


class Hook:
    """`mode`: "accept" (200), "refuse" (500) or "hang" (reads the request, never answers until closed).
    `requests`: each request's path, headers and body, in arrival order."""

    def __init__(self, mode: str = "accept"):
        self.mode = mode
        self.requests: list[dict] = []
        self.arrived: queue.Queue = queue.Queue()
        self.released = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = {"path": self.path, "headers": dict(self.headers), "body": body}
                hook.requests.append(request)
                hook.arrived.put(request)
                if hook.mode == "hang":
                    hook.released.wait(600)
                    return
                self.send_response(200 if hook.mode == "accept" else 500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format, *args) -> None:  # quiet: pytest shows what the test asserts
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, scheme: str = "json", path: str = "hook", credentials: str = "") -> str:
        """The Apprise URL of this hook; `credentials` as `user:password@`."""
        return f"{scheme}://{credentials}127.0.0.1:{self.port}/{path}"

    def notices(self) -> list[dict]:
        """The JSON bodies received so far (what Apprise's json:// sends: title, message, type)."""
        return [json.loads(r["body"]) for r in self.requests]

    def wait_notices(self, count: int, timeout: float = 60.0) -> list[dict]:
        """The JSON bodies, once at least `count` have arrived."""
        wait_for(lambda: len(self.requests) >= count, timeout, f"{count} notifications at the hook")
        return self.notices()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def __enter__(self) -> Hook:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
