"""A tenant's media host on 127.0.0.1: serves bytes by path (with a redirect at `/moved` to `/photo.png`), for the
tests and benchmarks that send media by URL; and the pieces any such local HTTP host is made of."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that answers with bytes and logs nothing."""

    def answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


class LocalHttpHost:
    """`handler` served on 127.0.0.1, on a free port, from a thread of its own until closed."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class MediaServer(LocalHttpHost):
    """Serves `files` (path -> (bytes, content type)) on 127.0.0.1 until closed."""

    def __init__(self, files: dict[str, tuple[bytes, str]]) -> None:
        served = files

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                if self.path == "/moved":
                    self.answer(302, headers={"Location": "/photo.png"})
                    return
                found = served.get(self.path)
                if found is None:
                    self.answer(404)
                    return
                body, mimetype = found
                self.answer(200, body, {"Content-Type": mimetype})

        super().__init__(Handler)
