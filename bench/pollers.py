"""Throughput of 1, 2 and 3 `aggregator run --role poller` processes sharing PostgreSQL.

    .venv/bin/python bench/pollers.py [--feeds 2000] [--hosts 300] [--pollers 1,2,3]

The bench corpus (bench/gencorpus.py) is served by bench/serve.py on many loopback
addresses. For each number of pollers, from a fresh database: the schema and the
sources are made, every source is made due at one moment T0 a few seconds ahead (so
the daemons' start-up spread of first polls does not apply, and every poller is up
and ticking before the work starts), N pollers start, and the clock runs from T0
until every source has recorded a poll after T0. That is the **cold** pass (every
feed fetched, parsed, stored). Then every source is made due again at T1: the
**all-304** pass (every answer a 304, nothing parsed). Printed per pass: seconds,
feeds/s, entries/s (stored entries for cold, entries covered for all-304), the CPU
the pollers used (their processes and parser workers), the CPU of the PostgreSQL
backends serving the bench database (sampled at the pass's ends: a backend that ended
during the pass is missed), how busy the machine's cores
were meanwhile (/proc/stat), since PostgreSQL, the feed server and the pollers all
share them, the WAL PostgreSQL wrote during the pass (what a replica or a backup must
carry), and the database's size after it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import gencorpus
import psycopg
from run import CLOCK_TICKS, OUT, PYTHON, REPO, FeedServer, _descendants, process_cpu

from aggregator.config import load_config
from aggregator.store import Store

WORK = OUT / "pollers"
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
DATABASE = "scale6_bench"
PG_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DATABASE}"
LEAD = 8.0  # seconds from the pollers' start to T0: all of them up and ticking
TICK = "0.2"


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def fresh_database() -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')


def write_configs(base: str, count: int, port0: int) -> list[Path]:
    """One configuration per poller: the corpus's sources, its own port and pid file."""
    settings, _, sources = base.partition("\n[sources.")
    # What gencorpus set besides the database (per_host, when there are few hosts).
    kept = "".join(
        line + "\n"
        for line in settings.splitlines()
        if line.strip() and not line.startswith(("#", "[", "database"))
    )
    paths = []
    for number in range(count):
        header = (
            "[aggregator]\n"
            f'database = "{PG_URL}"\n'
            f'listen = "127.0.0.1:{port0 + number}"\n'
            f'pid_file = "poller{number}.pid"\n'
            # Each source once per pass: the next poll a day away.
            'interval = "1d"\nmin_interval = "1h"\nmax_interval = "2d"\n'
            f'user_agent = "aggregator-bench poller{number}"\n' + kept
        )
        path = WORK / f"poller{number}.toml"
        path.write_text(header + "\n[sources." + sources, encoding="utf-8")
        paths.append(path)
    return paths


def make_due(at: datetime) -> None:
    with psycopg.connect(PG_ADMIN.replace("dbname=test", f"dbname={DATABASE}")) as conn:
        conn.execute("UPDATE sources SET next_poll_at = %s", (at,))


def polled_since(at: datetime) -> tuple[int, int]:
    """(sources with a poll recorded at or after `at`, entries stored)."""
    with psycopg.connect(PG_ADMIN.replace("dbname=test", f"dbname={DATABASE}")) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM sources WHERE last_polled_at >= %s),"
            " (SELECT count(*) FROM entries)",
            (at,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def database_figures() -> tuple[int, int]:
    """(bytes of the database, bytes of WAL written since the server started: a position)."""
    with psycopg.connect(PG_ADMIN.replace("dbname=test", f"dbname={DATABASE}")) as conn:
        row = conn.execute(
            "SELECT pg_database_size(current_database()),"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def database_cpu() -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving the bench database (the server is
    shared: other databases' backends are left out)."""
    with psycopg.connect(PG_ADMIN.replace("dbname=test", f"dbname={DATABASE}")) as conn:
        pids = [
            int(row[0])
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (DATABASE,),
            )
        ]
    found = {}
    for pid in pids:
        try:
            found[pid] = process_cpu(pid)
        except OSError:  # ended meanwhile
            continue
    return found


def cpu_of(pids: list[int]) -> float:
    return sum(process_cpu(pid) + sum(process_cpu(c) for c in _descendants(pid)) for pid in pids)


def one_pass(name: str, feeds: int, at: datetime, pollers: list[int]) -> dict[str, float]:
    while datetime.now(UTC) < at:
        time.sleep(0.01)
    cpu_before, (busy0, total0) = cpu_of(pollers), machine_busy()
    _, wal_before = database_figures()
    pg_before = database_cpu()
    started = time.perf_counter()
    while True:
        done, entries = polled_since(at)
        if done >= feeds:
            break
        if time.perf_counter() - started > 1800:
            sys.exit(f"{name}: only {done} of {feeds} sources polled in 30 minutes")
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    busy1, total1 = machine_busy()
    size, wal_after = database_figures()
    pg_after = database_cpu()
    pg_cpu = sum(cpu - pg_before.get(pid, 0.0) for pid, cpu in pg_after.items())
    return {
        "pg_cpu": pg_cpu,
        "seconds": seconds,
        "entries": entries,
        "size": size,
        "wal": wal_after - wal_before,
        "cpu": cpu_of(pollers) - cpu_before,
        "busy": (busy1 - busy0) / max(1.0, total1 - total0),
    }


def run_with(count: int, feeds: int, entries_in_corpus: int, base: str) -> list[str]:
    fresh_database()
    configs = write_configs(base, count, 8800)
    config = load_config(configs[0])
    store = Store(PG_URL)
    store.upgrade()
    store.sync_sources(config.sources.values())
    store.close()
    t0 = datetime.now(UTC) + timedelta(seconds=LEAD)
    make_due(t0)
    env = {**os.environ, "AGGREGATOR_TICK": TICK}
    logs = [(WORK / f"{count}-poller{n}.log").open("wb") for n in range(count)]
    processes = [
        subprocess.Popen(
            [PYTHON, "-m", "aggregator", "--config", str(path), "run", "--role", "poller"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=env,
        )
        for path, log in zip(configs, logs, strict=True)
    ]
    rows = []
    try:
        pids = [p.pid for p in processes]
        cold = one_pass(f"{count} pollers cold", feeds, t0, pids)
        t1 = datetime.now(UTC) + timedelta(seconds=2)
        make_due(t1)
        warm = one_pass(f"{count} pollers all-304", feeds, t1, pids)
        for name, figures, entries in (
            ("cold", cold, cold["entries"]),
            ("all-304", warm, entries_in_corpus),
        ):
            rows.append(
                f"| {count} | {name} | {figures['seconds']:.1f} | "
                f"{feeds / figures['seconds']:,.0f} | {entries / figures['seconds']:,.0f} | "
                f"{figures['cpu']:.1f} | {figures['pg_cpu']:.1f} | {figures['busy']:.0%} | "
                f"{figures['wal'] / 1e6:,.0f} | {figures['size'] / 1e6:,.0f} |"
            )
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
        for log in logs:
            log.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=8775, help="where bench/serve.py listens")
    parser.add_argument("--pollers", default="1,2,3", help="numbers of pollers to try")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    corpus = gencorpus.generate(args.feeds, args.seed, now)
    # serve.py serves OUT/feeds: the corpus goes there, the configurations into WORK.
    gencorpus.write_feeds(corpus, OUT)
    base = gencorpus.render_config(corpus, args.port, args.hosts)
    print(
        f"corpus: {len(corpus.feeds):,} feeds / {corpus.entries:,} entries on {args.hosts} "
        f"loopback addresses; PostgreSQL database {DATABASE}; {os.cpu_count()} cores, "
        f"{CLOCK_TICKS} ticks/s",
        flush=True,
    )
    server = FeedServer(args.port, args.hosts, gzip=False)
    rows = []
    try:
        for count in (int(n) for n in args.pollers.split(",")):
            rows += run_with(count, len(corpus.feeds), corpus.entries, base)
            print(rows[-2], rows[-1], sep="\n", flush=True)
    finally:
        server.stop()
    print(
        "\n| pollers | pass | seconds | feeds/s | entries/s | pollers' CPU s "
        "| PostgreSQL CPU s | cores busy | WAL MB | database MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"logs: {WORK}")


if __name__ == "__main__":
    main()
