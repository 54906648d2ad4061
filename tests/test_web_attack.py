"""The HTTP service under attack, against a real `aggregator run` process.

Odd and hostile paths, huge and malformed query strings, regular expressions
built to backtrack for ever, and hundreds of clients that connect and then send
their request a byte at a time (or never): none may crash, hang or leak, and
ordinary readers keep being served throughout. Requests go out through raw
sockets, so paths reach the server exactly as written (httpx2 would normalise them).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx2
import pytest
from daemonproc import DaemonProcess, free_port, running_daemon, settings_toml
from feedserver import FeedServer

from aggregator.filters import QueryError, matches, parse_query
from aggregator.model import StoredEntry

BACKTRACKER = "a" * 40 + "!"


def feed_document() -> bytes:
    items = "".join(
        f"<item><guid>w{n}</guid><title>{title}</title><link>http://w.example/{n}</link></item>"
        for n, title in enumerate(["Gaza talks", "Iran vote", BACKTRACKER, "Zürich"])
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>W</title>'
        f"<link>http://w.example/</link><description>d</description>{items}</channel></rss>"
    ).encode()


def serves_the_feed(daemon: DaemonProcess) -> bool:
    if not daemon.answers("/feeds/all.json", (200,)):
        return False
    return len(daemon.get("/feeds/all.json").json()["items"]) == 4


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    folder = tmp_path_factory.mktemp("web-attack")
    with FeedServer() as feeds:
        feeds.add("/feed.xml", feed_document())
        port = free_port()
        config = folder / "aggregator.toml"
        # A short interval and tick, as in test_service.py: a remote source's first poll
        # is spread over up to a minute otherwise, and the scheduler ticks every 15 s.
        config.write_text(
            settings_toml(
                f"sqlite:///{folder / 'w.db'}", port, interval='"2s"', min_interval='"1s"'
            )
            + f'[sources.w]\nurl = "{feeds.url("/feed.xml")}"\ncategories = ["news"]\n',
            encoding="utf-8",
        )
        with running_daemon(
            config, port=port, env={"AGGREGATOR_TICK": "0.2"}, ready=serves_the_feed
        ) as running:
            yield running
        text = running.text()
    assert "Traceback" not in text, text


def raw_get(daemon: DaemonProcess, target: bytes, timeout: float = 10) -> tuple[int, bytes]:
    """Send `GET target` byte for byte; the status and body, or (0, b"") if it hung up."""
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=timeout) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    if not data:
        return 0, b""
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def assert_still_serving(daemon: DaemonProcess) -> None:
    assert httpx2.get(f"{daemon.base}/healthz", timeout=5).status_code == 200
    assert len(httpx2.get(f"{daemon.base}/feeds/all.json", timeout=5).json()["items"]) == 4


PATHS = [
    b"/feeds/../../../../etc/passwd",
    b"/feeds/..%2F..%2F..%2Fetc%2Fpasswd.atom",
    b"/feeds/%2e%2e/%2e%2e/etc/passwd.atom",
    b"/feeds/..%5c..%5cetc%5cpasswd.atom",
    b"/feeds/all.atom/../../../etc/passwd",
    b"/feeds/%00.atom",
    b"/feeds/all%00.atom",
    b"/feeds/all.atom%00.json",
    b"/feeds/.atom",
    b"/feeds/all..atom",
    b"/feeds/all.atom.json",
    b"/feeds/ALL.ATOM",
    b"/feeds/%C3%BCn%C3%AFc%C3%B8d%C3%A9.atom",
    b"/feeds/%ff%fe.atom",
    b"/feeds/" + b"a" * 8000 + b".atom",
    b"/feeds/con.rss",
    b"//etc/passwd",
    b"/feeds//all.atom",
    b"/feeds/all.atom;jsessionid=1",
    b"/feeds/%252e%252e%252fetc%252fpasswd.atom",
    b"http://evil.example/feeds/nope.atom",
]


@pytest.mark.parametrize("target", PATHS, ids=[p.decode("latin-1")[:60] for p in PATHS])
def test_odd_and_traversing_paths_are_refused_and_leak_nothing(
    daemon: DaemonProcess, target: bytes
) -> None:
    status, body = raw_get(daemon, target)
    assert status in (400, 404), (status, body[:200])
    assert b"root:" not in body and b"[aggregator]" not in body


QUERIES = [
    (b"q=" + b"x" * 10_000, 400, b"longer than 500"),
    (b"q=", 400, b"empty query"),
    (b"&&&&=&==&q", 400, b"empty query"),
    (b"q=title:", 400, b"empty value"),
    (b"q=%22unclosed", 400, b"unterminated quote"),
    (b"q=/unclosed", 400, b"unterminated regular expression"),
    (b"q=/[/", 400, b"regular expression not accepted"),
    (b"q=/(a)%5C1/", 400, b"no backreferences or lookaround"),
    (b"q=/(%3F%3C!x)a/", 400, b"no backreferences or lookaround"),
    (b"q=/a{1000}{1000}/", 400, b"regular expression not accepted"),
    (b"limit=0", 400, b"bad limit"),
    (b"limit=-1", 400, b"bad limit"),
    (b"limit=1e3", 400, b"bad limit"),
    (b"limit=99999999999999999999999999", 400, b"bad limit"),
    (b"limit=" + b"9" * 5000, 400, b"bad limit"),  # past int()'s own digit limit
    (b"limit=%C2%B2", 400, b"bad limit"),  # superscript two: isdigit(), yet not int()
    (b"limit=%EF%BC%91", 400, b"bad limit"),  # a fullwidth one
    # Odd but valid: searched for, found nowhere.
    (b"q=%ff%fe%fd", 200, b'"items": []'),
    (b"q=%", 200, b'"items": []'),
    (b"q=%%%%", 200, b'"items": []'),
    (b"q=%00", 200, b'"items": []'),
    # The last of repeated parameters counts; unknown ones are ignored.
    (b"q=Gaza&q=Iran", 200, b"Iran vote"),
    (b"%71=Gaza", 200, b"Gaza talks"),
    (b"q=Gaza&utm_source=x&limit=1", 200, b"Gaza talks"),
]


@pytest.mark.parametrize("query, status, says", QUERIES, ids=[q[0].decode()[:40] for q in QUERIES])
def test_malformed_query_strings_get_a_clear_answer(
    daemon: DaemonProcess, query: bytes, status: int, says: bytes
) -> None:
    got, body = raw_get(daemon, b"/feeds/all.json?" + query)
    assert got == status, body[:300]
    assert says in body


def test_request_line_of_a_megabyte_is_refused_and_the_service_goes_on(
    daemon: DaemonProcess,
) -> None:
    try:
        status, _body = raw_get(daemon, b"/feeds/all.json?q=" + b"a" * 1_000_000)
    except (ConnectionResetError, BrokenPipeError):
        status = 0  # hung up on: as good as a refusal
    assert status in (0, 400, 413, 414, 431)
    assert_still_serving(daemon)


CATASTROPHIC = ["/(a+)+$/", "/(a|a)*b/", "/(a|aa)+$/", "/(.*a){25}/", "/^(a+)+$/", "/(a*)*b/"]


@pytest.mark.parametrize("regex", CATASTROPHIC)
def test_catastrophic_regex_from_the_network_answers_without_hanging(
    daemon: DaemonProcess, regex: str
) -> None:
    response = httpx2.get(f"{daemon.base}/feeds/all.json", params={"q": regex}, timeout=10)
    assert response.status_code == 200, response.text
    titles = [item["title"] for item in response.json()["items"]]
    assert BACKTRACKER not in titles or regex == "/(.*a){25}/"
    assert_still_serving(daemon)


def test_network_regex_still_finds_what_it_should(daemon: DaemonProcess) -> None:
    response = httpx2.get(f"{daemon.base}/feeds/all.json", params={"q": "/^a{40}!$/"}, timeout=10)
    assert [item["title"] for item in response.json()["items"]] == [BACKTRACKER]
    folded = httpx2.get(f"{daemon.base}/feeds/all.json", params={"q": "title:/zurich/"})
    assert [item["title"] for item in folded.json()["items"]] == ["Zürich"]


def entry(title: str) -> StoredEntry:
    from datetime import UTC, datetime

    return StoredEntry(
        source="s",
        source_title="S",
        source_url=None,
        source_link=None,
        guid=None,
        link=None,
        title=title,
        summary="",
        content="",
        author=None,
        published=None,
        updated=None,
        first_seen=datetime(2024, 1, 1, tzinfo=UTC),
        tags=(),
        enclosures=(),
        image=None,
    )


def test_admin_filters_keep_python_regex_while_network_queries_refuse_what_re2_lacks() -> None:
    admin = parse_query(r"/(wor)d \1/")
    assert matches(admin, entry("word wor"))
    lookbehind = parse_query("/(?<!un)known/")
    assert matches(lookbehind, entry("well known")) and not matches(lookbehind, entry("unknown"))
    with pytest.raises(QueryError, match="no backreferences or lookaround"):
        parse_query(r"/(wor)d \1/", untrusted=True)
    network = parse_query("/(a+)+$/", untrusted=True)
    assert not matches(network, entry(BACKTRACKER * 20))
    assert matches(parse_query("/ZÜRICH/", untrusted=True), entry("zürich"))


def test_hundreds_of_slow_clients_do_not_stop_the_service(daemon: DaemonProcess) -> None:
    slow: list[socket.socket] = []
    try:
        for number in range(300):
            sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
            # Half a request line, and then nothing: slowloris.
            sock.sendall(
                b"GET /feeds/all.atom HTTP/1.1\r\nHost: x\r\nX-Slow-" + str(number).encode()
            )
            slow.append(sock)
        for _round in range(3):
            for sock in slow[::10]:
                sock.sendall(b"x")
            assert_still_serving(daemon)
        # Clients that ask for a feed and never read the answer.
        for _ in range(50):
            sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            sock.sendall(b"GET /feeds/all.atom?limit=500 HTTP/1.1\r\nHost: x\r\n\r\n")
            slow.append(sock)
        assert_still_serving(daemon)
    finally:
        for sock in slow:
            sock.close()
    assert_still_serving(daemon)
