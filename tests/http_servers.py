"""Real HTTP servers in threads, for tests of the guarded client (apps/core/fetch) and URL imports.

Each server listens on a loopback address and port 0, answers from a table of routes,
and records every request it receives, so a test can assert that a refused URL was
never connected to.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class LocalServer:
    host: str
    port: int
    scheme: str = "http"
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)  # TLS SNI seen, in order

    def url(self, path: str, *, host: str | None = None) -> str:
        return f"{self.scheme}://{host or self.host}:{self.port}{path}"


def _handler_for(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            server.requests.append(Seen(path=self.path, headers=dict(self.headers.items())))
            route = server.routes.get(self.path.split("?")[0])
            if route is None:
                self.send_error(404)
                return
            # The client hanging up (a cap or a timeout) is what those tests check, not a server error.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                route(self)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def local_server(host: str = "127.0.0.1", *, tls: ssl.SSLContext | None = None) -> Iterator[LocalServer]:
    """A threaded HTTP(S) server on `host`; with `tls`, it records the SNI each handshake asked for."""
    state = LocalServer(host=host, port=0, scheme="https" if tls else "http")
    httpd = ThreadingHTTPServer((host, 0), _handler_for(state))
    httpd.daemon_threads = True
    if tls is not None:
        tls.sni_callback = lambda _sock, name, _ctx: state.server_names.append(name)
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


# --- routes ------------------------------------------------------------------------------------


def body(
    content: bytes, *, content_type: str = "application/octet-stream", length: bool = True,
    disposition: str | None = None,
) -> Route:  # fmt: skip
    """Answer 200 with `content`; `length=False` sends it chunked, without a Content-Length."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        if disposition:
            handler.send_header("Content-Disposition", disposition)
        if length:
            handler.send_header("Content-Length", str(len(content)))
            handler.end_headers()
            handler.wfile.write(content)
            return
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for start in range(0, len(content), 16 * 1024):
            piece = content[start : start + 16 * 1024]
            handler.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        handler.wfile.write(b"0\r\n\r\n")

    return route


def lying_length(declared: int) -> Route:
    """Claim `declared` bytes in Content-Length (the client must refuse before reading any)."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(declared))
        handler.end_headers()
        handler.wfile.write(b"x" * 1024)

    return route


def redirect(location: str, status: int = 302) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


def trickle(*, pause: float, pieces: int, piece: bytes = b"x") -> Route:
    """Send one small piece every `pause` seconds (chunked): never silent long, never finished soon."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for _ in range(pieces):
            handler.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            handler.wfile.flush()
            time.sleep(pause)
        handler.wfile.write(b"0\r\n\r\n")

    return route


def silent(seconds: float) -> Route:
    """Accept the request and say nothing for `seconds` (a hung server)."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)

    return route


def slowly(content: bytes, *, pieces: int, pause: float) -> Route:
    """Answer `content` with its Content-Length, in `pieces` parts `pause` seconds apart (progress to watch)."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        size = -(-len(content) // pieces)
        for start in range(0, len(content), size):
            handler.wfile.write(content[start : start + size])
            handler.wfile.flush()
            time.sleep(pause)

    return route
