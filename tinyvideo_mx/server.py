"""``tinyvideo-mx serve``: a small, dependency-free HTTP server around an exported generator.

    GET  /ping          -> {"status": "Healthy"}
    POST /predictions   -> the contract of serving.py (JSON request; npz / json / gif / mp4 response)

Threaded (one thread per connection), with inference serialised by the service's lock; request bodies
over 16 MiB are refused. It binds 127.0.0.1 unless told otherwise.
"""
import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .serving import SamplingService

log = logging.getLogger(__name__)
MAX_BODY = 16 << 20


class _Handler(BaseHTTPRequestHandler):
    service = None
    protocol_version = "HTTP/1.1"

    def _send(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status, message):
        self._send(status, "application/json", json.dumps({"error": message}).encode())

    def do_GET(self):
        if self.path == "/ping":
            self._send(200, "application/json", b'{"status": "Healthy"}')
        else:
            self._error(404, f"no such endpoint: GET {self.path} (try GET /ping or POST /predictions)")

    def do_POST(self):
        if self.path not in ("/predictions", "/"):
            self._error(404, f"no such endpoint: POST {self.path} (use POST /predictions)")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._error(413, f"request body over {MAX_BODY} bytes")
            self.close_connection = True
            return
        self._send(*self.service.respond(self.rfile.read(length)))

    def log_message(self, fmt, *args):
        log.debug("%s " + fmt, self.address_string(), *args)


def make_server(prefix, host="127.0.0.1", port=8080, max_n=16, ctx=None):
    """A ready ThreadingHTTPServer (call ``serve_forever``; ``port=0`` picks a free port)."""
    handler = type("Handler", (_Handler,), {"service": SamplingService(prefix, max_n=max_n, ctx=ctx)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
