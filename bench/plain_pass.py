"""One pass of a plain feedparser-and-SQLite loop over the benchmark's feeds: the baseline.

    .venv/bin/python bench/plain_pass.py DB FEEDS.txt [--concurrency 10] [--workers 2]

The issue that set the targets says such a loop "already reaches about 7 and 6.5 times"
reader's cold and all-304 rates; this measures that claim in the same run as both tools.
It is what a competent afternoon's script does and no more: httpx fetches with conditional
requests (the stored ETag and Last-Modified), feedparser parses in a process pool of
`workers` (JSON Feed, which feedparser does not read, by `json`), and stdlib sqlite3 (WAL,
synchronous=NORMAL) keeps each feed's validators and upserts its entries by id, one
transaction per feed. No sanitising beyond feedparser's own, no story matching, no
scheduling, no politeness per host.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import feedparser
import httpx

SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT);
CREATE TABLE IF NOT EXISTS entries (
    feed TEXT NOT NULL, id TEXT NOT NULL, title TEXT, link TEXT, published TEXT,
    summary TEXT, content TEXT, PRIMARY KEY (feed, id)
);
"""

Row = tuple[str, str | None, str | None, str | None, str | None, str | None]


def parse(body: bytes, url: str, content_type: str) -> list[Row]:
    if "json" in content_type:
        items = json.loads(body).get("items", [])
        return [
            (
                str(item.get("id") or item.get("url")),
                item.get("title"),
                item.get("url"),
                item.get("date_published"),
                item.get("summary"),
                item.get("content_html") or item.get("content_text"),
            )
            for item in items
        ]
    parsed = feedparser.parse(body, response_headers={"content-location": url})
    rows: list[Row] = []
    for entry in parsed.entries:
        content = entry.get("content")
        rows.append(
            (
                entry.get("id") or entry.get("link") or entry.get("title") or "",
                entry.get("title"),
                entry.get("link"),
                entry.get("published") or entry.get("updated"),
                entry.get("summary"),
                content[0].get("value") if content else None,
            )
        )
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("feeds", type=Path)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    db = sqlite3.connect(args.db, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    validators = {
        url: (etag, modified)
        for url, etag, modified in db.execute("SELECT url, etag, last_modified FROM feeds")
    }
    urls = args.feeds.read_text().split()
    queue: asyncio.Queue[str] = asyncio.Queue()
    for url in urls:
        queue.put_nowait(url)
    counts = {"parsed": 0, "not_modified": 0, "failed": 0, "entries": 0}
    loop = asyncio.get_running_loop()

    def store(url: str, response: httpx.Response, rows: list[Row]) -> None:
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (feed, id) DO UPDATE "
            "SET title=excluded.title, link=excluded.link, published=excluded.published, "
            "summary=excluded.summary, content=excluded.content",
            [(url, *row) for row in rows],
        )
        db.execute(
            "INSERT OR REPLACE INTO feeds VALUES (?, ?, ?)",
            (url, response.headers.get("etag"), response.headers.get("last-modified")),
        )
        db.execute("COMMIT")

    async def worker(client: httpx.AsyncClient, pool: ProcessPoolExecutor) -> None:
        while not queue.empty():
            url = queue.get_nowait()
            headers: dict[str, Any] = {}
            etag, modified = validators.get(url, (None, None))
            if etag:
                headers["if-none-match"] = etag
            if modified:
                headers["if-modified-since"] = modified
            try:
                response = await client.get(url, headers=headers)
                if response.status_code == 304:
                    counts["not_modified"] += 1
                    continue
                response.raise_for_status()
                rows = await loop.run_in_executor(
                    pool, parse, response.content, url, response.headers.get("content-type", "")
                )
                store(url, response, rows)
            except Exception as error:  # a baseline: count it and go on
                counts["failed"] += 1
                print(f"{url}: {error!r}", file=sys.stderr)
                continue
            counts["parsed"] += 1
            counts["entries"] += len(rows)

    timeout = httpx.Timeout(30.0)
    limits = httpx.Limits(max_connections=args.concurrency)
    with ProcessPoolExecutor(args.workers) as pool:
        async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
            await asyncio.gather(*(worker(client, pool) for _ in range(args.concurrency)))
    stored = db.execute("SELECT count(*) FROM entries").fetchone()[0]
    print(
        f"plain: feeds parsed={counts['parsed']} not_modified={counts['not_modified']} "
        f"failed={counts['failed']}; entries seen={counts['entries']} stored={stored}"
    )
    sys.exit(1 if counts["failed"] else 0)


if __name__ == "__main__":
    asyncio.run(main())
