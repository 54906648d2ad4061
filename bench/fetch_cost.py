"""CPU and time of `aggregator.fetch.Fetcher` alone: full fetches (200s), then conditional
ones (304s), over the benchmark corpus served on many loopback addresses.

    .venv/bin/python bench/fetch_cost.py [--feeds 2000] [--hosts 300] [--concurrency 10,20,50]
                                         [--rounds 3]

No parsing and no store: what the HTTP client costs per request is measured apart from
everything else a poll does, at several settings of `concurrency` (requests at once; the
per-host cap stays at its default of 2). The feed server runs in its own process; the
figures are this process's CPU only. Prints, per concurrency, the median over the rounds
of feeds/s and CPU milliseconds per request for each kind of pass.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(BENCH)]

import gencorpus  # noqa: E402
from run import FeedServer  # noqa: E402

from aggregator.fetch import NO_VALIDATORS, Fetcher, FetchResponse, Validators  # noqa: E402

OUT = BENCH / "out" / "fetch-cost"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@contextmanager
def served_corpus(out: Path, feeds: int, hosts: int, port: int) -> Iterator[list[str]]:
    """The bench corpus (seed 1, dated NOW) written afresh into `out` and served on
    `hosts` loopback addresses; yields its feed URLs, and stops the server after."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    gencorpus.write(gencorpus.generate(feeds, 1, NOW), out, port, hosts)
    urls = (out / "feeds.txt").read_text().split()
    server = FeedServer(port, hosts, gzip=False, directory=out)
    try:
        yield urls
    finally:
        server.stop()


async def one_pass(
    urls: list[str], concurrency: int, validators: dict[str, Validators]
) -> tuple[float, float, list[FetchResponse]]:
    """Fetch every URL once; (wall seconds, CPU seconds, responses)."""
    async with Fetcher(
        user_agent="aggregator-bench", timeout=30.0, max_bytes=10_000_000, concurrency=concurrency
    ) as fetcher:
        started, cpu = time.perf_counter(), time.process_time()
        responses = await asyncio.gather(
            *(fetcher.fetch(url, url, validators.get(url, NO_VALIDATORS)) for url in urls)
        )
        return time.perf_counter() - started, time.process_time() - cpu, list(responses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=300)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--concurrency", default="10,20,50")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with served_corpus(OUT, args.feeds, args.hosts, args.port) as urls:
        print(f"{len(urls)} feeds on {args.hosts} loopback addresses; {args.rounds} rounds each")
        print(f"{'concurrency':>11}  {'pass':<5} {'feeds/s':>8} {'CPU ms/request':>15}")
        for concurrency in [int(value) for value in args.concurrency.split(",")]:
            for kind in ("200", "304"):
                walls, cpus = [], []
                for _ in range(args.rounds):
                    known: dict[str, Validators] = {}
                    if kind == "304":
                        _, _, first = asyncio.run(one_pass(urls, concurrency, {}))
                        known = {response.url: response.validators for response in first}
                    wall, cpu, responses = asyncio.run(one_pass(urls, concurrency, known))
                    statuses = {response.status for response in responses}
                    if statuses != {int(kind)}:
                        sys.exit(f"expected only {kind}s, got statuses {sorted(statuses)}")
                    walls.append(wall)
                    cpus.append(cpu)
                wall, cpu = statistics.median(walls), statistics.median(cpus)
                print(
                    f"{concurrency:>11}  {kind:<5} {len(urls) / wall:>8,.0f} "
                    f"{cpu / len(urls) * 1000:>15.2f}"
                )


if __name__ == "__main__":
    main()
