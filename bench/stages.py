"""CPU of each stage of a pass, measured apart in one process over the bench corpus.

    .venv/bin/python bench/stages.py [--feeds 2000] [--seed 1] [--group 25] [--statements]

A pass spreads its work over the event loop, two parser workers and one writer thread,
which share two cores (and the poller and its writer one GIL), so a profile of a pass
shows time spent waiting as much as time spent working. This takes the stages apart,
one after the other in this process, over the corpus bench/run.py generates:

- parse: `parse.parse_document` of every document;
- prepare: `dedupe.prepare` of every document's entries (identity, hashes, fingerprints);
- write cold: `Store.record_polls` of every document into an empty SQLite file, in
  groups of up to WRITE_BACKLOG entries, as a cold pass's writer finds them queued;
- write changed: bench/run.py's third pass (10% of the feeds changed, 304s for the
  rest) on that store, in groups of `--group` polls and again one poll at a time.

Prints CPU seconds and µs per entry of each stage, and with --statements the time
spent in each kind of SQL statement of the cold write. Nothing is served or fetched
(bench/fetch_cost.py measures the HTTP client alone).
"""

from __future__ import annotations

import argparse
import collections
import functools
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

import gencorpus  # noqa: E402
from run import print_rows  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from aggregator.config import load_config  # noqa: E402
from aggregator.dedupe import PreparedEntry, prepare  # noqa: E402
from aggregator.model import ParsedFeed, PollRecord  # noqa: E402
from aggregator.parse import parse_document  # noqa: E402
from aggregator.poll import WRITE_BACKLOG  # noqa: E402
from aggregator.store import Store  # noqa: E402

CHANGED_SHARE = 0.1
T = TypeVar("T")


def documents(corpus: gencorpus.Corpus) -> dict[str, tuple[str, bytes, str]]:
    """Source name -> (URL, bytes, content type) of every feed of `corpus`."""
    found = {}
    for feed in corpus.feeds:
        content_type = "application/feed+json" if feed.format == "json" else "application/xml"
        body = gencorpus.RENDERERS[feed.format](feed).encode("utf-8")
        found[f"f{feed.number:04d}"] = (gencorpus.feed_url(feed, 8765, 300), body, content_type)
    return found


def timed(label: str, count: int, unit: str, work: Callable[[], T], rows: list[list[str]]) -> T:
    """Run `work`, adding its wall and CPU seconds and its CPU per `unit` to `rows`."""
    started, cpu = time.perf_counter(), time.process_time()
    result = work()
    seconds, used = time.perf_counter() - started, time.process_time() - cpu
    rows.append([label, f"{seconds:.2f}", f"{used:.2f}", f"{used / count * 1e6:,.0f} µs/{unit}"])
    return result


def groups_by_entries(records: Sequence[PollRecord], limit: int) -> list[list[PollRecord]]:
    groups: list[list[PollRecord]] = [[]]
    entries = 0
    for record in records:
        size = len(record.feed.entries) if record.feed is not None else 0
        if groups[-1] and entries + size > limit:
            groups.append([])
            entries = 0
        groups[-1].append(record)
        entries += size
    return groups


def record_all(store: Store, groups: Sequence[Sequence[PollRecord]]) -> int:
    return sum(counts.new for group in groups for counts in store.record_polls(group))


def poll_of(
    name: str, when: datetime, prepared: tuple[ParsedFeed, tuple[PreparedEntry, ...]] | None
) -> PollRecord:
    later = when + timedelta(hours=1)
    if prepared is None:
        return PollRecord(source=name, polled_at=when, status="not_modified", next_poll_at=later)
    feed, entries = prepared
    return PollRecord(
        source=name, polled_at=when, status="ok", next_poll_at=later, feed=feed, prepared=entries
    )


@contextmanager
def statement_times() -> Iterator[collections.Counter[str]]:
    """Seconds spent in each kind of statement (IN lists and VALUES rows folded) meanwhile."""
    spent: collections.Counter[str] = collections.Counter()
    started: dict[int, float] = {}

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        started[id(cursor)] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        kind = re.sub(r"\?(, \?)*", "…", " ".join(statement.split()))
        kind = re.sub(r"\(…\)(, \(…\))+", "(…), …", kind)
        spent[kind[:100]] += time.perf_counter() - started.pop(id(cursor))

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    try:
        yield spent
    finally:
        event.remove(Engine, "before_cursor_execute", before)
        event.remove(Engine, "after_cursor_execute", after)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--group", type=int, default=25, help="polls per write, changed pass")
    parser.add_argument("--statements", action="store_true", help="time each kind of statement")
    args = parser.parse_args()

    now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    corpus = gencorpus.generate(args.feeds, args.seed, now)
    later = gencorpus.changed(corpus, CHANGED_SHARE, args.seed, now)
    first, second = documents(corpus), documents(later)
    changed = {name for name in first if first[name][1] != second[name][1]}
    entries = corpus.entries
    rows: list[list[str]] = []

    def parse(name: str, docs: dict[str, tuple[str, bytes, str]]) -> ParsedFeed:
        url, body, content_type = docs[name]
        return parse_document(body, url=url, content_type=content_type, source=name)

    feeds = timed("parse", entries, "entry", lambda: {n: parse(n, first) for n in first}, rows)
    prepared = timed(
        "prepare",
        entries,
        "entry",
        lambda: {name: (feed, prepare(feed.entries)) for name, feed in feeds.items()},
        rows,
    )
    with tempfile.TemporaryDirectory(prefix="aggregator-stages-") as folder:
        directory = Path(folder)
        config_path = directory / "aggregator.toml"
        config_path.write_text(gencorpus.render_config(corpus, 8765, 300, "cold.db"))
        config = load_config(config_path)
        store = Store(config.settings.database)
        store.upgrade()
        store.sync_sources(config.sources.values())
        cold = [poll_of(name, now, prepared[name]) for name in first]
        with statement_times() as spent:
            stored = timed(
                "write cold",
                entries,
                "entry",
                lambda: record_all(store, groups_by_entries(cold, WRITE_BACKLOG)),
                rows,
            )
        store.close()

        fresh = {name: parse(name, second) for name in changed}
        changed_entries = sum(len(feed.entries) for feed in fresh.values())
        when = now + timedelta(hours=2)
        polls = [
            poll_of(
                name, when, (fresh[name], prepare(fresh[name].entries)) if name in fresh else None
            )
            for name in second
        ]
        for label, size in (
            (f"write changed, {args.group} a group", args.group),
            ("one by one", 1),
        ):
            shutil.copy(directory / "cold.db", directory / "changed.db")
            store = Store(f"sqlite:///{directory / 'changed.db'}")
            groups = [polls[start : start + size] for start in range(0, len(polls), size)]
            work = functools.partial(record_all, store, groups)
            timed(label, len(polls), "poll", work, rows)
            store.close()

    print(
        f"{len(first):,} feeds, {entries:,} entries ({stored:,} stored); changed pass: "
        f"{len(changed)} documents, {changed_entries:,} entries, {len(first) - len(changed)} 304s\n"
    )
    print_rows(["stage", "wall s", "CPU s", "CPU"], rows)
    if args.statements:
        print("\nSQL statements of the cold write, by kind (seconds, inside the driver):")
        for kind, seconds in spent.most_common(12):
            print(f"  {seconds:6.2f}  {kind}")


if __name__ == "__main__":
    main()
