"""CPU per conditional request of the bare HTTP clients, httpx 0.x against httpx2, over the
benchmark corpus served on many loopback addresses.

    .venv/bin/python bench/client_cost.py [--feeds 2000] [--hosts 300] [--rounds 3]
                                          [--settings 10/100,20/20,20/100,100/100]

Each setting is IN_FLIGHT/POOL: that many requests at once (a semaphore, as a poller
bounds them) through one AsyncClient whose pool holds at most POOL connections (10/100 is
what a script gets with httpx's default limits; 20/20 is aggregator's default
`concurrency`). Every request is a GET with the ETag of an earlier answer, so all are
304s and the cost is the client's own. No aggregator code runs: bench/fetch_cost.py
measures `aggregator.fetch.Fetcher` on top of the client. httpx 0.x is installed with the
dev extras for bench/plain_pass.py; aggregator fetches with httpx2. The rounds of the two
clients alternate; prints the median CPU milliseconds per request and requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(BENCH)]

import httpx  # noqa: E402
import httpx2  # noqa: E402
from fetch_cost import served_corpus  # noqa: E402
from run import print_rows  # noqa: E402

OUT = BENCH / "out" / "client-cost"


async def conditional_pass(
    client_module: ModuleType, urls: list[str], in_flight: int, pool: int
) -> tuple[float, float]:
    """Fetch every URL once for its ETag, then time a pass of 304s: (wall s, CPU s)."""
    etags: dict[str, str] = {}
    gate = asyncio.Semaphore(in_flight)
    limits: Any = client_module.Limits(max_connections=pool, max_keepalive_connections=pool)
    async with client_module.AsyncClient(limits=limits, trust_env=False) as client:

        async def get(url: str) -> int:
            async with gate:
                headers = {"If-None-Match": etags[url]} if url in etags else {}
                response = await client.get(url, headers=headers)
                etags[url] = response.headers["etag"]
                return int(response.status_code)

        await asyncio.gather(*(get(url) for url in urls))
        started, cpu = time.perf_counter(), time.process_time()
        statuses = set(await asyncio.gather(*(get(url) for url in urls)))
        wall, used = time.perf_counter() - started, time.process_time() - cpu
    if statuses != {304}:
        sys.exit(f"expected only 304s, got {sorted(statuses)}")
    return wall, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=300)
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settings", default="10/100,20/20,20/100,100/100")
    args = parser.parse_args()

    clients = {f"httpx {httpx.__version__}": httpx, f"httpx2 {httpx2.__version__}": httpx2}
    rows = []
    with served_corpus(OUT, args.feeds, args.hosts, args.port) as urls:
        for setting in args.settings.split(","):
            in_flight, pool = (int(part) for part in setting.split("/"))
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
            for _ in range(args.rounds):
                for name, module in clients.items():
                    runs[name].append(asyncio.run(conditional_pass(module, urls, in_flight, pool)))
            for name, measured in runs.items():
                wall = statistics.median(w for w, _ in measured)
                cpu = statistics.median(c for _, c in measured)
                rows.append(
                    [
                        setting,
                        name,
                        f"{len(urls) / wall:,.0f}",
                        f"{cpu / len(urls) * 1000:.2f}",
                    ]
                )
    print(f"{len(urls)} feeds on {args.hosts} loopback addresses, all 304s; {args.rounds} rounds\n")
    print_rows(["in flight/pool", "client", "requests/s", "CPU ms/request"], rows)


if __name__ == "__main__":
    main()
