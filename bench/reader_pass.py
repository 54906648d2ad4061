"""One update pass of the Python peer `reader` (lemon24) over the benchmark's feeds.

    bench/.venv-reader/bin/python bench/reader_pass.py DB FEEDS.txt [--add] [--workers 8]

Runs in reader's own virtual environment (bench/run.py creates it; reader is never a
dependency of aggregator). With --add it only subscribes to every URL in FEEDS.txt,
untimed by the caller. Otherwise it updates every feed, due or not (scheduled=False:
reader 3.27 would otherwise skip feeds updated less than an hour ago), with
`workers` threads, as shared/FACTS.md measured it, and prints one summary line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reader import make_reader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("feeds", type=Path)
    parser.add_argument("--add", action="store_true")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()

    reader = make_reader(str(args.db))
    if args.add:
        for url in args.feeds.read_text().split():
            reader.add_feed(url, exist_ok=True)
        print(f"subscribed: {reader.get_feed_counts().total} feeds")
        return
    new = modified = not_modified = parsed = failed = 0
    for result in reader.update_feeds_iter(scheduled=False, workers=args.workers):
        value = result.value
        if isinstance(value, Exception):
            failed += 1
        elif value is None:
            not_modified += 1
        else:
            parsed += 1
            new += value.new
            modified += value.modified
    print(
        f"reader: feeds parsed={parsed} not_modified={not_modified} failed={failed}; "
        f"entries new={new} modified={modified}"
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
