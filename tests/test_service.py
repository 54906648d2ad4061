"""`aggregator run` as a real process, polling a real feed server that records every request.

The daemon's tick is cut to 0.1 s with $AGGREGATOR_TICK and intervals to seconds, so
each behaviour shows within a few seconds; nothing here is mocked. Timing assertions
leave room for a busy two-core machine.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import pytest
from daemonproc import DaemonProcess, free_port, start_daemon, wait_until
from feedserver import FeedServer, Reply, Request
from prometheus_client.parser import text_string_to_metric_families

from aggregator import __version__
from aggregator.config import parse_config
from aggregator.daemon import Daemon
from aggregator.store import Store

FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed</title>'
    b"<link>https://site.example/</link>"
    b"<item><guid>one</guid><title>Gaza ceasefire talks</title>"
    b"<link>https://site.example/one</link></item>"
    b"<item><guid>two</guid><title>Dock strike</title>"
    b"<link>https://site.example/two</link></item>"
    b"</channel></rss>"
)
RSS = {"Content-Type": "application/rss+xml"}


@dataclass
class Service(DaemonProcess):
    database: str = ""

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = self.get("/metrics").text
        values = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return values

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)


def config_text(
    database: str,
    port: int,
    sources: dict[str, str],
    extra: str = "",
    settings: str = "",
    base_url: str | None = None,
    interval: str = "1s",
) -> str:
    return (
        "[aggregator]\n" + settings + f'database = "{database}"\n'
        f'listen = "127.0.0.1:{port}"\n'
        f'base_url = "{base_url or f"http://127.0.0.1:{port}"}"\n'
        f'interval = "{interval}"\nmin_interval = "1s"\nmax_interval = "1h"\ntimeout = "10s"\n'
        + "".join(f'\n[sources.{name}]\nurl = "{url}"\n' for name, url in sources.items())
        + extra
    )


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def launch(
        sources: dict[str, str],
        *,
        extra: str = "",
        settings: str = "",
        env: dict[str, str] | None = None,
        database: str | None = None,
        name: str = "daemon",
        role: str | None = None,
        base_url: str | None = None,
        prefix: tuple[str, ...] = (),
        interval: str = "1s",
    ) -> Service:
        """Start `aggregator run` (`--role ROLE`, under the command `prefix` if any).
        Several at once take a `name` each: their own configuration file and log."""
        port = free_port()
        url = database or f"sqlite:///{tmp_path / 'service.db'}"
        config = tmp_path / ("aggregator.toml" if name == "daemon" else f"{name}.toml")
        config.write_text(
            config_text(url, port, sources, extra, settings, base_url, interval),
            encoding="utf-8",
        )
        daemon = start_daemon(
            config,
            port=port,
            log=tmp_path / f"{name}.log",
            env={"AGGREGATOR_TICK": "0.1", **(env or {})},
            args=("run", *(["--role", role] if role else [])),
            prefix=prefix,
        )
        service = Service(daemon.process, port, config, daemon.log, url)
        started.append(service)
        return service

    yield launch
    for service in started:
        if service.alive():
            service.process.kill()
            service.process.wait()


def requests_to(server: FeedServer, *paths: str) -> list[Request]:
    return [r for r in server.requests if r.path in paths]


# -- polling -----------------------------------------------------------------


def test_daemon_polls_conditionally_with_a_constant_user_agent_and_reports_it(
    feed_server: FeedServer, start: Callable[..., Service]
) -> None:
    feed_server.add("/f", FEED, etag='W/"v1"', last_modified="Mon, 02 Mar 2026 08:00:00 GMT")
    service = start({"a": feed_server.url("/f")})
    wait_until(lambda: feed_server.hits("/f") >= 4, 20, "four polls", service.log)
    sent = requests_to(feed_server, "/f")
    assert {r.headers["user-agent"] for r in sent} == {
        f"aggregator/{__version__} (+{service.base})"
    }
    assert "if-none-match" not in sent[0].headers
    assert all(r.headers["if-none-match"] == 'W/"v1"' for r in sent[1:])
    assert all(r.headers["if-modified-since"] == "Mon, 02 Mar 2026 08:00:00 GMT" for r in sent[1:])
    # /metrics counts what the server saw (give or take a poll finishing in between).
    polled = service.metric("aggregator_polls_total", result="ok") + service.metric(
        "aggregator_polls_total", result="not_modified"
    )
    assert service.metric("aggregator_polls_total", result="ok") == 1
    assert feed_server.hits("/f") - 1 <= polled <= feed_server.hits("/f")
    assert service.metric("aggregator_entries_total", kind="new") == 2
    assert service.metric("aggregator_fetched_bytes_total") == len(FEED)
    assert service.metric("aggregator_fetch_seconds_count") == polled
    assert "poll source=a url=" in service.text() and "status=not_modified" in service.text()


def test_daemon_honours_retry_after_for_every_source_on_the_host(
    feed_server: FeedServer, start: Callable[..., Service]
) -> None:
    limited_once = threading.Event()

    def limited(request: Request) -> Reply:
        if limited_once.is_set():
            return Reply(200, FEED, RSS)
        limited_once.set()
        return Reply(429, b"slow down", {"Retry-After": "3"})

    feed_server.handler("/limited", limited)
    feed_server.add("/other", FEED)
    service = start({"a": feed_server.url("/limited"), "b": feed_server.url("/other")})
    wait_until(lambda: feed_server.hits("/limited") >= 2, 20, "the retry", service.log)
    sent = requests_to(feed_server, "/limited", "/other")
    refused_at = next(r.at for r in sent if r.path == "/limited")
    after = [r.at - refused_at for r in sent if r.at > refused_at]
    assert after, "nothing was polled after the 429"
    # Nothing on the host was asked again for the 3 s it asked for (clock slack 0.1 s).
    assert min(after) >= 2.9, after
    assert service.metric("aggregator_retry_after_holds_total") == 1
    assert "Retry-After" in service.text()


def test_daemon_backs_off_exponentially_on_500s(
    feed_server: FeedServer, start: Callable[..., Service]
) -> None:
    feed_server.handler("/f", lambda r: Reply(500, b"broken"))
    service = start({"a": feed_server.url("/f")})
    wait_until(lambda: feed_server.hits("/f") >= 4, 30, "four attempts", service.log)
    times = [r.at for r in requests_to(feed_server, "/f")]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # interval × 1, 2, 4 less up to 20% jitter, plus a tick of slack.
    for gap, nominal in zip(gaps, [1, 2, 4], strict=False):
        assert 0.8 * nominal - 0.05 <= gap <= nominal + 0.6, gaps
    assert service.metric("aggregator_sources_failing") == 1
    assert service.metric("aggregator_polls_total", result="error") >= 3
    # A failing source is the publisher's trouble, not an unhealthy daemon.
    assert service.get("/healthz").status_code == 200
    page = service.get("/").text
    assert "failing" in page and "HTTP 500" in page


def test_daemon_follows_a_301_for_good_and_reports_the_move(
    feed_server: FeedServer, start: Callable[..., Service]
) -> None:
    feed_server.redirect("/old", "/new", 301)
    feed_server.add("/new", FEED, etag='"n"')
    service = start({"a": feed_server.url("/old")})
    wait_until(lambda: feed_server.hits("/new") >= 3, 20, "polls of the new URL", service.log)
    assert feed_server.hits("/old") == 1
    assert all(
        r.headers.get("if-none-match") == '"n"' for r in requests_to(feed_server, "/new")[1:]
    )
    assert "moved permanently" in service.text()
    page = service.get("/").text
    assert "moved" in page and feed_server.url("/old") in page and feed_server.url("/new") in page
    assert service.metric("aggregator_source_moves_total") == 1


def test_daemon_stops_polling_a_source_that_answers_410(
    feed_server: FeedServer, start: Callable[..., Service]
) -> None:
    feed_server.handler("/gone", lambda r: Reply(410, b"gone"))
    feed_server.add("/alive", FEED)
    service = start({"a": feed_server.url("/gone"), "b": feed_server.url("/alive")})
    wait_until(lambda: feed_server.hits("/alive") >= 4, 20, "polls of the live source", service.log)
    assert feed_server.hits("/gone") == 1
    assert service.metric("aggregator_polls_total", result="gone") == 1
    assert service.metric("aggregator_sources", health="gone") == 1
    assert "410 Gone" in service.text()
    assert "answered 410 Gone" in service.get("/").text


# -- serving -----------------------------------------------------------------


def test_daemon_serves_304s_and_gzip_from_its_render_cache(
    feed_server: FeedServer, start: Callable[..., Service]
) -> None:
    feed_server.add("/f", FEED, etag='"v1"')
    service = start({"a": feed_server.url("/f")})
    wait_until(lambda: "Gaza" in service.get("/feeds/all.atom").text, 20, "stories")
    plain = service.get("/feeds/all.atom", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    again = service.get("/feeds/all.atom", headers={"If-None-Match": plain.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    by_date = service.get(
        "/feeds/all.atom", headers={"If-Modified-Since": plain.headers["last-modified"]}
    )
    assert by_date.status_code == 304
    with httpx2.stream(
        "GET", service.base + "/feeds/all.atom", headers={"Accept-Encoding": "gzip"}
    ) as zipped:
        zipped.read()
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["etag"] != plain.headers["etag"]  # another representation …
    cross = service.get("/feeds/all.atom", headers={"If-None-Match": zipped.headers["etag"]})
    assert cross.status_code == 304  # … of the same content
    assert service.metric("aggregator_feed_not_modified_total") == 3
    hits = service.metric("aggregator_render_cache_total", result="hit")
    misses = service.metric("aggregator_render_cache_total", result="miss")
    assert hits >= 3 and misses >= 1
    assert misses == service.metric("aggregator_renders_total")


def test_web_role_polls_nothing_and_serves_what_another_process_stores(
    feed_server: FeedServer, start: Callable[..., Service]
) -> None:
    feed_server.add("/f", FEED, etag='"v1"')
    web = start({"a": feed_server.url("/f")}, role="web")
    before = web.get("/feeds/all.atom")
    assert before.status_code == 200 and "Gaza" not in before.text  # cached, empty
    assert web.get("/healthz").json()["scheduler"] == "ok"  # it reads the data version
    polled = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(web.config), "poll"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert polled.returncode == 0, polled.stderr
    assert feed_server.hits("/f") == 1  # the `poll`'s request; the web process made none
    # The poll bumped the data version in its own transaction: the web process's
    # cache follows within VERSION_RECHECK.
    wait_until(lambda: "Gaza" in web.get("/feeds/all.atom").text, 20, "the polled stories")
    assert feed_server.hits("/f") == 1
    assert "role web" in web.text() and "polling nothing" in web.text()


def test_poller_role_serves_health_and_metrics_only(
    feed_server: FeedServer, start: Callable[..., Service]
) -> None:
    feed_server.add("/f", FEED, etag='"v1"')
    poller = start({"a": feed_server.url("/f")}, role="poller")
    wait_until(lambda: poller.metric("aggregator_polls_total", result="ok") >= 1, 20, "a poll")
    assert poller.get("/healthz").status_code == 200
    for path in ("/", "/feeds/all.atom", "/feeds.opml", "/sources/a"):
        assert poller.get(path).status_code == 404, path
    poller.signal(signal.SIGTERM)
    assert poller.wait_exit() == 0


def test_status_page_lists_sources_and_feeds_without_javascript(
    feed_server: FeedServer, start: Callable[..., Service]
) -> None:
    feed_server.add("/f", FEED)
    feed_server.handler("/broken", lambda r: Reply(500, b"x"))
    service = start(
        {"good": feed_server.url("/f"), "bad": feed_server.url("/broken")},
        extra='\n[feeds.gaza]\ntitle = "Gaza <news>"\ninclude = ["Gaza"]\n',
    )
    wait_until(
        lambda: feed_server.hits("/broken") >= 1 and feed_server.hits("/f") >= 1, 20, "polls"
    )
    wait_until(lambda: "HTTP 500" in service.get("/").text, 10, "the error on the page")
    page = service.get("/")
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<script" not in html.lower()
    for name in ("good", "bad"):
        assert f'id="source-{name}"' in html
    assert "Gaza &lt;news&gt;" in html  # escaped
    for fmt in ("atom", "rss", "json"):
        assert f'href="{service.base}/feeds/gaza.{fmt}"' in html
    assert f'href="{service.base}/feeds.opml"' in html


def test_output_dir_is_rewritten_atomically_when_the_stories_change(
    feed_server: FeedServer, start: Callable[..., Service], tmp_path: Path
) -> None:
    feed_server.add("/f", FEED, etag='"v1"')
    out = tmp_path / "public"
    service = start({"a": feed_server.url("/f")}, settings=f'output_dir = "{out}"\n')
    target = out / "all.atom"
    formats = ("atom", "rss", "json")

    def built_with(text: bytes) -> bool:
        # The files are written one after another (the empty build at start-up, then
        # one per change), so all.atom can carry a story while all.json's temporary
        # file is still open: wait for every format, and for no temporary file left.
        # A temporary file that is never cleaned up keeps this false and fails the wait.
        if not out.is_dir():
            return False
        names = {p.name for p in out.iterdir()}
        return (
            names >= {f"all.{f}" for f in formats} | {"feeds.opml"}
            and all(text in (out / f"all.{f}").read_bytes() for f in formats)
            and not [name for name in names if name.startswith(".")]
        )

    wait_until(lambda: built_with(b"Gaza"), 20, "the first build")
    written = target.stat().st_mtime_ns
    time.sleep(1.0)  # several 304 polls: nothing changed, nothing rewritten
    assert target.stat().st_mtime_ns == written
    feed_server.add("/f", FEED.replace(b"Dock strike", b"Harbour strike"), etag='"v2"')
    wait_until(lambda: built_with(b"Harbour strike"), 20, "the rewrite", service.log)


# -- lifecycle ---------------------------------------------------------------


def test_sighup_reload_bad_file_is_refused_with_file_line_and_good_one_applies(
    feed_server: FeedServer, start: Callable[..., Service]
) -> None:
    feed_server.add("/a", FEED, etag='"a"')
    feed_server.add("/b", FEED.replace(b"Dock strike", b"Harbour strike"), etag='"b"')
    picked = '\n[feeds.picked]\ntitle = "Before"\n'
    service = start({"a": feed_server.url("/a")}, extra=picked)
    wait_until(lambda: feed_server.hits("/a") >= 2, 20, "polls of a", service.log)
    original = service.config.read_text()

    service.config.write_text(original + '\n[sources.broken]\nurl = "ftp://nowhere"\n')
    service.signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in service.text(), 10, "the refusal", service.log)
    lines = original.count("\n")
    assert f"{service.config}:{lines + 3}: sources.broken.url" in service.text()
    before = feed_server.hits("/a")
    wait_until(lambda: feed_server.hits("/a") > before, 10, "a still polled", service.log)

    service.config.write_text(
        original.replace(
            f'[sources.a]\nurl = "{feed_server.url("/a")}"',
            f'[sources.b]\nurl = "{feed_server.url("/b")}"',
        ).replace('title = "Before"', 'title = "After"')
    )
    service.signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in service.text(), 10, "the reload", service.log)
    wait_until(lambda: feed_server.hits("/b") >= 1, 10, "the added source polled", service.log)
    stopped_at = feed_server.hits("/a")
    wait_until(lambda: feed_server.hits("/b") >= 3, 10, "more polls of b", service.log)
    assert feed_server.hits("/a") <= stopped_at + 1  # at most one already under way
    assert "<title>After</title>" in service.get("/feeds/picked.atom").text
    assert "added b; removed a" in service.text()


def test_sigterm_lets_an_in_flight_poll_finish_and_exits_0(
    feed_server: FeedServer, start: Callable[..., Service]
) -> None:
    feed_server.handler("/slow", lambda r: Reply(200, FEED, RSS, delay=1.5))
    service = start({"a": feed_server.url("/slow")})
    wait_until(lambda: feed_server.hits("/slow") >= 1, 20, "the slow poll to start", service.log)
    service.signal(signal.SIGTERM)
    assert service.wait_exit(30) == 0, service.text()
    assert "Traceback" not in service.text()
    store = Store(service.database)
    try:
        state = store.source_state("a")
        assert state is not None
        assert (state.last_status, state.entry_count, state.claimed_by) == ("ok", 2, None)
    finally:
        store.close()


def test_sigterm_cancels_a_poll_past_the_grace_and_leaves_it_due(
    feed_server: FeedServer, start: Callable[..., Service]
) -> None:
    feed_server.handler("/hang", lambda r: Reply(200, FEED, RSS, delay=60))
    service = start({"a": feed_server.url("/hang")}, env={"AGGREGATOR_SHUTDOWN_GRACE": "0.5"})
    wait_until(lambda: feed_server.hits("/hang") >= 1, 20, "the poll to start", service.log)
    began = time.monotonic()
    service.signal(signal.SIGTERM)
    assert service.wait_exit(30) == 0, service.text()
    assert time.monotonic() - began < 10
    assert "1 in-flight polls cancelled (a)" in service.text()
    store = Store(service.database)
    try:
        state = store.source_state("a")
        assert state is not None
        # Nothing half-stored, and no lease left behind: the next start polls it at once.
        assert (state.last_polled_at, state.claimed_by, state.lease_until) == (None, None, None)
    finally:
        store.close()


def test_sigint_stops_cleanly_too(feed_server: FeedServer, start: Callable[..., Service]) -> None:
    feed_server.add("/f", FEED)
    service = start({"a": feed_server.url("/f")})
    service.signal(signal.SIGINT)
    assert service.wait_exit(30) == 0, service.text()
    assert "Traceback" not in service.text()


# -- health ------------------------------------------------------------------


def test_healthz_turns_503_while_the_scheduler_cannot_claim_and_recovers(
    feed_server: FeedServer, start: Callable[..., Service], tmp_path: Path
) -> None:
    feed_server.add("/f", FEED)
    service = start({"a": feed_server.url("/f")})
    assert service.get("/healthz").json()["scheduler"] == "ok"
    # Another process takes SQLite's write lock and keeps it: every claim now fails.
    blocker = sqlite3.connect(tmp_path / "service.db", isolation_level=None, timeout=30)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        wait_until(lambda: service.get("/healthz").status_code == 503, 30, "a 503", service.log)
        body = service.get("/healthz").json()
        assert (body["scheduler"], body["database"]) == ("stalled", "ok")
        wait_until(lambda: "scheduler stalled" in service.text(), 5, "the stall logged")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    wait_until(lambda: service.get("/healthz").status_code == 200, 30, "recovery", service.log)
    assert "scheduler stalled: a claim has waited" in service.text()
    wait_until(lambda: "scheduler claims again" in service.text(), 5, "the recovery logged")


@pytest.mark.postgres
def test_healthz_turns_503_when_the_database_is_gone(
    feed_server: FeedServer, start: Callable[..., Service], pg_url: str
) -> None:
    import psycopg

    feed_server.add("/f", FEED)
    service = start({"a": feed_server.url("/f")}, database=pg_url)
    wait_until(lambda: service.get("/healthz").status_code == 200, 20, "health", service.log)
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    wait_until(lambda: service.get("/healthz").status_code == 503, 30, "a 503", service.log)
    assert service.get("/healthz").json()["database"].startswith("error:")
    service.signal(signal.SIGTERM)
    assert service.wait_exit(30) == 0, service.text()


# -- systemd -----------------------------------------------------------------


def test_notify_protocol_ready_watchdog_reloading_stopping(
    feed_server: FeedServer, start: Callable[..., Service]
) -> None:
    folder = tempfile.mkdtemp(prefix="agg-notify-", dir="/tmp")  # AF_UNIX paths are short
    path = os.path.join(folder, "notify.sock")
    received: list[str] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(0.1)

        def drain() -> list[str]:
            while True:
                try:
                    received.extend(sock.recv(4096).decode().split("\n"))
                except TimeoutError:
                    return received

        feed_server.add("/f", FEED)
        service = start(
            {"a": feed_server.url("/f")},
            env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"},
        )
        wait_until(lambda: "READY=1" in drain(), 10, "READY=1", service.log)
        assert any(line.startswith("STATUS=polling 1 sources") for line in received)
        wait_until(lambda: drain().count("WATCHDOG=1") >= 3, 10, "watchdog pings", service.log)
        received.clear()
        service.signal(signal.SIGHUP)
        wait_until(lambda: "READY=1" in drain(), 10, "READY=1 after the reload", service.log)
        assert received.index("RELOADING=1") < received.index("READY=1")
        service.signal(signal.SIGTERM)
        assert service.wait_exit(30) == 0
        assert "STOPPING=1" in drain()
    os.unlink(path)
    os.rmdir(folder)


# -- first polls ---------------------------------------------------------------


def test_a_poller_polls_more_due_sources_than_it_has_places_before_its_next_tick(
    tmp_path: Path, start: Callable[..., Service]
) -> None:
    """`aggregator run` with a tick of a minute, two polling places (concurrency 1) and
    twelve local sources, all due at start (a file costs no publisher: no spread). The
    first tick claims two; the polls that end claim the rest. On ticks alone it polled
    two sources a minute: 40 every 15 s at the defaults, 4,800 sources a half hour."""
    extra = ""
    for n in range(12):
        path = tmp_path / f"local{n}.xml"
        path.write_bytes(FEED.replace(b"<title>", f"<title>{n} ".encode(), 1))
        extra += f'\n[sources.local{n:02d}]\npath = "{path}"\n'
    service = start({}, extra=extra, settings="concurrency = 1\n", env={"AGGREGATOR_TICK": "60"})
    wait_until(
        lambda: service.metric("aggregator_polls_total", result="ok") == 12,
        20,
        "all twelve sources polled within the first tick",
        service.log,
    )
    assert all(f"poll source=local{n:02d} " in service.text() for n in range(12))


def test_start_spreads_due_remote_sources_over_the_window_and_leaves_files_alone(
    tmp_path: Path,
) -> None:
    sample = tmp_path / "local.xml"
    sample.write_bytes(FEED)
    text = (
        f'[aggregator]\ndatabase = "sqlite:///{tmp_path / "s.db"}"\ninterval = "30m"\n'
        + "".join(f'\n[sources.s{n:02d}]\nurl = "https://h{n % 3}.example/f"\n' for n in range(30))
        + f'\n[sources.local]\npath = "{sample}"\n'
    )
    config = parse_config(text, tmp_path / "aggregator.toml")
    daemon = Daemon(config, tmp_path / "aggregator.toml", tick=0.1)
    daemon.store.upgrade()
    daemon.store.sync_sources(config.sources.values())
    before = datetime.now(UTC)
    assert daemon.spread_first_polls() == 30
    states = {s.name: s for s in daemon.store.source_states()}
    offsets = sorted((states[f"s{n:02d}"].next_poll_at - before).total_seconds() for n in range(30))  # type: ignore[operator]
    assert offsets[0] >= 0 and offsets[-1] < 61
    assert len({round(offset, 3) for offset in offsets}) == 30
    assert offsets[-1] - offsets[0] > 30  # spread over the window, not bunched
    assert states["local"].next_poll_at is None  # a file costs no publisher: polled at once
    # The same restart again moves nothing: they are no longer overdue.
    assert daemon.spread_first_polls() == 0
    daemon.store.close()
