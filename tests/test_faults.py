"""Hostile sources against real servers: every fault has a defined, bounded outcome.

The catalogue is `hostile.CASES`, served by `faultserver.FaultServer` (raw sockets
on 127.0.0.1). Each case is checked three ways:

- alone, in a process of its own (`faultprobe.py`): the fetch and parse end with
  the expected outcome, within the fetch deadline, with bounded peak memory, and
  nothing secret or expanded in what was parsed;
- all together in one polling pass into a real SQLite store: each failure is
  recorded on its source with a message naming source, URL and cause, the good
  sources are polled as usual, and neither the database nor any output holds a
  secret, an entity expansion or an XML-forbidden character;
- all together under `aggregator run`: the daemon keeps answering while they hang.

`bench/faults.py` prints the same catalogue as a table of time and memory.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest
from daemonproc import free_port, start_daemon
from faultserver import FaultServer, respond
from hostile import (
    CASES,
    EXPANSION_MARKERS,
    PUBLIC_HOST,
    RSS_TYPE,
    SECRETS,
    FaultCase,
    item,
    rss,
)
from outputcheck import XML_FORBIDDEN, assert_outputs_valid, store_text

from aggregator.config import load_config
from aggregator.fetch import Fetcher
from aggregator.poll import Poller
from aggregator.schedule import MAX_RETRY_AFTER, parse_max_age, parse_retry_after
from aggregator.store import Store

TESTS = Path(__file__).resolve().parent
PROBE = TESTS / "faultprobe.py"
PROBE_TIMEOUT = 1.0
PROBE_MAX_BYTES = 2_000_000
# Peak resident memory a fetch and parse may add: the 2 MB body, its parse and
# the interpreter's own churn fit in far less. Inflating a bomb (256 MiB–1 GiB),
# reading a 100 MB body or expanding entities would each blow far past it.
MEMORY_BOUND = 64 << 20


@pytest.fixture(scope="module")
def fault_server() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def param(case: FaultCase) -> object:
    marks = [pytest.mark.slow] if case.slow else []
    return pytest.param(case, id=case.name, marks=marks)


def probe(url: str, *, allow_private: bool = False) -> dict[str, object]:
    command = [
        sys.executable,
        str(PROBE),
        url,
        f"--timeout={PROBE_TIMEOUT}",
        f"--max-bytes={PROBE_MAX_BYTES}",
        f"--resolve={PUBLIC_HOST}=127.0.0.1",
    ]
    if allow_private:
        command.append("--allow-private")
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def assert_outcome(case: FaultCase, outcome: str, entries: int) -> None:
    if case.cause is None:
        assert outcome == "ok", outcome
        assert entries >= case.entries
    else:
        assert case.cause in outcome, outcome


@pytest.mark.parametrize("case", [param(case) for case in CASES])
def test_one_fetch_and_parse_of_a_hostile_source_is_bounded_and_leaks_nothing(
    fault_server: FaultServer, case: FaultCase
) -> None:
    url = case.install(fault_server)
    result = probe(url, allow_private=case.allow_private)
    outcome = str(result["outcome"])
    assert_outcome(case, outcome, int(str(result["entries"])))
    if case.cause is not None:
        assert outcome.startswith(f"probe: {url}: "), outcome
    if case.cause and "timed out" in case.cause:
        assert outcome.endswith(f"timed out after {PROBE_TIMEOUT:g}s")
    assert int(str(result["rss_growth"])) < MEMORY_BOUND, result
    assert result["found"] == [], result
    assert fault_server.hits("/internal/secret") == fault_server.hits("/internal/dtd") == 0


# -- one pass over all of them ---------------------------------------------------------

GOOD_SOURCES = 3
# Those the daemon can poll too: its resolver is the system's, which knows no PUBLIC_HOST.
LOOPBACK_CASES = [case for case in CASES if not case.name.startswith("public_")]


def good_feed(number: int) -> bytes:
    return rss("".join(item(number * 100 + n) for n in range(1, 4)))


def write_config(
    path: Path,
    server: FaultServer,
    cases: list[FaultCase],
    *,
    hosts: Mapping[str, FaultServer] | None = None,
    **settings: str,
) -> Path:
    """`hosts` serves some cases (by name) from servers of their own instead of `server`."""
    lines = [
        "[aggregator]",
        f'database = "sqlite:///{path.parent / "faults.db"}"',
        f'timeout = "{settings.get("timeout", "1s")}"',
        'max_bytes = "2MB"',
        f"per_host = {settings.get('per_host', '16')}",
        f'listen = "127.0.0.1:{settings.get("port", "8080")}"',
        f'base_url = "http://127.0.0.1:{settings.get("port", "8080")}"',
        *(f'{key} = "{settings[key]}"' for key in ("interval", "min_interval") if key in settings),
        "",
    ]
    for number in range(1, GOOD_SOURCES + 1):
        server.route(f"/good/{number}", respond(200, good_feed(number), RSS_TYPE))
        lines += [f"[sources.good-{number}]", f'url = "{server.url(f"/good/{number}")}"', ""]
    for case in cases:
        serving = (hosts or {}).get(case.name, server)
        lines += [f"[sources.{case.name}]", f'url = "{case.install(serving)}"']
        if case.allow_private:
            lines.append("allow_private = true")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_a_pass_over_every_hostile_source_records_each_failure_and_polls_the_rest(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    with ExitStack() as servers:
        # A 429/503 with Retry-After holds its host at once (sources queued behind it are
        # deferred, not fetched), so each such case answers from a loopback address of its
        # own, as in the daemon test below.
        held = [case for case in LOOPBACK_CASES if case.extra.get("retry_after")]
        hosts = {
            case.name: servers.enter_context(FaultServer(host=f"127.0.0.{number}"))
            for number, case in enumerate(held, start=2)
        }
        pass_over_hostile_sources(fault_server, hosts, CASES, tmp_path)


def pass_over_hostile_sources(
    fault_server: FaultServer,
    hosts: Mapping[str, FaultServer],
    cases: list[FaultCase],
    tmp_path: Path,
) -> None:
    config = load_config(write_config(tmp_path / "faults.toml", fault_server, cases, hosts=hosts))
    store = Store(config.settings.database)
    store.upgrade()
    store.sync_sources(config.sources.values())

    async def resolver(host: str, port: int) -> list[str]:
        assert host == PUBLIC_HOST, host
        return ["127.0.0.1"]

    async def one_pass() -> None:
        async with Fetcher(
            user_agent="aggregator-test/1",
            timeout=config.settings.timeout.total_seconds(),
            max_bytes=config.settings.max_bytes,
            per_host=config.settings.per_host,
            resolver=resolver,
        ) as fetcher:
            poller = Poller(config, store, fetcher)
            summary = await poller.poll_pass(store.due_sources(datetime.now(UTC)))
        assert len(summary.results) == len(cases) + GOOD_SOURCES

    asyncio.run(one_pass())
    try:
        for number in range(1, GOOD_SOURCES + 1):
            state = store.source_state(f"good-{number}")
            assert state is not None
            assert (state.last_status, state.entry_count, state.error_count) == ("ok", 3, 0)
        for case in cases:
            state = store.source_state(case.name)
            assert state is not None and state.url is not None
            if case.cause is None:
                assert state.last_status == "ok", state.last_error
                assert state.entry_count >= case.entries
                continue
            assert state.last_status == "error", case.name
            assert state.error_count == 1
            assert state.last_error is not None
            assert state.last_error.startswith(f"{case.name}: {state.url}: "), state.last_error
            assert case.cause in state.last_error
            assert len(state.last_error) < 1000, "a server-chosen text must not bloat the error"
            assert state.last_polled_at is not None and state.next_poll_at is not None
            wait = state.next_poll_at - state.last_polled_at
            retry_after = case.extra.get("retry_after")
            if retry_after == "7200":
                assert wait >= timedelta(seconds=7200)
            elif retry_after in ("capped", "2099"):
                assert wait == MAX_RETRY_AFTER
        assert fault_server.hits("/internal/secret") == fault_server.hits("/internal/dtd") == 0
        everything = store_text(tmp_path / "faults.db")
        for marker in (*SECRETS, *EXPANSION_MARKERS):
            assert marker not in everything, marker
        with closing(sqlite3.connect(tmp_path / "faults.db")) as conn:
            for title, summary in conn.execute("SELECT title, summary FROM entries"):
                assert not XML_FORBIDDEN.search(title + summary), title
        files = assert_outputs_valid(store, config, tmp_path / "out")
        for name, body in files.items():
            text = body.decode("utf-8")
            for marker in (*SECRETS, *EXPANSION_MARKERS):
                assert marker not in text, (name, marker)
    finally:
        store.close()


# -- the daemon under the same fire ---------------------------------------------------


def polled_sources(database: Path) -> int:
    try:
        with closing(sqlite3.connect(database, timeout=5)) as conn:
            row = conn.execute(
                "SELECT count(*) FROM sources WHERE last_polled_at IS NOT NULL"
            ).fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0])


@pytest.mark.slow
def test_daemon_keeps_serving_while_every_hostile_source_misbehaves(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    with ExitStack() as servers:
        # A 429/503 with Retry-After holds every source on its host (the daemon honours
        # it host-wide), so each of those cases gets a loopback address of its own:
        # the rest of 127.0.0.1 must go on being polled, and the held hosts not again.
        held = [case for case in LOOPBACK_CASES if case.extra.get("retry_after")]
        assert held
        hosts = {
            case.name: servers.enter_context(FaultServer(host=f"127.0.0.{number}"))
            for number, case in enumerate(held, start=2)
        }
        run_daemon_under_fire(fault_server, hosts, tmp_path)


def run_daemon_under_fire(
    fault_server: FaultServer, hosts: Mapping[str, FaultServer], tmp_path: Path
) -> None:
    port = free_port()
    cases = [case for case in LOOPBACK_CASES]
    # A short interval and tick (first polls are spread over the interval, at most a
    # minute; the scheduler ticks every 15 s otherwise), as test_service.py does.
    config = write_config(
        tmp_path / "faults.toml",
        fault_server,
        cases,
        hosts=hosts,
        timeout="3s",
        per_host="4",
        port=str(port),
        interval="5s",
        min_interval="1s",
    )
    base = f"http://127.0.0.1:{port}"
    daemon = start_daemon(config, port=port, env={"AGGREGATOR_TICK": "0.2"}, timeout=60)
    process, log = daemon.process, daemon.log
    try:
        answered = 0
        deadline = time.monotonic() + 60
        while polled_sources(tmp_path / "faults.db") < len(cases) + GOOD_SOURCES:
            assert time.monotonic() < deadline, log.read_text()
            assert process.poll() is None, log.read_text()
            try:
                health = httpx2.get(f"{base}/healthz", timeout=2)
                feed = httpx2.get(f"{base}/feeds/all.json", timeout=2)
            except httpx2.ConnectError:
                time.sleep(0.1)  # not listening yet
                continue
            assert health.status_code == 200, health.text
            assert feed.status_code == 200
            answered += 1
            time.sleep(0.1)
        assert answered > 0, "the daemon never answered while its sources hung"
        items = httpx2.get(f"{base}/feeds/all.json?limit=500", timeout=5).json()["items"]
        assert len({entry["id"] for entry in items}) == len(items)
        for number in range(1, GOOD_SOURCES + 1):
            good = httpx2.get(
                f"{base}/feeds/all.json", params={"q": f"source:good-{number}"}, timeout=5
            ).json()["items"]
            assert sorted(entry["title"] for entry in good) == [
                f"Item {number * 100 + n}" for n in range(1, 4)
            ]
        for fmt in ("atom", "rss", "json"):
            body = httpx2.get(f"{base}/feeds/all.{fmt}", timeout=5).text
            for marker in (*SECRETS, *EXPANSION_MARKERS):
                assert marker not in body, (fmt, marker)
        assert httpx2.get(f"{base}/healthz", timeout=5).status_code == 200
    finally:
        returncode = daemon.stop()
    text = log.read_text()
    assert "Traceback" not in text, text
    for case in cases:
        if case.cause is not None:
            assert f"source={case.name} url=" in text, case.name
    assert returncode == 0, text
    store = Store(load_config(config).settings.database)
    try:
        for name, server in hosts.items():
            state = store.source_state(name)
            assert state is not None and state.url is not None
            assert state.host_not_before is not None, name
            assert state.host_not_before > datetime.now(UTC) + timedelta(hours=1), name
            assert server.hits(urlsplit(state.url).path) == 1, name  # and not asked again
        good = store.source_state("good-1")
        assert good is not None and good.host_not_before is None
    finally:
        store.close()


# -- hostile scheduling headers, as plain values ---------------------------------------

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "header, delay",
    [
        ("120", timedelta(seconds=120)),
        ("000000000000120", timedelta(seconds=120)),
        ("9" * 30, MAX_RETRY_AFTER),
        ("9" * 5000, MAX_RETRY_AFTER),  # past int()'s digit limit
        ("Wed, 21 Oct 2099 07:28:00 GMT", MAX_RETRY_AFTER),
        ("Wed, 21 Oct 99999 07:28:00 GMT", None),
        ("Mon, 01 Jan 1900 00:00:00 GMT", timedelta(0)),
        ("²", None),  # a digit to str.isdigit(), not to int()
        ("٣", None),
        ("-5", None),
        ("1e9", None),
        ("", None),
    ],
)
def test_retry_after_of_any_shape_is_a_bounded_delay_or_none(
    header: str, delay: timedelta | None
) -> None:
    assert parse_retry_after(header, NOW) == delay


@pytest.mark.parametrize(
    "header, delay",
    [
        ("public, max-age=600", timedelta(seconds=600)),
        ("max-age=" + "9" * 5000, timedelta(days=365)),
        ("max-age=99999999999999999999", timedelta(days=365)),
        ("max-age=٣", None),
        ("max-age=600, no-store", None),
    ],
)
def test_cache_control_max_age_of_any_shape_is_a_bounded_delay_or_none(
    header: str, delay: timedelta | None
) -> None:
    assert parse_max_age(header) == delay
