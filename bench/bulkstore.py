"""A large store made directly, for timing `aggregator build` and the web server at scale.

    .venv/bin/python bench/bulkstore.py DIR [--stories 1000000] [--sources 2000] [--categories 50]

Writes DIR/aggregator.toml (the sources, each in one of the categories, all disabled so a
daemon started on it polls nothing) and DIR/store.db: the schema from the project's own
migrations, then sources, stories, entries and story keys inserted with plain sqlite3
in large transactions, which is tens of times faster than polling them in. One story in
twenty has a second copy from another source, so outputs show merged stories. Sort
times spread over 180 days before today. A DIR/stamp file names the parameters; a
store with the same stamp is reused.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from aggregator.store import Store  # noqa: E402

SPAN = timedelta(days=180)
SECOND_COPY_SHARE = 0.05
BATCH = 20_000
WORDS = [
    "workers",
    "strike",
    "union",
    "wages",
    "rent",
    "housing",
    "prices",
    "inflation",
    "crisis",
    "government",
    "election",
    "protest",
    "students",
    "teachers",
    "nurses",
    "hospital",
    "climate",
    "energy",
    "railway",
    "port",
    "factory",
    "miners",
    "parliament",
    "court",
    "reform",
    "army",
    "war",
    "peace",
    "refugees",
    "history",
    "solidarity",
    "international",
    "city",
]


def stamp_of(args: argparse.Namespace) -> str:
    return f"stories={args.stories} sources={args.sources} categories={args.categories} v2"


def write_config(out: Path, sources: int, categories: int) -> None:
    lines = ["[aggregator]", 'database = "sqlite:///store.db"', ""]
    for number in range(sources):
        lines += [
            f"[sources.s{number:05d}]",
            f'url = "http://127.0.0.1:9/feeds/{number:05d}.xml"',
            f'categories = ["c{number % categories:02d}"]',
            "enabled = false",
            "",
        ]
    (out / "aggregator.toml").write_text("\n".join(lines), encoding="utf-8")


def _sql_time(value: datetime) -> str:
    # How SQLAlchemy's DateTime stores naive UTC on SQLite (the store's UTCDateTime).
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def build(out: Path, stories: int, sources: int, categories: int, seed: int = 1) -> None:
    database = out / "store.db"
    database.unlink(missing_ok=True)
    store = Store(f"sqlite:///{database}")
    store.upgrade()
    store.close()
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    created = _sql_time(now)
    paragraphs = [" ".join(rng.choices(WORDS, k=rng.randint(40, 90))) for _ in range(2000)]
    titles = [" ".join(rng.choices(WORDS, k=rng.randint(5, 10))).title() for _ in range(5000)]
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO sources (id, name, configured_url, url, title, enabled, gone, error_count,"
        " configured, created_at, feed_title, site_link) VALUES (?,?,?,?,NULL,0,0,0,1,?,?,?)",
        [
            (
                number + 1,
                f"s{number:05d}",
                f"http://127.0.0.1:9/feeds/{number:05d}.xml",
                f"http://127.0.0.1:9/feeds/{number:05d}.xml",
                created,
                f"Source {number}",
                f"https://news{number:05d}.example.org/",
            )
            for number in range(sources)
        ],
    )
    conn.execute("COMMIT")
    entry_id = 0
    started = time.perf_counter()
    for first in range(0, stories, BATCH):
        story_rows, entry_rows, key_rows = [], [], []
        for story_id in range(first + 1, min(first + BATCH, stories) + 1):
            sort_time = now - SPAN * (story_id / stories) + timedelta(seconds=rng.random())
            source = rng.randrange(sources)
            slug = f"{story_id:07d}-{rng.randrange(10**6):06d}"
            link = f"https://news{source:05d}.example.org/2025/{slug}/"
            copies = [source]
            if rng.random() < SECOND_COPY_SHARE:
                copies.append((source + 1 + rng.randrange(sources - 1)) % sources)
            face = entry_id + 1
            title = rng.choice(titles)
            summary = f"<p>{rng.choice(paragraphs)}</p>"
            content = f"<p>{rng.choice(paragraphs)}</p><p>{rng.choice(paragraphs)}</p>"
            for copy, copy_source in enumerate(copies):
                entry_id += 1
                published = sort_time + timedelta(minutes=30 * copy)
                key = f"id:{link}" if copy == 0 else f"id:{link}#copy"
                entry_rows.append(
                    (
                        entry_id,
                        copy_source + 1,
                        story_id,
                        key,
                        uuid.UUID(int=rng.getrandbits(128)).hex,
                        link if copy == 0 else link + "#copy",
                        link if copy == 0 else link + "?utm_source=rss",
                        title,
                        summary,
                        content,
                        "Ana Souza",
                        _sql_time(published),
                        _sql_time(published),
                        _sql_time(published),
                        created,
                        json.dumps(["Strikes", "Wages"]),
                        "[]",
                        f"https://news{source:05d}.example.org/img/{slug}.jpg",
                        "A picket line",
                    )
                )
            story_rows.append(
                (
                    story_id,
                    "urn:uuid:" + str(uuid.UUID(int=rng.getrandbits(128))),
                    _sql_time(sort_time),
                    face,
                    created,
                    created,
                )
            )
            key_rows.append((f"url:{link.rstrip('/')}", story_id))
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO stories VALUES (?,?,?,?,?,?)", story_rows)
        conn.executemany(
            "INSERT INTO entries (id, source_id, story_id, entry_key, content_hash, guid, link,"
            " title, summary, content, author, published, updated, first_seen, last_seen, tags,"
            " enclosures, image_url, image_caption) VALUES"
            " (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            entry_rows,
        )
        conn.executemany("INSERT INTO story_keys VALUES (?,?)", key_rows)
        conn.execute("COMMIT")
        done = min(first + BATCH, stories)
        if done % 200_000 == 0 or done == stories:
            rate = done / (time.perf_counter() - started)
            print(f"  {done:,} stories ({rate:,.0f}/s)", flush=True)
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'data_version'")
    conn.execute("ANALYZE")
    conn.close()


def ensure(out: Path, stories: int, sources: int, categories: int) -> bool:
    """Build the store unless one with the same parameters exists; True when built."""
    args = argparse.Namespace(stories=stories, sources=sources, categories=categories)
    out.mkdir(parents=True, exist_ok=True)
    stamp = out / "stamp"
    write_config(out, sources, categories)
    if stamp.exists() and stamp.read_text() == stamp_of(args) and (out / "store.db").exists():
        return False
    stamp.unlink(missing_ok=True)
    build(out, stories, sources, categories)
    stamp.write_text(stamp_of(args))
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--stories", type=int, default=1_000_000)
    parser.add_argument("--sources", type=int, default=2000)
    parser.add_argument("--categories", type=int, default=50)
    args = parser.parse_args()
    started = time.perf_counter()
    built = ensure(args.dir, args.stories, args.sources, args.categories)
    verb = "built" if built else "reused"
    print(f"{verb} {args.dir / 'store.db'} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
