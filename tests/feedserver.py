"""A real HTTP/1.1 server on 127.0.0.1 for tests that need a feed host.

    with FeedServer() as server:
        server.add("/feed.xml", body, etag='"v1"')
        server.redirect("/old", "/feed.xml")
        server.handler("/slow", lambda request: Reply(body=b"late", delay=2))
        url = server.url("/feed.xml")
        ... server.hits("/feed.xml"), server.requests[-1].headers["user-agent"]

Handlers run in the server's own threads, so a sleeping handler never blocks the
client under test. `feed_server_fixture` is the generator a conftest wraps as a fixture.
"""

from __future__ import annotations

import gzip as gzip_module
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Headers(Mapping[str, str]):
    """Request headers by case-insensitive name; values as sent, decoded as Latin-1
    (so each byte is one character and byte-for-byte comparisons hold)."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
            self._values[key] = f"{self._values[key]}, {value}" if key in self._values else value

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Headers({self._values!r})"


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with the query string
    headers: Headers
    at: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic)


RecordedRequest = Request


@dataclass(frozen=True)
class Reply:
    status: int = 200
    # An iterable is sent chunk by chunk (Transfer-Encoding: chunked), flushed after each.
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (cut short when the server stops)


Handler = Callable[[Request], Reply]


class FeedServer:
    """`address`: any of 127.0.0.0/8 (all loopback), so tests can have several hosts.
    `connections` counts the connections clients opened. With `tls` (a server-side
    context holding a certificate) it speaks https instead."""

    def __init__(self, address: str = "127.0.0.1", *, tls: ssl.SSLContext | None = None) -> None:
        self._routes: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self.connections = 0
        self.stopping = threading.Event()  # set on close: long-waiting handlers should give up
        self._httpd = _Server((address, 0), _RequestHandler)
        self._httpd.feed_server = self
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        scheme = "https" if tls is not None else "http"
        self.base_url = f"{scheme}://{address}:{self._httpd.server_address[1]}"

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def url(self, path: str) -> str:
        return self.base_url + path

    def add(
        self,
        path: str,
        body: bytes | str,
        *,
        content_type: str = "application/rss+xml",
        etag: str | None = None,
        last_modified: str | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
        gzip: bool = False,
    ) -> None:
        """Serve a fixed document, answering conditional requests with 304 itself."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        compressed = gzip_module.compress(data) if gzip else None
        validators = {"ETag": etag, "Last-Modified": last_modified}
        base = {k: v for k, v in validators.items() if v is not None}

        def serve(request: Request) -> Reply:
            if (etag is not None and request.headers.get("if-none-match") == etag) or (
                last_modified is not None
                and request.headers.get("if-modified-since") == last_modified
            ):
                # RFC 9110 15.4.5: a 304 repeats the Cache-Control, Expires… a 200 would send.
                return Reply(304, headers={**base, **(headers or {})})
            reply_headers = {"Content-Type": content_type, **base, **(headers or {})}
            accepted = request.headers.get("accept-encoding", "")
            if compressed is not None and "gzip" in accepted:
                return Reply(status, compressed, {**reply_headers, "Content-Encoding": "gzip"})
            return Reply(status, data, reply_headers)

        self.handler(path, serve)

    def redirect(self, path: str, to: str, status: int = 301) -> None:
        self.handler(path, lambda _request: Reply(status, headers={"Location": to}))

    def handler(self, path: str, fn: Handler) -> None:
        with self._lock:
            self._routes[path] = fn

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    def _answer(self, request: Request) -> Reply:
        with self._lock:
            self._requests.append(request)
            fn = self._routes.get(request.path) or self._routes.get(request.path.split("?")[0])
        if fn is None:
            return Reply(404, b"not found", {"Content-Type": "text/plain"})
        return fn(request)


def feed_server_fixture() -> Iterator[FeedServer]:
    """Generator for a function-scoped pytest fixture: `yield from feed_server_fixture()`."""
    with FeedServer() as server:
        yield server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    feed_server: FeedServer

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.feed_server._lock:
            self.feed_server.connections += 1
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-reply is what some tests do on purpose


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        feed_server = self.server.feed_server
        request = Request(self.command, self.path, Headers(self.headers.items()))
        reply = feed_server._answer(request)
        if reply.delay and feed_server.stopping.wait(reply.delay):
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if isinstance(reply.body, bytes):
            if reply.status != 304 and "content-length" not in {k.lower() for k in reply.headers}:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in reply.body:
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: Any) -> None:
        pass
