"""A tenant's media host on 127.0.0.1: serves bytes by path (with a redirect at `/moved` to `/photo.png`), for the
tests and benchmarks that send media by URL."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class MediaServer:
    """Serves `files` (path -> (bytes, content type)) on 127.0.0.1 until closed."""

    def __init__(self, files: dict[str, tuple[bytes, str]]) -> None:
        served = files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/moved":
                    self.send_response(302)
                    self.send_header("Location", "/photo.png")
                    self.end_headers()
                    return
                found = served.get(self.path)
                if found is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                body, mimetype = found
                self.send_response(200)
                self.send_header("Content-Type", mimetype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
