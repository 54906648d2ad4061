"""Crash safety: `kill -9` at random moments of polling loses nothing and duplicates nothing.

The poller (`aggregator poll --all`, and now and then `aggregator run`) is killed
many times at seeded random moments while it fetches, parses and writes feeds
that grow between runs. After every kill the database must be consistent
(integrity and foreign keys), every story id ever seen must still name the same
entries, and a last, uninterrupted poll must leave exactly the entries a clean
database gets from the same feeds, grouped into the same stories.

A poller killed while it holds claims leaves them in the database; the next
`poll` or `run` on the machine takes them back at once, since their owner is
known dead, instead of waiting out their lease.

Then the machine's own failures: another process holding SQLite's write lock, a
read-only disk and a full disk (a small tmpfs mounted for the test).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import pytest
from daemonproc import free_port, wait_until
from feedserver import FeedServer, Reply, Request

from aggregator.config import load_config
from aggregator.owners import new_owner, retire
from aggregator.poll import Poller, PollSummary, lease_for, new_fetcher, run_pass
from aggregator.store import Store

SEED = 4
KILLS = 14
SOURCES = 10


def text_of(guid: str) -> str:
    """200 words of an entry's own: no two entries' texts are alike, so only the
    shared links group entries into stories (issue 5's matcher joins equal texts
    of 30 words up whatever their titles, and which entries it joins then depends
    on the order they came in)."""
    words = random.Random(guid).choices(range(5000), k=200)
    return " ".join(f"w{word}" for word in words)


class GrowingFeeds:
    """SOURCES feeds that gain three entries per generation; every third entry is a
    story that all sources carry (same link), the rest their own."""

    def __init__(self, server: FeedServer, sources: int = SOURCES) -> None:
        self.generation = 0
        self.lock = threading.Lock()
        # Cleared, every request waits (up to a minute) until it is set again.
        self.gate = threading.Event()
        self.gate.set()
        for number in range(sources):
            server.handler(f"/feed/{number}", self.handler(number))

    def entries(self, source: int, generation: int | None = None) -> list[tuple[str, str]]:
        upto = 6 + 3 * (self.generation if generation is None else generation)
        return [
            (
                f"s{source}-e{n}",
                f"http://story.example/{n}" if n % 3 == 0 else f"http://s{source}.example/{n}",
            )
            for n in range(upto)
        ]

    def document(self, source: int) -> bytes:
        items = "".join(
            f"<item><guid>{guid}</guid><title>Story {guid}</title><link>{link}</link>"
            f"<description>{text_of(guid)}</description>"
            f"<pubDate>Mon, 0{1 + n % 9} Jan 2024 10:00:00 GMT</pubDate></item>"
            for n, (guid, link) in enumerate(self.entries(source))
        )
        return (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>Source {source}</title>'
            f"<link>http://s{source}.example/</link><description>d</description>{items}"
            "</channel></rss>"
        ).encode()

    def handler(self, source: int):  # type: ignore[no-untyped-def]
        def serve(request: Request) -> Reply:
            self.gate.wait(timeout=60)
            # A little latency, different per source, spreads the writes over time.
            return Reply(
                body=self.document(source),
                headers={"Content-Type": "application/rss+xml"},
                delay=0.02 * (source % 5),
            )

        return serve


def write_config(folder: Path, server: FeedServer, database: Path) -> Path:
    port = free_port()
    lines = [
        "[aggregator]",
        f'database = "sqlite:///{database}"',
        f'listen = "127.0.0.1:{port}"',
        f'base_url = "http://127.0.0.1:{port}"',
        'timeout = "5s"',
        # `run` spreads first polls over the interval (a minute at most): a short one
        # makes it poll within a second or two, as `poll --all` does at once.
        'interval = "1s"',
        'min_interval = "1s"',
        "",
    ]
    for number in range(SOURCES):
        lines += [f"[sources.s{number}]", f'url = "{server.url(f"/feed/{number}")}"', ""]
    path = folder / f"{database.stem}.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def aggregator(config: Path, *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    """`aggregator ARGS`, its log in `log` (for long runs: a pipe nobody reads fills up)."""
    sink = log.open("ab") if log is not None else None
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "aggregator", "--config", str(config), *args],
            stdout=subprocess.DEVNULL,
            stderr=sink or subprocess.PIPE,
            env={**os.environ, "AGGREGATOR_TICK": "0.2"},
        )
    finally:
        if sink is not None:
            sink.close()


def claims(database: Path) -> dict[str, str]:
    """Source name → the poller holding it."""
    with closing(sqlite3.connect(database, timeout=10)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "sources" not in tables:
            return {}
        return {
            str(name): str(owner)
            for name, owner in conn.execute(
                "SELECT name, claimed_by FROM sources WHERE claimed_by IS NOT NULL"
            )
        }


def consistency_problems(database: Path) -> list[str]:
    problems: list[str] = []
    with closing(sqlite3.connect(database)) as conn:
        (integrity,) = conn.execute("PRAGMA integrity_check").fetchone()
        if integrity != "ok":
            problems.append(f"integrity_check: {integrity}")
        problems += [f"foreign key: {row}" for row in conn.execute("PRAGMA foreign_key_check")]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "entries" not in tables:
            return problems  # killed before the first migration finished: nothing to check
        problems += [
            f"story {uid} shows entry {face}, which is not one of its own"
            for uid, face in conn.execute(
                "SELECT s.uid, s.face_entry_id FROM stories s WHERE NOT EXISTS "
                "(SELECT 1 FROM entries e WHERE e.id = s.face_entry_id AND e.story_id = s.id)"
            )
        ]
        problems += [
            f"story {uid} has no entry"
            for (uid,) in conn.execute(
                "SELECT uid FROM stories s WHERE NOT EXISTS "
                "(SELECT 1 FROM entries e WHERE e.story_id = s.id)"
            )
        ]
        problems += [
            f"sources {name} has entries from a poll it has no record of"
            for (name,) in conn.execute(
                "SELECT s.name FROM sources s WHERE s.last_polled_at IS NULL AND EXISTS "
                "(SELECT 1 FROM entries e WHERE e.source_id = s.id)"
            )
        ]
    return problems


def story_of_entry(database: Path) -> dict[tuple[str, str], str]:
    """(source, entry guid) → the uid of its story: what output ids are made of."""
    with closing(sqlite3.connect(database)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "entries" not in tables:
            return {}
        rows = conn.execute(
            "SELECT src.name, e.guid, st.uid FROM entries e "
            "JOIN sources src ON src.id = e.source_id JOIN stories st ON st.id = e.story_id"
        ).fetchall()
    mapping: dict[tuple[str, str], str] = {}
    for source, guid, uid in rows:
        key = (str(source), str(guid).rsplit("/", 1)[-1])
        assert key not in mapping, f"entry {key} stored twice"
        mapping[key] = str(uid)
    return mapping


def grouping(mapping: dict[tuple[str, str], str]) -> set[frozenset[tuple[str, str]]]:
    """The partition of entries into stories, whatever the stories' ids."""
    groups: dict[str, set[tuple[str, str]]] = {}
    for entry, uid in mapping.items():
        groups.setdefault(uid, set()).add(entry)
    return {frozenset(group) for group in groups.values()}


@pytest.mark.slow
def test_kill_9_during_polling_loses_and_duplicates_nothing(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feeds = GrowingFeeds(feed_server)
    database = tmp_path / "killed.db"
    config = write_config(tmp_path, feed_server, database)
    chance = random.Random(SEED)
    seen: dict[tuple[str, str], str] = {}
    kills: list[str] = []
    for round_number in range(KILLS):
        feeds.generation = round_number
        command = ("run",) if round_number % 4 == 3 else ("poll", "--all")
        process = aggregator(config, *command)
        # The daemon takes longer to start (uvicorn, the scheduler) and spreads first
        # polls over the 1 s interval: later moments, or it would die before polling.
        moment = chance.uniform(0.3, 2.5) + (1.5 if command == ("run",) else 0.0)
        time.sleep(moment)
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills.append(f"{' '.join(command)} at {moment:.2f}s")
        assert consistency_problems(database) == [], kills
        current = story_of_entry(database)
        for entry, uid in seen.items():
            # An entry, once stored, is never lost, and its story id never changes.
            assert current.get(entry) == uid, (entry, kills)
        seen = current

    finished = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), "poll", "--all"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    assert "Traceback" not in finished.stderr
    final = story_of_entry(database)
    assert consistency_problems(database) == []
    expected = {
        (f"s{source}", guid) for source in range(SOURCES) for guid, _ in feeds.entries(source)
    }
    assert set(final) == expected  # nothing lost, nothing extra
    for entry, uid in seen.items():
        assert final[entry] == uid

    # A database that was never killed, polled once at the same generation.
    clean = tmp_path / "clean.db"
    clean_config = write_config(tmp_path, feed_server, clean)
    subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(clean_config), "poll", "--all"],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert grouping(final) == grouping(story_of_entry(clean))

    # Output ids survive one more uninterrupted poll unchanged.
    out_before, out_after = tmp_path / "before", tmp_path / "after"
    for out in (out_before, out_after):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "aggregator",
                "--config",
                str(config),
                "build",
                "--out",
                str(out),
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
        if out is out_before:
            subprocess.run(
                [sys.executable, "-m", "aggregator", "--config", str(config), "poll", "--all"],
                capture_output=True,
                timeout=120,
                check=True,
            )
    ids = [
        [item["id"] for item in json.loads((out / "all.json").read_bytes())["items"]]
        for out in (out_before, out_after)
    ]
    assert ids[0] == ids[1] and len(ids[0]) == len(set(ids[0])) > 0


def test_claims_of_a_killed_poller_are_taken_back_by_the_next_poll_and_run(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feeds = GrowingFeeds(feed_server)
    database = tmp_path / "claimed.db"
    config = write_config(tmp_path, feed_server, database)
    try:
        # `poll --all` claims every source, then waits on the feeds; killed there.
        feeds.gate.clear()
        process = aggregator(config, "poll", "--all")
        wait_until(lambda: len(claims(database)) == SOURCES, 30, "poll claiming every source")
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert {owner.split(":")[0] for owner in claims(database).values()} == {"cli"}
        feeds.gate.set()
        result = poll(config)
        assert result.returncode == 0, result.stderr
        assert f"sources: {SOURCES} polled, {SOURCES} ok" in result.stdout
        assert len(story_of_entry(database)) == SOURCES * 6
        assert claims(database) == {}

        # The daemon too: killed holding its claims, restarted, it polls at once.
        feeds.generation = 1
        feeds.gate.clear()
        process = aggregator(config, "run")
        wait_until(lambda: len(claims(database)) == SOURCES, 30, "run claiming every source")
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert {owner.split(":")[0] for owner in claims(database).values()} == {"run"}
        feeds.gate.set()
        log = tmp_path / "restarted.log"
        process = aggregator(config, "run", log=log)
        try:
            # Leases last ten minutes: only a takeover gets the new entries in time.
            wait_until(
                lambda: len(story_of_entry(database)) == SOURCES * 9,
                30,
                "the restarted daemon polling the killed one's sources",
                log,
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
        text = log.read_text()
        assert process.returncode == 0, text
        assert f"took back {SOURCES} claims of poller run:" in text, text
        assert "Traceback" not in text, text
    finally:
        feeds.gate.set()


# -- the machine's own failures --------------------------------------------------------


def poll(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), "poll", "--all"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "250"},
    )


@contextmanager
def write_lock_held(database: Path, seconds: float) -> Iterator[None]:
    """Another process holds SQLite's write lock for `seconds`."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(database)!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            f"time.sleep({seconds})\n"
            "c.execute('ROLLBACK')\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.wait(timeout=seconds + 30)


def test_poll_waits_out_a_short_write_lock_held_by_another_process(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feeds = GrowingFeeds(feed_server)
    database = tmp_path / "locked.db"
    config = write_config(tmp_path, feed_server, database)
    assert poll(config).returncode == 0
    feeds.generation = 1
    with write_lock_held(database, 2.0):
        result = poll(config)
    assert result.returncode == 0, result.stderr
    assert len(story_of_entry(database)) == SOURCES * 9


@pytest.mark.slow
def test_write_lock_held_past_the_busy_timeout_fails_clearly_and_the_next_poll_recovers(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feeds = GrowingFeeds(feed_server)
    database = tmp_path / "locked.db"
    config = write_config(tmp_path, feed_server, database)
    assert poll(config).returncode == 0
    before = story_of_entry(database)
    feeds.generation = 1
    with write_lock_held(database, 14.0):  # the store waits 10 s for a lock
        result = poll(config)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    # The command's first write (bringing the sources table up to date) meets the lock.
    expected = f"error: database sqlite:///{database}: database is locked"
    assert result.stderr.strip() == f"{expected} (another process holds the write lock)"
    assert story_of_entry(database) == before  # nothing half-written
    assert poll(config).returncode == 0
    assert len(story_of_entry(database)) == SOURCES * 9


# The database and its WAL peak near 5 MB while a pass stores generation 8 (measured:
# 1.4 MB of database, 3.5 MB of WAL before its checkpoint); the disk must hold that
# once the filler is gone, or "recovery" would only meet a disk too small.
FULL_DISK = "12m"


@contextmanager
def small_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for a full or read-only disk: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_read_only_disk_fails_each_source_clearly_and_loses_nothing(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feeds = GrowingFeeds(feed_server)
    with small_tmpfs(tmp_path / "disk", "20m") as disk:
        database = disk / "ro.db"
        config = write_config(tmp_path, feed_server, database)
        assert poll(config).returncode == 0
        before = story_of_entry(database)
        feeds.generation = 1
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        try:
            result = poll(config)
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr, result.stderr
        # In WAL mode SQLite cannot even open the file: it would create its -shm index.
        expected = f"error: database sqlite:///{database}: unable to open database file"
        assert result.stderr.strip() == f"{expected} (is its folder missing, read-only or full?)"
        assert story_of_entry(database) == before
        assert consistency_problems(database) == []
        assert poll(config).returncode == 0
        assert len(story_of_entry(database)) == SOURCES * 9


def test_full_disk_fails_the_writes_clearly_and_the_database_survives(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    feeds = GrowingFeeds(feed_server)
    with small_tmpfs(tmp_path / "disk", FULL_DISK) as disk:
        database = disk / "full.db"
        config = write_config(tmp_path, feed_server, database)
        assert poll(config).returncode == 0
        before = story_of_entry(database)
        filler = disk / "filler"
        with filler.open("wb") as sink:
            try:
                while True:
                    sink.write(bytes(64 * 1024))
                    sink.flush()
            except OSError:
                pass  # the disk is full
        feeds.generation = 8
        result = poll(config)
        assert result.returncode == 1, result.stdout
        assert "Traceback" not in result.stderr, result.stderr
        # SQLite says one or the other, depending on which file (database, WAL,
        # shared-memory index) the write that ran out of room was for.
        assert "database or disk is full" in result.stderr or ("disk I/O error" in result.stderr), (
            result.stderr
        )
        assert str(database) in result.stderr
        filler.unlink()
        assert consistency_problems(database) == []
        after = story_of_entry(database)
        assert all(after.get(entry) == uid for entry, uid in before.items())
        assert poll(config).returncode == 0
        assert len(story_of_entry(database)) == SOURCES * (6 + 3 * 8)


def test_disk_filling_up_under_a_running_poller_fails_each_source_clearly_then_recovers(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """The daemon's case: the store is open and working, and the sources are claimed,
    when the disk fills up. Each poll fails to record and keeps its claim; once
    there is room again the poller gives the claims back (the daemon does so before
    its next claim) and the sources are polled as if nothing had happened."""
    feeds = GrowingFeeds(feed_server)
    with small_tmpfs(tmp_path / "disk", FULL_DISK) as disk:
        database = disk / "live.db"
        config = load_config(write_config(tmp_path, feed_server, database))
        store = Store(config.settings.database)
        owner = new_owner("run")
        try:
            store.upgrade()
            store.sync_sources(config.sources.values())
            assert not asyncio.run(run_pass(config, store, force=True)).failed
            before = story_of_entry(database)
            now = datetime.now(UTC)
            states = store.claim_named(
                list(config.sources), now, owner=owner, lease=lease_for(config, SOURCES)
            )
            assert len(states) == SOURCES
            filler = disk / "filler"
            with filler.open("wb") as sink, suppress(OSError):
                while True:
                    sink.write(bytes(64 * 1024))
                    sink.flush()
            feeds.generation = 8

            async def poll_claimed() -> tuple[PollSummary, set[str]]:
                async with new_fetcher(config) as fetcher:
                    poller = Poller(config, store, fetcher, owner=owner)
                    summary = await poller.poll_pass(states)
                    kept = set(poller.unreleased)
                    filler.unlink()  # room again
                    assert await poller.release_unreleased() == SOURCES
                    assert poller.unreleased == set()
                return summary, kept

            summary, kept = asyncio.run(poll_claimed())
            assert len(summary.failed) == SOURCES
            for result in summary.failed:
                assert result.error is not None
                assert result.error.startswith(f"{result.source}: {result.url}: database error: ")
                assert "full" in result.error or "disk I/O error" in result.error, result.error
            assert kept == set(config.sources)
            assert claims(database) == {}
            assert story_of_entry(database) == before
            assert consistency_problems(database) == []
            assert not asyncio.run(run_pass(config, store, force=True)).failed
            assert len(story_of_entry(database)) == SOURCES * (6 + 3 * 8)
        finally:
            retire(owner)
            store.close()


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    queue = [pid]
    while queue:
        parent = queue.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            with suppress(OSError):
                children = {int(child) for child in task.read_text().split()}
                queue += sorted(children - found)
                found |= children
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_poller_killed_with_9_leaves_no_parser_process_behind(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Its parser workers (and the forkserver they keep alive) end with it: the kill
    gives the pool no chance to shut down, and they would otherwise wait for ever."""
    feeds = GrowingFeeds(feed_server)
    release = threading.Event()
    answer = feeds.handler(0)

    def held(request: Request) -> Reply:
        release.wait(30)  # one source holds the pass open until the poller is killed
        return answer(request)

    feed_server.handler("/feed/0", held)
    poller = aggregator(write_config(tmp_path, feed_server, tmp_path / "a.db"), "poll", "--all")
    try:
        # The forkserver and at least one worker: a document has been parsed.
        wait_until(lambda: len(_descendants(poller.pid)) >= 2, 60, "the parser pool")
        pool = _descendants(poller.pid)
        poller.kill()
        poller.wait()
        wait_until(
            lambda: not any(_running(pid) for pid in pool), 15, f"parser processes {pool} to end"
        )
    finally:
        release.set()
        if poller.poll() is None:
            poller.kill()
            poller.wait()
