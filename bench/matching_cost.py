"""Cost per entry of story matching against a store of 1k / 10k / 100k stories.

    .venv/bin/python bench/matching_cost.py [--sizes 1000,10000,100000] [--probe 200]
                                            [--db-url postgresql+psycopg://…/db]

For each size, a fresh database (SQLite in bench/out/, or the --db-url database, which is
emptied first) is filled through Store.record_poll with that many stories from 100
sources: generated articles with specific titles, 40-word texts and dates over the last
30 days. Then probe documents of new entries from sources the store has not seen are
recorded and timed, each entry of a probe being one of:

- new: an article nobody carried (all its keys are looked up and miss),
- by link: a copy of a stored story under a tracking-parameter variant of its link,
- by likeness: a copy under its own URL with the stored story's title and text, which
  only the candidate keys (title, lead, MinHash bands) can find.

It prints per size the fill rate and the probe's cost per entry: the whole record_poll
(one transaction: lookups, fingerprints, inserts) and the pure part of it alone
(fingerprint + candidate keys), with the share of probe entries that matched as built.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from sqlalchemy import func, select  # noqa: E402

from aggregator import dedupe  # noqa: E402
from aggregator.model import ParsedEntry, ParsedFeed, PollRecord  # noqa: E402
from aggregator.store import Store, match_keys, metadata  # noqa: E402

OUT = REPO / "bench" / "out"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
FILL_SOURCES = 100
DOCUMENT = 1000
PROBE_ROUNDS = 3


@dataclass(frozen=True)
class Source:
    name: str
    url: str | None = None
    path: Path | None = None
    title: str | None = None
    enabled: bool = True


@dataclass
class Corpus:
    rng: random.Random
    vocabulary: list[str] = field(default_factory=list)
    made: list[ParsedEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
        words = {
            "".join(self.rng.choice(syllables) for _ in range(self.rng.randint(2, 4)))
            for _ in range(8000)
        }
        self.vocabulary = sorted(words)

    def article(self, serial: int) -> ParsedEntry:
        words = self.rng.choices(self.vocabulary, k=46)
        title = " ".join(words[:6]).capitalize()
        text = " ".join(words[6:])
        published = NOW - timedelta(minutes=self.rng.randrange(30 * 24 * 60))
        made = ParsedEntry(
            guid=f"tag:bench,2025:{serial}",
            link=f"https://site{serial % 997}.example/{serial}/{'-'.join(words[:4])}",
            title=title,
            summary=f"<p>{text}.</p>",
            published=published,
        )
        self.made.append(made)
        return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--probe", type=int, default=200, help="entries per probe document")
    parser.add_argument("--db-url", default=None, help="a database to use (emptied first)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(
        "| stories | fill entries/s | match_keys rows | record_poll ms/entry "
        "| of which fingerprint ms/entry | matched as built |"
    )
    print("|---|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        print(measure(size, args.probe, args.db_url, args.seed), flush=True)


def measure(size: int, probe: int, db_url: str | None, seed: int) -> str:
    url = db_url or f"sqlite:///{OUT / f'matching-{size}.db'}"
    if db_url is None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{OUT / f'matching-{size}.db'}{suffix}").unlink(missing_ok=True)
    store = Store(url)
    if db_url is not None:
        metadata.drop_all(store._engine)
        with store._engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    store.upgrade()
    corpus = Corpus(random.Random(seed))
    fill_names = [f"fill{n:03d}" for n in range(FILL_SOURCES)]
    probe_names = [f"probe{n}" for n in range(PROBE_ROUNDS)]
    store.sync_sources(Source(name) for name in [*fill_names, *probe_names])
    started = time.perf_counter()
    serial = 0
    for start in range(0, size, DOCUMENT):
        batch = [corpus.article(serial + i) for i in range(min(DOCUMENT, size - start))]
        serial += len(batch)
        name = fill_names[(start // DOCUMENT) % FILL_SOURCES]
        store.record_poll(_poll(name, batch, NOW + timedelta(seconds=start)))
    fill_rate = size / (time.perf_counter() - started)
    with store._engine.connect() as conn:
        key_rows = conn.scalar(select(func.count()).select_from(match_keys))

    timings, pure, matched = [], [], []
    for round_number, name in enumerate(probe_names):
        document, expected = _probe(corpus, probe, serial + round_number * probe)
        began = time.perf_counter()
        for item in document:
            dedupe.candidate_keys(dedupe.fingerprint(item, item.published or NOW))
        pure.append((time.perf_counter() - began) / len(document))
        began = time.perf_counter()
        counts = store.record_poll(
            _poll(name, document, NOW + timedelta(days=1, minutes=round_number))
        )
        timings.append((time.perf_counter() - began) / len(document))
        matched.append(counts.duplicates / expected if expected else 1.0)
    store.close()
    return (
        f"| {size:,} | {fill_rate:,.0f} | {key_rows:,} | {statistics.median(timings) * 1e3:.2f} "
        f"| {statistics.median(pure) * 1e3:.2f} | {min(matched):.0%} |"
    )


def _probe(corpus: Corpus, count: int, serial: int) -> tuple[list[ParsedEntry], int]:
    """A document: half new articles, a quarter copies by link, a quarter by likeness."""
    rng = corpus.rng
    # Distinct originals: a second copy of one story from the same source is refused by
    # likeness on purpose (a source does not republish itself).
    originals = iter(rng.sample(corpus.made, count // 2))
    document: list[ParsedEntry] = []
    copies = 0
    for n in range(count):
        if n % 4 in (0, 1):
            document.append(corpus.article(serial + n))
            continue
        original = next(originals)
        copies += 1
        if n % 4 == 2:
            link = f"{original.link}?utm_source=probe&utm_medium=rss"
        else:
            link = f"https://probe.example/{serial + n}"
        document.append(
            ParsedEntry(
                guid=f"tag:probe,2025:{serial + n}",
                link=link,
                title=original.title,
                summary=original.summary,
                published=original.published,
            )
        )
    return document, copies


def _poll(name: str, document: list[ParsedEntry], at: datetime) -> PollRecord:
    feed = ParsedFeed("rss20", title=name, link=f"https://{name}.example/", entries=tuple(document))
    return PollRecord(
        source=name, polled_at=at, status="ok", next_poll_at=at + timedelta(hours=1), feed=feed
    )


if __name__ == "__main__":
    main()
