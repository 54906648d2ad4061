"""The catalogue of hostile sources: documents and server faults, each with its outcome.

Shared by `test_faults.py` (which asserts every outcome) and `bench/faults.py`
(which prints the table of cases with their time and peak memory).

A `FaultCase` installs itself on a `FaultServer` and says what must come of one
fetch and parse of it: `cause` is a fragment of the error message when the source
must fail, None when it must parse (`entries` then says how many entries at least).
Every case is also checked for leaks: no string of `SECRETS` may reach the store or
any output, whatever the case.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from faultserver import (
    FaultServer,
    bomb,
    close_mid_body,
    encoded,
    endless_headers,
    hang_before_headers,
    never_end,
    raw,
    redirect,
    reset_mid_body,
    respond,
    stream,
    trickle,
)

# What the internal URL serves and what /etc/passwd holds: neither may ever show up.
INTERNAL_SECRET = "INTERNAL-METADATA-TOKEN-7f3a"
SECRETS = (INTERNAL_SECRET, "root:x:0:0", "/bin/bash", "daemon:x:")
# Text of an entity expansion: finding it anywhere means an entity was expanded.
EXPANSION_MARKERS = ("lollollol", "x" * 2000)

# A public-looking host name that the tests' resolver maps to 127.0.0.1.
PUBLIC_HOST = "feeds.example.com"
BOMB_SIZE = 256 << 20  # inflated size of every bomb: 256 MiB
RSS_TYPE = {"Content-Type": "application/rss+xml"}


def rss(items: str, *, head: str = '<?xml version="1.0" encoding="utf-8"?>') -> bytes:
    return (
        f'{head}\n<rss version="2.0"><channel><title>Hostile</title>'
        f"<link>http://hostile.example/</link><description>d</description>"
        f"{items}</channel></rss>"
    ).encode()


def item(n: int, title: str = "", body: str = "") -> str:
    return (
        f"<item><title>{title or f'Item {n}'}</title><link>http://hostile.example/{n}</link>"
        f"<guid>hostile-{n}</guid><description>{body or f'Body {n}'}</description></item>"
    )


GOOD = rss(item(1) + item(2) + item(3))

_LAUGHS = '<!ENTITY lol0 "lol">' + "".join(
    f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
)
BILLION_LAUGHS = rss(
    item(1, "&lol9;", "&lol9;"),
    head=f'<?xml version="1.0"?>\n<!DOCTYPE rss [{_LAUGHS}]>',
)
QUADRATIC_BLOWUP = rss(
    item(1, "&a;" * 50, "&a;" * 20_000),
    head=f'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY a "{"x" * 50_000}">]>',
)
XXE_FILE = rss(
    item(1, "&xxe;", "&xxe;"),
    head='<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
)
XXE_PARAMETER = rss(
    item(1, "param", "param"),
    head='<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>',
)


def xxe_url(url: str) -> bytes:
    return rss(
        item(1, "&xxe;", "&xxe;"),
        head=f'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{url}">]>',
    )


def external_dtd(url: str) -> bytes:
    return rss(item(1), head=f'<?xml version="1.0"?>\n<!DOCTYPE rss SYSTEM "{url}">')


# Declared ISO-8859-1, written in UTF-8: mojibake at worst, never a failure.
DECLARED_LATIN1_REAL_UTF8 = rss(
    item(1, "Zürich – café"), head='<?xml version="1.0" encoding="iso-8859-1"?>'
)
# Declared UTF-8, written in windows-1252: not valid UTF-8 at all.
DECLARED_UTF8_REAL_CP1252 = (
    rss(item(1, "Zurich"), head='<?xml version="1.0" encoding="utf-8"?>')
    .decode()
    .replace("Zurich", "Zürich – café")
    .encode("cp1252")
)
INVALID_UTF8 = rss(item(1, "bad bytes")).replace(b"bad bytes", b"bad \xff\xfe\xc3( bytes")
CONTROL_CHARACTERS = rss(
    item(1, "bell\x07 null\x00 esc\x1b", "form\x0c feed\x01\x02\x03 vt\x0b")
    + item(2, "fine", "fine")
)
UTF16_WITH_UTF8_DECLARATION = rss(item(1, "sixteen")).decode().encode("utf-16")
HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Welcome</title><script>alert(1)</script></head>"
    b"<body><h1>Our new site</h1><p>The feed has moved.</p></body></html>"
)
SCRIPT_ONLY_JSON = b'{"version": "https://jsonfeed.org/version/1.1", "title": "x"}'


@dataclass(frozen=True)
class FaultCase:
    name: str
    install: Callable[[FaultServer], str]  # sets the route up, returns the source URL
    cause: str | None  # fragment of the error; None: the document must parse
    entries: int = 0  # at least this many entries when it parses
    allow_private: bool = False
    slow: bool = False  # waits for the fetch deadline
    notes: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def _at(path: str, fault: Callable[..., None] | None = None) -> Callable[[FaultServer], str]:
    def install(server: FaultServer) -> str:
        assert fault is not None
        server.route(path, fault)
        return server.url(path)

    return install


def _public(path: str, fault: Callable[..., None]) -> Callable[[FaultServer], str]:
    """Served at a public-looking name that the resolver maps to 127.0.0.1."""

    def install(server: FaultServer) -> str:
        server.route(path, fault)
        return server.url(path, host=PUBLIC_HOST)

    return install


def _doc(body: bytes, headers: dict[str, str] | None = None) -> Callable[..., None]:
    return respond(200, body, {**RSS_TYPE, **(headers or {})})


def _xxe_url(server: FaultServer) -> str:
    server.route("/internal/secret", respond(200, INTERNAL_SECRET.encode()))
    server.route("/xxe-url", _doc(xxe_url(server.url("/internal/secret"))))
    return server.url("/xxe-url")


def _external_dtd(server: FaultServer) -> str:
    server.route("/internal/dtd", respond(200, f'<!ENTITY x "{INTERNAL_SECRET}">'.encode()))
    server.route("/external-dtd", _doc(external_dtd(server.url("/internal/dtd"))))
    return server.url("/external-dtd")


def _redirect_loop(server: FaultServer) -> str:
    server.route("/loop-a", redirect("/loop-b"))
    server.route("/loop-b", redirect("/loop-a"))
    return server.url("/loop-a")


def _bomb(
    path: str, coding: str, size: int, *, twice: bool = False
) -> Callable[[FaultServer], str]:
    """A bomb built when the case is installed, not on import (a second or so each)."""

    def install(server: FaultServer) -> str:
        body = bomb(coding, size)
        if twice:
            body = _gzipped(body)
        server.route(path, encoded(body, f"{coding}, gzip" if twice else coding))
        return server.url(path)

    return install


@lru_cache(maxsize=2)
def _gzipped(data: bytes) -> bytes:
    return gzip.compress(data)


def _status(status: int, headers: dict[str, str] | None = None) -> Callable[..., None]:
    return respond(status, b"<html><body>error page</body></html>", headers or {})


TIMEOUT_CAUSE = "timed out after"
TOO_LARGE = "body larger than"

CASES: list[FaultCase] = [
    # -- time --------------------------------------------------------------------------
    FaultCase("hang_before_headers", _at("/hang", hang_before_headers()), TIMEOUT_CAUSE, slow=True),
    FaultCase("headers_never_end", _at("/headers", endless_headers()), TIMEOUT_CAUSE, slow=True),
    FaultCase(
        "body_trickles_a_byte_at_a_time",
        _at("/trickle", trickle(GOOD, every=0.05)),
        TIMEOUT_CAUSE,
        slow=True,
    ),
    FaultCase("body_never_ends", _at("/never-end", never_end()), TIMEOUT_CAUSE, slow=True),
    # -- size --------------------------------------------------------------------------
    FaultCase("body_of_100mb_declared", _at("/100mb", stream(100 << 20)), TOO_LARGE),
    FaultCase(
        "body_of_100mb_chunked", _at("/100mb-chunked", stream(100 << 20, chunked=True)), TOO_LARGE
    ),
    FaultCase("gzip_bomb", _bomb("/gzip-bomb", "gzip", BOMB_SIZE), TOO_LARGE),
    FaultCase("deflate_bomb", _bomb("/deflate-bomb", "deflate", BOMB_SIZE), TOO_LARGE),
    FaultCase("brotli_bomb", _bomb("/br-bomb", "br", BOMB_SIZE), TOO_LARGE),
    FaultCase("gzip_bomb_in_gzip", _bomb("/2bomb", "gzip", BOMB_SIZE, twice=True), TOO_LARGE),
    # -- XML ---------------------------------------------------------------------------
    FaultCase("billion_laughs", _at("/laughs", _doc(BILLION_LAUGHS)), None, entries=1),
    FaultCase("quadratic_blowup", _at("/quadratic", _doc(QUADRATIC_BLOWUP)), None, entries=1),
    FaultCase("external_entity_file", _at("/xxe-file", _doc(XXE_FILE)), None, entries=1),
    FaultCase("external_entity_url", _xxe_url, None, entries=1),
    FaultCase("external_parameter_entity", _at("/xxe-param", _doc(XXE_PARAMETER)), None, entries=1),
    FaultCase("external_dtd_url", _external_dtd, None, entries=1),
    FaultCase(
        "feed_of_50000_entries",
        _at(
            "/50000", _doc(rss("".join(f"<item><title>t{n}</title></item>" for n in range(50_000))))
        ),
        None,
        entries=1000,
        notes="the first max_entries (1000) kept; the rest cut before feedparser",
    ),
    FaultCase(
        "title_of_100kb",
        _at("/long-title", _doc(rss(item(1, "long title " * 10_000)))),
        None,
        entries=1,
    ),
    # -- encodings ---------------------------------------------------------------------
    FaultCase(
        "declared_latin1_sent_utf8",
        _at("/latin1", _doc(DECLARED_LATIN1_REAL_UTF8)),
        None,
        entries=1,
    ),
    FaultCase(
        "declared_utf8_sent_cp1252",
        _at("/cp1252", _doc(DECLARED_UTF8_REAL_CP1252)),
        None,
        entries=1,
    ),
    FaultCase(
        "header_charset_contradicts_document",
        _at(
            "/charset", respond(200, GOOD, {"Content-Type": "application/rss+xml; charset=koi8-r"})
        ),
        None,
        entries=3,
    ),
    FaultCase(
        "utf16_sent_as_utf8", _at("/utf16", _doc(UTF16_WITH_UTF8_DECLARATION)), None, entries=1
    ),
    FaultCase("invalid_utf8", _at("/invalid-utf8", _doc(INVALID_UTF8)), None, entries=1),
    FaultCase("xml_forbidden_characters", _at("/control", _doc(CONTROL_CHARACTERS)), None, 2),
    # -- not a feed --------------------------------------------------------------------
    FaultCase(
        "html_page_instead_of_a_feed",
        _at("/html", respond(200, HTML_PAGE, {"Content-Type": "text/html"})),
        "the server sent an HTML page",
    ),
    FaultCase("empty_200", _at("/empty", respond(200, b"", RSS_TYPE)), "empty document"),
    FaultCase(
        "json_without_items",
        _at("/json", respond(200, SCRIPT_ONLY_JSON, {"Content-Type": "application/feed+json"})),
        "no list of items",
    ),
    # -- status codes ------------------------------------------------------------------
    FaultCase("http_500", _at("/500", _status(500)), "HTTP 500 Internal Server Error"),
    FaultCase("http_502", _at("/502", _status(502)), "HTTP 502 Bad Gateway"),
    FaultCase("http_503", _at("/503", _status(503)), "HTTP 503 Service Unavailable"),
    FaultCase(
        "http_503_retry_after",
        _at("/503-retry", _status(503, {"Retry-After": "7200"})),
        "HTTP 503 Service Unavailable (Retry-After: 7200)",
        extra={"retry_after": "7200"},
    ),
    FaultCase(
        "http_503_retry_after_superscript_digit",
        _at("/503-sup", _status(503, {"Retry-After": "\u00b2"})),
        "HTTP 503 Service Unavailable (Retry-After: \u00b2)",
    ),
    FaultCase(
        "cache_control_max_age_absurd",
        _at("/max-age", _doc(GOOD, {"Cache-Control": "max-age=" + "9" * 5000})),
        None,
        entries=3,
    ),
    FaultCase("http_429", _at("/429", _status(429)), "HTTP 429 Too Many Requests"),
    FaultCase(
        "http_429_retry_after_date",
        _at("/429-retry", _status(429, {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})),
        "(Retry-After: Wed, 21 Oct 2099 07:28:00 GMT)",
        extra={"retry_after": "2099"},
    ),
    # -- redirects ---------------------------------------------------------------------
    FaultCase("redirect_loop", _redirect_loop, "too many redirects"),
    FaultCase(
        "redirect_to_file_url",
        _at("/to-file", redirect("file:///etc/passwd")),
        "redirect to a non-HTTP URL refused: file:///etc/passwd",
    ),
    FaultCase(
        "redirect_to_link_local_metadata",
        _at("/to-metadata", redirect("http://169.254.169.254/latest/meta-data/")),
        "169.254.169.254 is a link-local address",
    ),
    FaultCase(
        "public_name_resolving_to_loopback",
        _public("/public-feed", _doc(GOOD)),
        f"{PUBLIC_HOST} resolves only to refused addresses: 127.0.0.1 is a loopback address",
    ),
    FaultCase(
        "public_name_resolving_to_loopback_with_allow_private",
        _public("/public-feed-allowed", _doc(GOOD)),
        None,
        entries=3,
        allow_private=True,
    ),
    # -- connections -------------------------------------------------------------------
    FaultCase(
        "connection_reset_mid_body", _at("/reset", reset_mid_body(GOOD, 100)), "connection reset"
    ),
    FaultCase(
        "connection_closed_mid_body",
        _at("/closed", close_mid_body(GOOD, 100)),
        "bad HTTP response",
    ),
    FaultCase(
        "not_http_at_all",
        _at("/ssh", raw(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")),
        "bad HTTP response",
    ),
    FaultCase(
        "header_of_1mb",
        _at("/big-header", raw(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n")),
        "bad HTTP response",
    ),
]
CASE_NAMES = [case.name for case in CASES]
