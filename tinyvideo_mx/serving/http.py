"""``tinyvideo-mx serve``: the request contract of contract.py over HTTP, on waitress.

    GET  /              -> a page to try the model in a browser (page.py)
    GET  /ping          -> {"status": "Healthy"}
    POST /predictions   -> the contract of contract.py (JSON request; npz / json / gif / mp4 response)

Why waitress: HTTP parsing (chunked bodies, bad Content-Length, oversized headers and bodies), a fixed
pool of request threads, a connection limit and idle timeouts come from a well-kept, pure-Python
server with no dependencies, instead of code written here. What is ours:

* every response is JSON on error, waitress's own errors included (``JsonErrorTask``): 400 malformed,
  404 unknown path, 405 other methods (with ``Allow``), 408 a request not received in full within
  ``receive_timeout`` seconds or stalling for ``timeout``, 411 a POST with no length, 413 a body over
  16 MiB / too many clips / an image over the pixel limit, 503 too many requests waiting, a generation
  not done within ``generate_timeout`` seconds, or every connection taken;
* stalled and slow clients cost a file descriptor, not a thread: waitress receives on one I/O loop and
  hands a request to the fixed pool of ``threads`` only once it is complete, so the connection limit is
  far above the thread count (1000 by default). When it is reached, a new connection gets an immediate
  503 and is closed (waitress alone would stop accepting and leave it waiting in silence);
* inference runs on one thread that batches concurrent requests (batching.py), so memory does not
  grow with connections; images are measured from their headers and decoded on the fixed request
  threads.
It binds 127.0.0.1 unless told otherwise.
"""
import json
import logging
import resource
import threading
import time

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher

from .contract import SamplingService
from .page import page_html

log = logging.getLogger(__name__)
MAX_BODY = 16 << 20            # bytes of one request body
MAX_HEADER = 64 << 10          # bytes of one request's headers
CONNECTIONS = 1000             # open connections at most (each costs a file descriptor, not a thread)
RECEIVE_TIMEOUT = 30           # s to receive a whole request (headers and body), however it trickles in
GENERATE_TIMEOUT = 120         # s for the inference thread to answer one request
JSON = "application/json"
ROUTES = {"/": ("GET", "POST"), "/predictions": ("POST",), "/ping": ("GET",)}


def json_body(status, message):
    return json.dumps({"error": message}).encode() if status >= 400 else json.dumps(message).encode()


class JsonErrorTask(ErrorTask):
    """waitress's own error responses (malformed requests), in the JSON contract."""

    def execute(self):
        error = self.request.error
        detail = " ".join(str(error.body).split())
        body = json_body(error.code, f"{error.reason.lower()}: {detail}" if detail else error.reason.lower())
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", JSON))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class JsonChannel(HTTPChannel):
    """Remembers when the request being received began, for the receive deadline."""
    error_task_class = JsonErrorTask
    receive_started = None

    def received(self, data):
        if self.request is None and data:
            self.receive_started = time.time()
        done = super().received(data)
        if self.request is None:          # nothing partial left: no request being received
            self.receive_started = None
        return done


def _canned_response(status, reason, message):
    body = json_body(status, message)
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {JSON}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode()
    return head + body


class _Waitress(TcpWSGIServer):
    channel_class = JsonChannel
    receive_timeout = 30.0        # set by Server

    def maintenance(self, now):
        """waitress closes idle connections silently; one inside a request that stalls for
        ``channel_timeout`` or is not received in full within ``receive_timeout`` gets a 408 first."""
        cutoff = now - self.adj.channel_timeout
        for channel in list(self.active_channels.values()):
            if channel.requests or channel.will_close:
                continue                   # a complete request is being answered
            started = channel.receive_started
            late = started is not None and now - started > self.receive_timeout
            if late or channel.last_activity < cutoff:
                if getattr(channel, "request", None) is not None:
                    seconds = self.receive_timeout if late else self.adj.channel_timeout
                    channel.write_soon(_canned_response(408, "Request Timeout",
                                                        f"request not received in full within {seconds:g} s"))
                channel.will_close = True

    def readable(self):
        """Always accept (and run maintenance on schedule): ``handle_accept`` answers the connections
        over the limit itself."""
        now = time.time()
        if now >= self.next_channel_cleanup:
            self.next_channel_cleanup = now + self.adj.cleanup_interval
            self.maintenance(now)
        return self.accepting

    def handle_accept(self):
        if len(self._map) < self.adj.connection_limit:
            return super().handle_accept()
        try:
            accepted = self.accept()
        except OSError:
            return
        if accepted is None:
            return
        connection = accepted[0]
        try:    # a short answer fits the new socket's send buffer: never blocks the I/O loop
            connection.setblocking(False)
            connection.send(_canned_response(503, "Service Unavailable",
                                             f"server busy: all {self.adj.connection_limit} connections are "
                                             f"in use; try again shortly"))
        except OSError:
            pass
        finally:
            connection.close()


class ServingApp:
    """The WSGI application: routes, methods and lengths; the contract itself is SamplingService's."""

    def __init__(self, service, page=None):
        self.service, self.page = service, page

    def __call__(self, environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO") or "/"
        try:
            status, headers, body = self.route(method, path, environ)
        except Exception as e:      # a bug: logged with its traceback, answered in the contract
            log.exception("%s %s failed", method, path)
            status, headers, body = self.error(500, f"internal error: {type(e).__name__}")
        reasons = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                   411: "Length Required", 413: "Payload Too Large", 500: "Internal Server Error",
                   503: "Service Unavailable"}
        start_response(f"{status} {reasons.get(status, 'Error')}", [("Content-Length", str(len(body)))] + headers)
        return [body] if method != "HEAD" else []

    def route(self, method, path, environ):
        allowed = ROUTES.get(path)
        if allowed is None:
            return self.error(404, f"no such endpoint: {method} {path} (GET / for the page, POST /predictions, "
                                   f"GET /ping)")
        if method not in allowed:
            status, headers, body = self.error(405, f"{method} is not allowed on {path}; use {' or '.join(allowed)}")
            return status, headers + [("Allow", ", ".join(allowed))], body
        if path == "/ping":
            return 200, [("Content-Type", JSON)], json_body(200, {"status": "Healthy"})
        if method == "GET":
            return 200, [("Content-Type", "text/html; charset=utf-8")], self.page or b""
        length = environ.get("CONTENT_LENGTH")
        if not length:
            return self.error(411, "POST needs a body with Content-Length (or chunked transfer encoding)")
        body = environ["wsgi.input"].read(int(length))
        status, content_type, payload = self.service.respond(body)
        return status, [("Content-Type", content_type)], payload

    @staticmethod
    def error(status, message):
        return status, [("Content-Type", JSON)], json_body(status, message)


class Server:
    """A ready server: ``serve_forever()`` blocks; ``shutdown()`` + ``server_close()`` stop it from
    another thread. ``port=0`` picks a free port (``server_address``)."""

    def __init__(self, service, host="127.0.0.1", port=8080, threads=4, connections=CONNECTIONS, timeout=30,
                 receive_timeout=RECEIVE_TIMEOUT):
        self.service = service
        connections = min(connections, descriptor_budget())
        adjustments = Adjustments(host=host, port=port, threads=threads, connection_limit=connections,
                                  channel_timeout=timeout, cleanup_interval=1,
                                  max_request_body_size=MAX_BODY, max_request_header_size=MAX_HEADER,
                                  expose_tracebacks=False, ident="tinyvideo-mx")
        self._map = {}
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.set_thread_count(adjustments.threads)
        self._waitress = _Waitress(ServingApp(service, page_html(service)), map=self._map, dispatcher=dispatcher,
                                   adj=adjustments, sockinfo=adjustments.listen[0])
        self._waitress.receive_timeout = receive_timeout
        self._serving = None              # the thread in serve_forever, while it runs
        self.server_address = self._waitress.socket.getsockname()[:2]

    def serve_forever(self):
        self._serving = threading.current_thread()
        try:
            self._waitress.run()
        finally:
            self._serving = None

    def shutdown(self):
        """Close the listening socket and every connection - run() returns once none is left - then stop
        the worker threads. From another thread, the closing happens in the loop's own thread (waitress's
        trigger): a socket closed under the loop's select() made it fail with EBADF in the serving thread."""
        serving = self._serving
        if serving is not None and serving is not threading.current_thread() and serving.is_alive():
            closed = threading.Event()

            def close_all():
                self._close_channels()
                closed.set()
            self._waitress.trigger.pull_trigger(close_all)
            if not closed.wait(10):
                self._close_channels()     # the loop did not answer: close from here, as before
        else:
            self._close_channels()
        self._waitress.task_dispatcher.shutdown()

    def _close_channels(self):
        for channel in list(self._map.values()):
            channel.close()

    def server_close(self):
        self.service.close()


def descriptor_budget():
    """Connections this process can hold: its open-file limit (raised to the hard limit where allowed)
    less room for the model's files, logs and the listening socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return max(8, (soft if soft != resource.RLIM_INFINITY else 1 << 20) - 64)


def make_server(prefix, host="127.0.0.1", port=8080, max_n=16, ctx=None, threads=4, connections=CONNECTIONS,
                timeout=30, receive_timeout=RECEIVE_TIMEOUT, generate_timeout=GENERATE_TIMEOUT):
    """A ready Server for the exported generator at ``prefix``."""
    service = SamplingService(prefix, max_n=max_n, ctx=ctx, generate_timeout=generate_timeout)
    return Server(service, host, port, threads, connections, timeout, receive_timeout)
