"""The HTTP client's promises, pinned against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import os
import socket
import ssl
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import brotli
import pytest
from daemonproc import free_port
from feedserver import FeedServer, Reply, Request, feed_server_fixture

from aggregator.fetch import DRAIN_LIMIT, Fetcher, FetchError, FetchResponse, HostHeld
from aggregator.model import Validators

USER_AGENT = "aggregator/9.9 (+http://feeds.example)"
FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'
LAST_MODIFIED = "Mon, 01 Jan 2024 10:00:00 GMT"
NONE = Validators()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    yield from feed_server_fixture()


def fetch(url: str, validators: Validators = NONE, **options: Any) -> FetchResponse | FetchError:
    """One fetch with a fresh Fetcher; a FetchError is returned, not raised."""
    return fetch_all([url], validators, **options)[0]


def fetch_all(
    urls: list[str], validators: Validators = NONE, **options: Any
) -> list[FetchResponse | FetchError]:
    """Every URL fetched at once through one Fetcher."""
    settings: dict[str, Any] = {"user_agent": USER_AGENT, "timeout": 5.0, "max_bytes": 1_000_000}

    async def one(fetcher: Fetcher, url: str) -> FetchResponse | FetchError:
        try:
            return await fetcher.fetch("src", url, validators)
        except FetchError as error:
            return error

    async def run() -> list[FetchResponse | FetchError]:
        async with Fetcher(**(settings | options)) as fetcher:
            return list(await asyncio.gather(*(one(fetcher, url) for url in urls)))

    return asyncio.run(run())


def ok(result: FetchResponse | FetchError) -> FetchResponse:
    assert isinstance(result, FetchResponse), str(result)
    return result


def failed(result: FetchResponse | FetchError) -> FetchError:
    assert isinstance(result, FetchError), f"expected a FetchError, got {result}"
    return result


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@dataclass(frozen=True)
class Case:
    """A server set-up, a fetch of /feed, and the attributes the result must have."""

    name: str
    serve: Callable[[FeedServer], object]
    expect: Callable[[FeedServer], dict[str, object]]
    validators: Validators = NONE
    options: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case(
        "200_returns_body_validators_and_headers",
        lambda s: s.add(
            "/feed",
            FEED,
            etag='W/"v1"',
            last_modified=LAST_MODIFIED,
            headers={"Cache-Control": "max-age=600", "Expires": "Mon, 01 Jan 2024 11:00:00 GMT"},
        ),
        lambda s: {
            "status": 200,
            "not_modified": False,
            "body": FEED,
            "validators": Validators('W/"v1"', LAST_MODIFIED),
            "content_type": "application/rss+xml",
            "final_url": s.url("/feed"),
            "permanent_url": None,
            "headers['cache-control']": "max-age=600",
            "headers['expires']": "Mon, 01 Jan 2024 11:00:00 GMT",
        },
    ),
    Case(
        "200_without_validators_clears_them",
        lambda s: s.add("/feed", FEED),
        lambda s: {"validators": NONE, "body": FEED},
        validators=Validators('"old"', LAST_MODIFIED),
    ),
    Case(
        "non_ascii_etag_is_kept_byte_for_byte",
        lambda s: s.add("/feed", FEED, etag='W/"caf\xe9"'),
        lambda s: {"validators": Validators('W/"caf\xe9"', None)},
    ),
    Case(
        "304_without_validators_keeps_the_sent_ones",
        lambda s: s.handler("/feed", lambda r: Reply(304)),
        lambda s: {
            "status": 304,
            "not_modified": True,
            "body": b"",
            "validators": Validators('"v1"', LAST_MODIFIED),
        },
        validators=Validators('"v1"', LAST_MODIFIED),
    ),
    Case(
        "304_with_new_etag_returns_it",
        lambda s: s.handler("/feed", lambda r: Reply(304, headers={"ETag": '"v2"'})),
        lambda s: {"not_modified": True, "validators": Validators('"v2"', LAST_MODIFIED)},
        validators=Validators('"v1"', LAST_MODIFIED),
    ),
    Case(
        "gzip_body_is_decoded",
        lambda s: s.add("/feed", FEED, gzip=True),
        lambda s: {"body": FEED},
    ),
    Case(
        "brotli_body_is_decoded",
        lambda s: s.add("/feed", brotli.compress(FEED), headers={"Content-Encoding": "br"}),
        lambda s: {"body": FEED},
    ),
    Case(
        "zlib_deflate_body_is_decoded",
        lambda s: s.add("/feed", zlib.compress(FEED), headers={"Content-Encoding": "deflate"}),
        lambda s: {"body": FEED},
    ),
    Case(
        "raw_deflate_body_is_decoded",
        lambda s: s.add("/feed", raw_deflate(FEED), headers={"Content-Encoding": "deflate"}),
        lambda s: {"body": FEED},
    ),
    Case(
        "body_at_the_cap_is_accepted",
        lambda s: s.add("/feed", b"x" * 1000),
        lambda s: {"body": b"x" * 1000},
        options={"max_bytes": 1000},
    ),
    Case(
        "body_over_the_cap_is_refused",
        lambda s: s.add("/feed", b"x" * 1001),
        lambda s: {"error": "body larger than 1000 bytes"},
        options={"max_bytes": 1000},
    ),
    Case(
        "chunked_body_over_the_cap_is_refused",
        lambda s: s.handler("/feed", lambda r: Reply(body=iter([b"x" * 600] * 5))),
        lambda s: {"error": "body larger than 1000 bytes"},
        options={"max_bytes": 1000},
    ),
    Case(
        "gzip_body_over_the_cap_after_decompression_is_refused",
        lambda s: s.add("/feed", b"x" * 5000, gzip=True),
        lambda s: {"error": "body larger than 1000 bytes"},
        options={"max_bytes": 1000},
    ),
    Case(
        "corrupt_gzip_is_an_error",
        lambda s: s.add("/feed", b"not gzip at all", headers={"Content-Encoding": "gzip"}),
        lambda s: {"error": "cannot decode gzip body"},
    ),
    Case(
        "unknown_content_encoding_is_an_error",
        lambda s: s.add("/feed", FEED, headers={"Content-Encoding": "compress"}),
        lambda s: {"error": "unsupported Content-Encoding 'compress'"},
    ),
    Case(
        "301_sets_permanent_url",
        lambda s: (s.redirect("/feed", "/new"), s.add("/new", FEED)),
        lambda s: {"permanent_url": s.url("/new"), "final_url": s.url("/new"), "body": FEED},
    ),
    Case(
        "308_sets_permanent_url",
        lambda s: (s.redirect("/feed", "/new", 308), s.add("/new", FEED)),
        lambda s: {"permanent_url": s.url("/new"), "final_url": s.url("/new")},
    ),
    Case(
        "302_keeps_the_url",
        lambda s: (s.redirect("/feed", "/tmp", 302), s.add("/tmp", FEED)),
        lambda s: {"permanent_url": None, "final_url": s.url("/tmp"), "body": FEED},
    ),
    Case(
        "307_keeps_the_url",
        lambda s: (s.redirect("/feed", "/tmp", 307), s.add("/tmp", FEED)),
        lambda s: {"permanent_url": None, "final_url": s.url("/tmp")},
    ),
    Case(
        "301_then_302_makes_the_301_target_permanent",
        lambda s: (s.redirect("/feed", "/a"), s.redirect("/a", "/b", 302), s.add("/b", FEED)),
        lambda s: {"permanent_url": s.url("/a"), "final_url": s.url("/b")},
    ),
    Case(
        "301_then_308_makes_the_last_target_permanent",
        lambda s: (s.redirect("/feed", "/a"), s.redirect("/a", "/b", 308), s.add("/b", FEED)),
        lambda s: {"permanent_url": s.url("/b"), "final_url": s.url("/b")},
    ),
    Case(
        "302_then_301_makes_nothing_permanent",
        lambda s: (s.redirect("/feed", "/a", 302), s.redirect("/a", "/b"), s.add("/b", FEED)),
        lambda s: {"permanent_url": None, "final_url": s.url("/b")},
    ),
    Case(
        "relative_location_is_resolved",
        lambda s: (s.redirect("/feed", "dir/../moved?x=1"), s.add("/moved?x=1", FEED)),
        lambda s: {"final_url": s.url("/moved?x=1"), "body": FEED},
    ),
    Case(
        "redirect_chain_at_the_cap_is_followed",
        lambda s: (s.redirect("/feed", "/a"), s.redirect("/a", "/b"), s.add("/b", FEED)),
        lambda s: {"body": FEED},
        options={"max_redirects": 2},
    ),
    Case(
        "redirect_chain_over_the_cap_is_an_error",
        lambda s: (s.redirect("/feed", "/a"), s.redirect("/a", "/b"), s.redirect("/b", "/c")),
        lambda s: {"error": "too many redirects", "status": None},
        options={"max_redirects": 2},
    ),
    Case(
        "redirect_loop_is_an_error",
        lambda s: (s.redirect("/feed", "/a", 302), s.redirect("/a", "/feed", 302)),
        lambda s: {"error": "too many redirects"},
    ),
    Case(
        "redirect_to_file_url_is_refused",
        lambda s: s.redirect("/feed", "file:///etc/passwd"),
        lambda s: {"error": "redirect to a non-HTTP URL refused: file:///etc/passwd"},
    ),
    Case(
        "redirect_without_location_is_an_error",
        lambda s: s.handler("/feed", lambda r: Reply(302)),
        lambda s: {"error": "HTTP 302 redirect without a Location header"},
    ),
    Case(
        "404_is_an_error_with_its_status",
        lambda s: s.add("/other", FEED),
        lambda s: {"error": "HTTP 404 Not Found", "status": 404, "retry_after": None},
    ),
    Case(
        "410_is_an_error_with_its_status",
        lambda s: s.add("/feed", b"gone", status=410),
        lambda s: {"error": "HTTP 410 Gone", "status": 410},
    ),
    Case(
        "500_is_an_error_with_its_status",
        lambda s: s.add("/feed", b"oops", status=500),
        lambda s: {"error": "HTTP 500", "status": 500},
    ),
    Case(
        "429_keeps_retry_after",
        lambda s: s.add("/feed", b"slow down", status=429, headers={"Retry-After": "120"}),
        lambda s: {"error": "HTTP 429", "status": 429, "retry_after": "120"},
    ),
    Case(
        "503_keeps_retry_after_date",
        lambda s: s.add("/feed", b"", status=503, headers={"Retry-After": LAST_MODIFIED}),
        lambda s: {"error": "HTTP 503", "status": 503, "retry_after": LAST_MODIFIED},
    ),
    Case(
        "error_after_redirect_names_where_it_happened",
        lambda s: s.redirect("/feed", "/missing", 302),
        lambda s: {"error": f"HTTP 404 Not Found at {s.url('/missing')}", "status": 404},
    ),
]


def attribute(result: FetchResponse | FetchError, name: str) -> object:
    if name == "error":
        return str(result)
    if name.startswith("headers["):
        return ok(result).headers.get(name[len("headers['") : -len("']")])
    return getattr(result, name)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_http_behaviour(feed_server: FeedServer, case: Case) -> None:
    case.serve(feed_server)
    result = fetch(feed_server.url("/feed"), case.validators, **case.options)
    expected = case.expect(feed_server)
    if "error" in expected:
        error = failed(result)
        assert str(expected["error"]) in str(error)
        assert str(error).startswith(f"src: {feed_server.url('/feed')}: ")
        for name, value in expected.items():
            if name != "error":
                assert getattr(error, name) == value, name
    else:
        ok(result)
        for name, value in expected.items():
            assert attribute(result, name) == value, name


@pytest.mark.parametrize(
    "validators",
    [
        Validators('"abc"', None),
        Validators('W/"abc-123"', None),
        Validators('"a, b ;c"', None),
        Validators('W/"caf\xe9"', None),
        Validators(None, LAST_MODIFIED),
        Validators(None, "2024-01-01 10:00"),
        Validators('"v9"', LAST_MODIFIED),
    ],
    ids=["quoted", "weak", "punctuation", "latin1", "http_date", "odd_date", "both"],
)
def test_conditional_request_sends_stored_validators_byte_for_byte(
    feed_server: FeedServer, validators: Validators
) -> None:
    feed_server.add("/feed", FEED, etag=validators.etag, last_modified=validators.last_modified)
    response = ok(fetch(feed_server.url("/feed"), validators))
    (request,) = feed_server.requests
    assert request.headers.get("if-none-match") == validators.etag
    assert request.headers.get("if-modified-since") == validators.last_modified
    assert response.not_modified
    assert response.validators == validators


def test_request_names_product_and_feed_types_and_adds_nothing(feed_server: FeedServer) -> None:
    feed_server.redirect("/feed?a=1", "/next", 302)
    feed_server.add("/next", FEED)
    ok(fetch(feed_server.url("/feed?a=1")))
    first, second = feed_server.requests
    assert (first.path, second.path) == ("/feed?a=1", "/next")
    for request in (first, second):
        assert request.headers["user-agent"] == USER_AGENT
        accept = request.headers["accept"]
        for kind in ("application/atom+xml", "application/rss+xml", "application/feed+json"):
            assert kind in accept
        assert {"gzip", "deflate", "br"} <= {
            coding.strip() for coding in request.headers["accept-encoding"].split(",")
        }
        assert "referer" not in request.headers
        assert "cookie" not in request.headers


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_holds_the_host_for_requests_that_come_after_it(
    feed_server: FeedServer, status: int
) -> None:
    feed_server.handler("/busy", lambda r: Reply(status, b"later", {"Retry-After": "30"}))
    feed_server.add("/other", FEED)

    async def run() -> tuple[FetchError, FetchError]:
        settings: dict[str, Any] = {"user_agent": USER_AGENT, "timeout": 5.0, "max_bytes": 10**6}
        async with Fetcher(**settings) as fetcher:
            with pytest.raises(FetchError) as refused:
                await fetcher.fetch("a", feed_server.url("/busy"))
            with pytest.raises(HostHeld) as held:
                await fetcher.fetch("b", feed_server.url("/other"))
            return refused.value, held.value

    refused, held = asyncio.run(run())
    assert refused.status == status and not isinstance(refused, HostHeld)
    assert held.host == "127.0.0.1" and 25 < held.remaining <= 30
    assert str(held).startswith(f"b: {feed_server.url('/other')}: not fetched: 127.0.0.1 asked")
    assert feed_server.hits("/other") == 0


def test_an_error_without_retry_after_holds_nothing(feed_server: FeedServer) -> None:
    feed_server.handler("/busy", lambda r: Reply(503, b"later"))
    feed_server.add("/other", FEED)
    busy, other = fetch_all([feed_server.url("/busy"), feed_server.url("/other")], per_host=1)
    assert isinstance(busy, FetchError) and busy.status == 503
    ok(other)


def test_set_cookie_is_never_sent_back(feed_server: FeedServer) -> None:
    cookie = {"Set-Cookie": "session=abc; Path=/", "Location": "/feed"}
    feed_server.handler("/login", lambda r: Reply(302, headers=cookie))
    feed_server.add("/feed", FEED, headers={"Set-Cookie": "other=1; Path=/"})
    results = fetch_all([feed_server.url("/login")] * 2 + [feed_server.url("/feed")] * 2)
    assert all(isinstance(result, FetchResponse) for result in results)
    assert feed_server.hits("/login") == 2
    assert feed_server.hits("/feed") == 4
    assert not [r for r in feed_server.requests if "cookie" in r.headers]


def test_a_url_that_cannot_be_parsed_fails_naming_the_reason() -> None:
    error = failed(fetch("http://[::1/feed"))
    assert str(error) == "src: http://[::1/feed: invalid URL: Invalid port: ':1'"


class KeepAliveServer:
    """HTTP/1.1 on 127.0.0.1 that answers every request on a connection with FEED and
    counts its connections; with `close_idle_after`, it hangs up on a connection left
    idle that long, as servers do to kept-alive connections (nginx: keepalive_timeout)."""

    def __init__(self, close_idle_after: float | None = None) -> None:
        self.close_idle_after = close_idle_after
        self.connections = 0
        self.requests = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
        reply = head + b"Content-Length: %d\r\n\r\n%s" % (len(FEED), FEED)
        conn.settimeout(self.close_idle_after or 10.0)
        pending = b""
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    return  # idle too long: hang up
                if not data:
                    return
                pending += data
                while b"\r\n\r\n" in pending:
                    _, pending = pending.split(b"\r\n\r\n", 1)
                    self.requests += 1
                    conn.sendall(reply)


def fetch_one_by_one(urls: list[str], pause: float) -> list[FetchResponse | FetchError]:
    """Each URL after the one before has been answered and `pause` seconds have passed,
    through one Fetcher (one connection pool)."""

    async def run() -> list[FetchResponse | FetchError]:
        results: list[FetchResponse | FetchError] = []
        async with Fetcher(user_agent=USER_AGENT, timeout=5.0, max_bytes=1_000_000) as fetcher:
            for url in urls:
                try:
                    results.append(await fetcher.fetch("src", url))
                except FetchError as error:
                    results.append(error)
                await asyncio.sleep(pause)
        return results

    return asyncio.run(run())


def test_a_kept_alive_connection_serves_the_next_request_to_its_host() -> None:
    server = KeepAliveServer()
    try:
        results = fetch_one_by_one([server.url("/a"), server.url("/b"), server.url("/c")], 0.05)
        assert [ok(result).status for result in results] == [200, 200, 200]
        assert (server.requests, server.connections) == (3, 1)
    finally:
        server.close()


def redirect_to(path: str, page: bytes) -> Reply:
    return Reply(301, body=page, headers={"Location": path, "Content-Type": "text/html"})


def test_a_304_leaves_its_connection_open_for_the_next_request(feed_server: FeedServer) -> None:
    # Left unread, a 304 closed its connection: every conditional poll cost the host a
    # new connection (and, over https, a handshake).
    feed_server.handler("/same", lambda request: Reply(304, headers={"ETag": '"v1"'}))
    feed_server.add("/b", FEED)
    urls = [feed_server.url("/same"), feed_server.url("/same"), feed_server.url("/b")]
    results = fetch_one_by_one(urls, 0.05)
    assert [ok(result).status for result in results] == [304, 304, 200]
    assert (len(feed_server.requests), feed_server.connections) == (3, 1)


def test_a_redirect_with_a_small_page_keeps_its_connection_a_large_one_does_not(
    feed_server: FeedServer,
) -> None:
    page = b"<p>Moved to <a href='/feed'>/feed</a></p>"
    feed_server.handler("/old", lambda request: redirect_to("/feed", page))
    feed_server.handler("/huge", lambda request: redirect_to("/feed", b"x" * (DRAIN_LIMIT * 2)))
    feed_server.add("/feed", FEED)
    results = fetch_one_by_one([feed_server.url("/old"), feed_server.url("/huge")], 0.05)
    assert [ok(result).final_url for result in results] == [feed_server.url("/feed")] * 2
    # /old, /feed and /huge on the first connection; /feed again on a new one, after
    # the huge page was left unread.
    assert (len(feed_server.requests), feed_server.connections) == (4, 2)


def test_a_connection_the_server_closed_while_idle_is_not_used_again() -> None:
    server = KeepAliveServer(close_idle_after=0.05)
    try:
        results = fetch_one_by_one([server.url("/a"), server.url("/b")], 0.5)
        assert [ok(result).status for result in results] == [200, 200]
        assert (server.requests, server.connections) == (2, 2)
    finally:
        server.close()


@pytest.mark.parametrize(
    "compress, encoding",
    [(gzip.compress, "gzip"), (lambda data: brotli.compress(data, quality=5), "br")],
    ids=["gzip", "brotli"],
)
def test_decompression_bomb_is_cut_off_without_inflating_it(
    feed_server: FeedServer, compress: Callable[[bytes], bytes], encoding: str
) -> None:
    bomb = compress(bytes(50_000_000))
    feed_server.add("/feed", bomb, headers={"Content-Encoding": encoding})
    tracemalloc.start()
    try:
        result = fetch(feed_server.url("/feed"), max_bytes=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "body larger than 1000000 bytes" in str(failed(result))
    # Inflating the whole bomb would take 50 MB; the cap allows 1 MB plus bounded pieces.
    assert peak < 10_000_000


def sleep_then(server: FeedServer, seconds: float) -> Callable[[Request], Reply]:
    return lambda request: Reply(body=FEED, delay=seconds)


def trickle(server: FeedServer, pieces: int, every: float) -> Callable[[Request], Reply]:
    """A body that arrives a few bytes at a time, each within any read timeout."""

    def chunks() -> Iterator[bytes]:
        for _ in range(pieces):
            if server.stopping.wait(every):
                return
            yield b"<!-- still here -->"

    return lambda request: Reply(body=chunks())


@pytest.mark.timeout(15)
@pytest.mark.parametrize(
    "slow",
    [lambda s: sleep_then(s, 10), lambda s: trickle(s, 100, 0.1)],
    ids=["no_answer", "body_trickles_past_the_deadline"],
)
def test_slow_server_times_out_at_the_whole_fetch_deadline(
    feed_server: FeedServer, slow: Callable[[FeedServer], Callable[[Request], Reply]]
) -> None:
    feed_server.handler("/feed", slow(feed_server))
    error = failed(fetch(feed_server.url("/feed"), timeout=0.5))
    assert str(error) == f"src: {feed_server.url('/feed')}: timed out after 0.5s"


@pytest.mark.timeout(15)
def test_a_redirect_whose_page_trickles_is_followed_without_waiting_for_the_page(
    feed_server: FeedServer,
) -> None:
    # Its page is read only to keep the connection, and not for longer than DRAIN_SECONDS.
    page = trickle(feed_server, 100, 0.1)
    feed_server.handler(
        "/old", lambda request: replace(page(request), status=301, headers={"Location": "/feed"})
    )
    feed_server.add("/feed", FEED)
    result = ok(fetch(feed_server.url("/old"), timeout=5.0))
    assert (result.status, result.final_url) == (200, feed_server.url("/feed"))
    assert result.elapsed < 5.0


@pytest.mark.parametrize(
    "url, cause",
    [
        (f"http://127.0.0.1:{free_port()}/feed", "connection refused"),
        ("file:///etc/passwd", "unsupported URL scheme 'file'"),
        ("ftp://127.0.0.1/feed.xml", "unsupported URL scheme 'ftp'"),
    ],
    ids=["closed_port", "file_url", "ftp_url"],
)
def test_unreachable_url_error_names_the_cause(url: str, cause: str) -> None:
    assert str(failed(fetch(url))) == f"src: {url}: {cause}"


class ConcurrencyGauge:
    """A handler that holds each request a moment and records the most at once."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self.active = 0
        self.most = 0
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Reply:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        self.server.stopping.wait(0.15)
        with self.lock:
            self.active -= 1
        return Reply(body=FEED)


@pytest.mark.parametrize(
    "per_host, concurrency, hosts, most",
    [(2, 20, ["127.0.0.1"], 2), (1, 20, ["127.0.0.1", "localhost"], 2), (5, 1, ["127.0.0.1"], 1)],
    ids=["per_host_cap", "cap_is_per_host_name", "global_cap"],
)
def test_concurrent_requests_are_capped(
    feed_server: FeedServer, per_host: int, concurrency: int, hosts: list[str], most: int
) -> None:
    gauge = ConcurrencyGauge(feed_server)
    feed_server.handler("/feed", gauge)
    urls = [feed_server.url("/feed").replace("127.0.0.1", hosts[i % len(hosts)]) for i in range(6)]
    results = fetch_all(urls, per_host=per_host, concurrency=concurrency)
    assert all(isinstance(result, FetchResponse) for result in results), results
    assert gauge.most == most


def read_file(path: Path, **options: Any) -> FetchResponse | FetchError:
    async def run() -> FetchResponse | FetchError:
        settings: dict[str, Any] = {"user_agent": USER_AGENT, "timeout": 5.0, "max_bytes": 10**6}
        async with Fetcher(**(settings | options)) as fetcher:
            try:
                return await fetcher.read_file("local", path)
            except FetchError as error:
                return error

    return asyncio.run(run())


def test_local_file_is_read_with_validators_from_mtime_and_size(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(FEED)
    first = ok(read_file(path))
    assert (first.status, first.body, first.not_modified) == (0, FEED, False)
    assert first.content_type in ("application/xml", "text/xml")
    assert first.validators.etag
    assert ok(read_file(path)).validators == first.validators
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert ok(read_file(path)).validators.etag != first.validators.etag


@pytest.mark.parametrize(
    "name, make, options, cause",
    [
        ("missing.xml", lambda p: None, {}, "file not found"),
        ("folder", lambda p: p.mkdir(), {}, "cannot read file"),
        ("big.xml", lambda p: p.write_bytes(b"x" * 101), {"max_bytes": 100}, "body larger"),
    ],
    ids=["missing", "directory", "over_the_cap"],
)
def test_unreadable_local_file_is_a_fetch_error(
    tmp_path: Path,
    name: str,
    make: Callable[[Path], object],
    options: dict[str, Any],
    cause: str,
) -> None:
    path = tmp_path / name
    make(path)
    error = failed(read_file(path, **options))
    assert str(error).startswith(f"local: {path}: {cause}")


# -- TLS -----------------------------------------------------------------------


@pytest.fixture
def https_server() -> Iterator[FeedServer]:
    """The feed server over https, with a certificate a throwaway CA signed (one no
    trust store holds), serving FEED at /feed."""
    trustme = pytest.importorskip("trustme")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    with FeedServer(tls=context) as server:
        server.add("/feed", FEED)
        yield server


def test_an_https_certificate_no_trusted_root_signed_is_refused_naming_the_cause(
    https_server: FeedServer,
) -> None:
    # The HTTP client verifies against the system's roots (and ignores SSL_CERT_FILE and
    # friends): a certificate from an unknown CA is a fetch error that says so, not a feed.
    url = https_server.url("/feed")
    error = failed(fetch(url))
    assert str(error).startswith(f"src: {url}: TLS certificate not accepted: ")
    assert "certificate" in str(error).rpartition("accepted: ")[2]
