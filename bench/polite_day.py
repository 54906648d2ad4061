"""How many requests a publisher gets from us in a simulated day, per kind of feed.

    .venv/bin/python bench/polite_day.py [--hours 24]

Each scenario is one source with a 1-hour interval, polled by the real Poller,
store (SQLite in a temporary folder) and HTTP client against a real local feed
server (tests/feedserver.py) that records every request. Time is a fake clock that
jumps from one due poll to the next (tests/pollharness.py), so a day takes about a
second of real time; the server and every request are real.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from feedserver import FeedServer, Reply, Request  # noqa: E402
from pollharness import T0, PollHarness  # noqa: E402

FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet feed</title>'
    b"<link>https://site.example/</link><item><guid>1</guid><title>Only story</title>"
    b"<link>https://site.example/1</link></item></channel></rss>"
)
RSS = "application/rss+xml"
MODIFIED = "Mon, 02 Mar 2026 08:00:00 GMT"


@dataclass(frozen=True)
class Scenario:
    name: str
    serve: Callable[[FeedServer, PollHarness], None]
    settings: dict[str, str]


def plain(server: FeedServer, harness: PollHarness) -> None:
    server.add("/f", FEED, etag='"v1"', last_modified=MODIFIED)


def no_validators(server: FeedServer, harness: PollHarness) -> None:
    server.add("/f", FEED)


def touched_hourly(server: FeedServer, harness: PollHarness) -> None:
    # Apache after `touch`: a new ETag each hour over the same bytes.
    def serve(request: Request) -> Reply:
        tag = f'"t{int((harness.clock.now - T0).total_seconds() // 3600)}"'
        if request.headers.get("if-none-match") == tag:
            return Reply(304, headers={"ETag": tag})
        return Reply(200, FEED, {"Content-Type": RSS, "ETag": tag})

    server.handler("/f", serve)


def max_age_2h(server: FeedServer, harness: PollHarness) -> None:
    server.add("/f", FEED, etag='"v1"', headers={"Cache-Control": "max-age=7200"})


def ttl_180(server: FeedServer, harness: PollHarness) -> None:
    body = FEED.replace(b"<channel>", b"<channel><ttl>180</ttl>")
    server.add("/f", body, etag='"v1"')


def retry_after_at_noon(server: FeedServer, harness: PollHarness) -> None:
    refused = threading.Event()

    def serve(request: Request) -> Reply:
        if harness.clock.now >= T0 + timedelta(hours=3) and not refused.is_set():
            refused.set()
            return Reply(503, b"maintenance", {"Retry-After": "14400"})
        if request.headers.get("if-none-match") == '"v1"':
            return Reply(304, headers={"ETag": '"v1"'})
        return Reply(200, FEED, {"Content-Type": RSS, "ETag": '"v1"'})

    server.handler("/f", serve)


def failing(server: FeedServer, harness: PollHarness) -> None:
    server.handler("/f", lambda request: Reply(500, b"broken"))


SCENARIOS = [
    Scenario("unchanged, ETag + Last-Modified", plain, {}),
    Scenario("unchanged, no validators (body hash only)", no_validators, {}),
    Scenario("unchanged, new ETag every hour (Apache touch)", touched_hourly, {}),
    Scenario("unchanged, Cache-Control max-age=7200", max_age_2h, {}),
    Scenario("unchanged, RSS <ttl>180</ttl>", ttl_180, {}),
    Scenario("503 Retry-After 4h once, at 12:00", retry_after_at_noon, {}),
    Scenario("always 500 (backoff, max_interval 1d)", failing, {}),
]


def run(scenario: Scenario, hours: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder, FeedServer() as server:
        harness = PollHarness(
            Path(folder), {"a": server.url("/f")}, interval="1h", **scenario.settings
        )
        try:
            scenario.serve(server, harness)
            harness.run_for(timedelta(hours=hours))
        finally:
            harness.close()
        sent = server.requests
        statuses = [r.status for r in harness.results]
        return {
            "scenario": scenario.name,
            "requests": len(sent),
            "per_hour": len(sent) / hours,
            "conditional": sum(
                1
                for r in sent[1:]
                if "if-none-match" in r.headers or "if-modified-since" in r.headers
            ),
            "parsed": statuses.count("ok"),
            "not_modified": statuses.count("not_modified"),
            "unchanged": statuses.count("unchanged"),
            "failed": statuses.count("error"),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=24)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the per-poll lines would drown the table
    print(f"one source, interval 1h, simulated {args.hours} h from {T0:%Y-%m-%d %H:%M} UTC\n")
    header = (
        f"{'scenario':48} {'requests':>8} {'req/h':>6} {'cond.':>6} {'parsed':>6} "
        f"{'304':>5} {'same':>5} {'fail':>5}"
    )
    print(header)
    print("-" * len(header))
    for scenario in SCENARIOS:
        row = run(scenario, args.hours)
        print(
            f"{row['scenario']:48} {row['requests']:>8} {row['per_hour']:>6.2f} "
            f"{row['conditional']:>6} {row['parsed']:>6} {row['not_modified']:>5} "
            f"{row['unchanged']:>5} {row['failed']:>5}"
        )
    print(
        "\ncond. = requests after the first that carried If-None-Match or If-Modified-Since;"
        "\nparsed = 200s whose body was new and parsed; same = 200s with the same bytes (no parse)."
    )


if __name__ == "__main__":
    main()
