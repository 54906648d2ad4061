"""Does the database stay bounded under a steady feed? A simulated year on a fake clock.

    .venv/bin/python bench/retention_year.py                       # 100 sources × 20/day, 365 days
    .venv/bin/python bench/retention_year.py --days 120 --sources 50

Every simulated day each source is polled once (through the real `Store.record_poll`)
with a document listing its newest entries, `--per-day` of them new; a few sources
(`--long-lists`) list far more than the retention window holds, so pruned entries keep
being offered and must stay out (tombstones). Once a day `Store.prune` applies the
retention, as the daemon's daily job does. Every `--report-every` days the table shows
the SQLite file size (database + WAL, and the free pages SQLite will reuse) and the rows
of every table that grows with the entries. Nothing is vacuumed: the file must level
off by reusing the pages that pruning frees.

The figures are indicative: the machine is shared, and the clock is fake only for the
store (the time the pass takes is real).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aggregator.model import ParsedEntry, ParsedFeed, PollRecord
from aggregator.store import Store

START = datetime(2025, 1, 1, 6, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TABLES = (
    "stories",
    "entries",
    "entry_fingerprints",
    "match_keys",
    "story_keys",
    "tombstones",
    "polls",
    "poll_days",
)
WORDS = [
    "strike",
    "workers",
    "union",
    "pay",
    "port",
    "council",
    "housing",
    "rent",
    "vote",
    "minister",
    "protest",
    "march",
    "factory",
    "wages",
    "contract",
    "teachers",
    "nurses",
    "drivers",
    "court",
    "ruling",
    "energy",
    "prices",
    "budget",
    "election",
    "campaign",
    "climate",
    "river",
    "city",
    "region",
    "farmers",
    "harvest",
    "school",
    "hospital",
]


@dataclass
class Source:
    name: str
    listed: int  # entries its document lists (newest first)
    made: int = 0


def article(rng: random.Random, source: Source, n: int, at: datetime) -> ParsedEntry:
    words = [rng.choice(WORDS) for _ in range(rng.randint(50, 90))]
    title = " ".join(rng.choice(WORDS) for _ in range(7)).capitalize()
    return ParsedEntry(
        guid=f"{source.name}-{n}",
        link=f"https://{source.name}.example/{at:%Y/%m/%d}/{n}",
        title=f"{title} {n}",
        summary="<p>" + " ".join(words) + "</p>",
        published=at,
    )


def sizes(path: Path) -> tuple[int, int, int]:
    """(database bytes, WAL bytes, free pages × page size)."""
    wal = path.with_name(path.name + "-wal")
    with sqlite3.connect(path) as conn:
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return path.stat().st_size, wal.stat().st_size if wal.exists() else 0, free * page


def counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=100)
    parser.add_argument("--per-day", type=int, default=20, help="new entries per source a day")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--retention", type=int, default=30, help="days")
    parser.add_argument("--listed", type=int, default=50, help="entries a document lists")
    parser.add_argument("--long-lists", type=int, default=5, help="sources listing 40 days")
    parser.add_argument("--report-every", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="retention-")) if args.db is None else args.db.parent
    database = args.db or folder / "year.db"
    store = Store(f"sqlite:///{database}")
    store.upgrade()
    sources = [
        Source(f"s{i:03d}", args.listed if i >= args.long_lists else args.per_day * 40)
        for i in range(args.sources)
    ]

    @dataclass(frozen=True)
    class Stand:
        name: str
        url: str
        path: None = None
        title: None = None
        enabled: bool = True

    store.sync_sources([Stand(s.name, f"https://{s.name}.example/feed") for s in sources])
    documents: dict[str, list[ParsedEntry]] = {s.name: [] for s in sources}
    rng = random.Random(args.seed)
    retention = timedelta(days=args.retention)
    print(
        f"{args.sources} sources × {args.per_day} new entries/day ({args.long_lists} listing "
        f"{args.per_day * 40} entries, the rest {args.listed}), retention {args.retention}d, "
        f"{args.days} days; database {database}",
        flush=True,
    )
    header = (
        f"{'day':>4} {'db MB':>7} {'wal MB':>7} {'free MB':>8} "
        + " ".join(f"{t[:10]:>10}" for t in TABLES)
        + f" {'pruned':>8} {'s/day':>6} {'prune s':>7}"
    )
    print(header)
    started = time.monotonic()
    day_started = started
    last_report = 0
    prune_seconds = 0.0
    pruned_total = 0
    for day in range(1, args.days + 1):
        now = START + day * DAY
        for source in sources:
            doc = documents[source.name]
            for _ in range(args.per_day):
                source.made += 1
                at = now - timedelta(minutes=rng.randint(1, 24 * 60 - 1))
                doc.insert(0, article(rng, source, source.made, at))
            del doc[source.listed :]
            store.record_poll(
                PollRecord(
                    source=source.name,
                    polled_at=now,
                    status="ok",
                    next_poll_at=now + DAY,
                    feed=ParsedFeed("rss20", title=source.name, entries=tuple(doc)),
                    fetched_bytes=1500 * len(doc),
                    duration=0.1,
                )
            )
        pruning = time.monotonic()
        report = store.prune(now, retention)
        prune_seconds += time.monotonic() - pruning
        pruned_total += report.stories
        if day % args.report_every == 0 or day == args.days:
            db, wal, free = sizes(database)
            rows = counts(database)
            days_since = day - last_report
            elapsed = (time.monotonic() - day_started) / days_since
            print(
                f"{day:>4} {db / 1e6:>7.1f} {wal / 1e6:>7.1f} {free / 1e6:>8.1f} "
                + " ".join(f"{rows[t]:>10,}" for t in TABLES)
                + f" {pruned_total:>8,} {elapsed:>6.1f} {prune_seconds / days_since:>7.2f}",
                flush=True,
            )
            day_started, last_report, prune_seconds = time.monotonic(), day, 0.0
    store.close()
    total = time.monotonic() - started
    print(f"done in {total:.0f} s ({total / args.days:.2f} s per simulated day)")
    print(
        "pruned = stories pruned so far (their entries left tombstones); s/day = wall "
        "seconds per simulated day, polls and prune; prune s = of which the daily prune"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
