"""One fetch and parse of one URL in a process of its own, measured.

    python tests/faultprobe.py URL [--allow-private] [--timeout S] [--max-bytes N]

Prints one JSON object: the outcome (entries parsed, or the error message), the
seconds taken, the growth of the process's peak resident memory over the fetch
and parse (what a hostile source costs the poller, C libraries included), the
tracemalloc peak (Python objects alone), and every secret or expansion marker
found in what was parsed. Host names listed in `--resolve NAME=IP` resolve there,
so a public-looking name can point at a local server without DNS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hostile import EXPANSION_MARKERS, SECRETS

from aggregator.fetch import Fetcher, FetchError
from aggregator.parse import ParseError, parse_document


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--allow-private", action="store_true")
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--max-bytes", type=int, default=2_000_000)
    parser.add_argument("--resolve", action="append", default=[])
    args = parser.parse_args()
    hosts = dict(item.split("=", 1) for item in args.resolve)

    async def resolver(host: str, port: int) -> list[str]:
        if host in hosts:
            return [hosts[host]]
        raise OSError(f"no address for {host} in this test")

    async def fetch_and_parse() -> tuple[str, int, str]:
        async with Fetcher(
            user_agent="aggregator-faultprobe/1",
            timeout=args.timeout,
            max_bytes=args.max_bytes,
            resolver=resolver,
        ) as fetcher:
            response = await fetcher.fetch("probe", args.url, allow_private=args.allow_private)
        feed = parse_document(
            response.body,
            url=response.final_url,
            content_type=response.content_type,
            source="probe",
        )
        text = repr(feed)
        return "ok", len(feed.entries), text

    rss_before = peak_rss()
    tracemalloc.start()
    started = time.monotonic()
    try:
        outcome, entries, text = asyncio.run(fetch_and_parse())
    except (FetchError, ParseError) as error:
        outcome, entries, text = str(error), 0, str(error)
    elapsed = time.monotonic() - started
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        json.dumps(
            {
                "outcome": outcome,
                "entries": entries,
                "seconds": round(elapsed, 3),
                "rss_growth": max(0, peak_rss() - rss_before),
                "traced_peak": traced_peak,
                "found": [m for m in (*SECRETS, *EXPANSION_MARKERS) if m in text],
            }
        )
    )


if __name__ == "__main__":
    main()
