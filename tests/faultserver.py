"""A real HTTP server on 127.0.0.1 that misbehaves on purpose, down to the socket.

`http.server` always answers with a well-formed status line and closes cleanly;
the faults a feed host can commit are worse: it hangs before the headers, sends
headers forever, trickles a body a byte at a time, never ends a body, resets the
connection halfway, answers with something that is not HTTP at all. Each route
here is a `Fault`: a function that gets the raw connection after the request was
read and writes whatever it likes.

    with FaultServer() as server:
        server.route("/feed", respond(200, FEED, {"Content-Type": "application/rss+xml"}))
        server.route("/slow", trickle(FEED, every=0.05))
        server.route("/reset", reset_mid_body(FEED, after=100))
        url = server.url("/feed"); server.hits("/feed")

Every connection has its own thread; waits end as soon as the server stops, so a
test never waits for a fault that hangs on purpose. Each reply closes the
connection (`Connection: close`), so one request is one connection.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import brotli

# Largest request head read; real clients send a few hundred bytes.
MAX_REQUEST_HEAD = 64 * 1024


@dataclass(frozen=True)
class RawRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names


@dataclass
class Conn:
    """One accepted connection and the request read from it."""

    sock: socket.socket
    request: RawRequest
    stopping: threading.Event
    sent: int = 0

    def send(self, data: bytes) -> bool:
        """Write `data`; False once the client has gone (or the server stops)."""
        if self.stopping.is_set():
            return False
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        self.sent += len(data)
        return True

    def wait(self, seconds: float) -> bool:
        """Sleep `seconds`; False when the server stops meanwhile."""
        return not self.stopping.wait(seconds)

    def reset(self) -> None:
        """Close with a TCP RST instead of a FIN: the client sees "connection reset"."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


Fault = Callable[[Conn], None]


@dataclass
class FaultServer:
    host: str = "127.0.0.1"
    routes: dict[str, Fault] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[RawRequest] = []
        self._listener = socket.create_server((self.host, 0), backlog=128)
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> FaultServer:
        self._acceptor.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopping.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        for thread in list(self._threads):
            thread.join(timeout=5)

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def route(self, path: str, fault: Fault) -> str:
        """Serve `fault` at `path`; returns the path, so tables can build URLs from it."""
        with self._lock:
            self.routes[path] = fault
        return path

    @property
    def requests(self) -> list[RawRequest]:
        with self._lock:
            return list(self._requests)

    def hits(self, path: str) -> int:
        return sum(1 for request in self.requests if request.path == path)

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            request = _read_request(sock)
            if request is None:
                return
            with self._lock:
                self._requests.append(request)
                fault = self.routes.get(request.path) or self.routes.get(request.path.split("?")[0])
            conn = Conn(sock, request, self.stopping)
            if fault is None:
                respond(404, b"no such route\n", {"Content-Type": "text/plain"})(conn)
            else:
                fault(conn)
        except OSError:
            pass  # the client hung up: several faults end that way on purpose
        finally:
            with contextlib.suppress(OSError):
                sock.close()


def _read_request(sock: socket.socket) -> RawRequest | None:
    sock.settimeout(10)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk or len(head) > MAX_REQUEST_HEAD:
            return None
        head += chunk
    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    method, path, _version = [*lines[0].split(" ", 2), "", ""][:3]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawRequest(method, path, headers)


def _head(status: int, headers: dict[str, str], reason: str = "") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason or _REASONS.get(status, 'Status')}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_REASONS = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


# --- faults ------------------------------------------------------------------------------


def respond(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Fault:
    """A well-formed reply (the baseline the faults below break)."""

    def fault(conn: Conn) -> None:
        conn.send(_head(status, {"Content-Length": str(len(body)), **(headers or {})}) + body)

    return fault


def redirect(location: str, status: int = 302) -> Fault:
    return respond(status, b"", {"Location": location})


def hang_before_headers() -> Fault:
    """Read the request, then say nothing until the client gives up."""

    def fault(conn: Conn) -> None:
        conn.wait(3600)

    return fault


def endless_headers(every: float = 0.05) -> Fault:
    """A status line, then one more header line every `every` seconds, forever."""

    def fault(conn: Conn) -> None:
        if not conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"):
            return
        number = 0
        while conn.wait(every) and conn.send(f"X-Filler-{number}: x\r\n".encode()):
            number += 1

    return fault


def trickle(body: bytes, every: float = 0.05, content_type: str = "application/rss+xml") -> Fault:
    """Headers at once, then the body one byte every `every` seconds."""

    def fault(conn: Conn) -> None:
        head = {"Content-Type": content_type, "Content-Length": str(len(body))}
        if not conn.send(_head(200, head)):
            return
        for index in range(len(body)):
            if not (conn.wait(every) and conn.send(body[index : index + 1])):
                return

    return fault


def never_end(every: float = 0.05) -> Fault:
    """A chunked body that keeps coming: a feed's start, then comments forever."""

    def fault(conn: Conn) -> None:
        head = {"Content-Type": "application/rss+xml", "Transfer-Encoding": "chunked"}
        start = b'<?xml version="1.0"?><rss version="2.0"><channel><title>never</title>'
        if not conn.send(_head(200, head) + _chunk(start)):
            return
        while conn.wait(every) and conn.send(_chunk(b"<!-- more -->")):
            pass

    return fault


def stream(total: int, *, chunked: bool = False, piece: bytes = b"<!-- x -->" * 6553) -> Fault:
    """`total` bytes as fast as the client reads them, declared up front or chunked."""

    def fault(conn: Conn) -> None:
        head = {"Content-Type": "application/rss+xml"}
        head |= {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(total)}
        if not conn.send(_head(200, head)):
            return
        left = total
        while left > 0:
            part = piece[:left]
            if not conn.send(_chunk(part) if chunked else part):
                return
            left -= len(part)
        if chunked:
            conn.send(b"0\r\n\r\n")

    return fault


def encoded(body: bytes, coding: str, content_type: str = "application/rss+xml") -> Fault:
    """`body`, already compressed with `coding`, labelled as such."""
    return respond(200, body, {"Content-Type": content_type, "Content-Encoding": coding})


def reset_mid_body(body: bytes, after: int) -> Fault:
    """Declare the whole body, send `after` bytes of it, then reset the connection."""

    def fault(conn: Conn) -> None:
        head = {"Content-Type": "application/rss+xml", "Content-Length": str(len(body))}
        if conn.send(_head(200, head) + body[:after]):
            conn.wait(0.05)
        conn.reset()

    return fault


def close_mid_body(body: bytes, after: int) -> Fault:
    """Declare the whole body, send `after` bytes of it, then close cleanly (a FIN)."""

    def fault(conn: Conn) -> None:
        head = {"Content-Type": "application/rss+xml", "Content-Length": str(len(body))}
        conn.send(_head(200, head) + body[:after])

    return fault


def raw(data: bytes) -> Fault:
    """Whatever bytes, in place of an HTTP response."""

    def fault(conn: Conn) -> None:
        conn.send(data)

    return fault


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


# --- decompression bombs -----------------------------------------------------------------


@lru_cache(maxsize=8)
def bomb(coding: str, size: int) -> bytes:
    """`size` zero bytes compressed with `coding` (gzip, deflate, br): a few hundred KB
    that inflate to `size`. Cached: building one costs about a second."""
    block = bytes(1 << 20)
    if coding == "br":
        compressor = brotli.Compressor(quality=5)
        parts = [compressor.process(block) for _ in range(size >> 20)]
        return b"".join(parts) + compressor.finish()
    wbits = {"gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}[coding]
    deflater = zlib.compressobj(9, zlib.DEFLATED, wbits)
    parts = [deflater.compress(block) for _ in range(size >> 20)]
    return b"".join(parts) + deflater.flush()


def gzip_twice(data: bytes) -> bytes:
    return gzip.compress(gzip.compress(data))


def iter_chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
