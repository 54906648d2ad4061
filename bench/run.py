"""Benchmark: generate a corpus, serve it, time a cold poll, an all-304 poll and a build.

    .venv/bin/python bench/run.py [--feeds 2000] [--seed 1] [--port 8765] [--profile]

Everything goes to bench/out/ (git ignores it), which is emptied first. Each step runs the
real command line in its own process, timed by wall clock, with its peak RSS and CPU time
taken from the kernel's accounting of that process (os.wait4). See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import select
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import gencorpus

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
SERVER_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Step:
    name: str
    feeds: int
    entries: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


def aggregator_command(config: Path, *args: str, profile_to: Path | None = None) -> list[str]:
    head = [PYTHON, "-m", "aggregator"]
    if profile_to is not None:
        head = [PYTHON, "-m", "cProfile", "-o", str(profile_to), "-m", "aggregator"]
    elif (VENV_BIN / "aggregator").exists():
        head = [str(VENV_BIN / "aggregator")]
    return [*head, "--config", str(config), *args]


def run_step(name: str, argv: list[str], feeds: int, entries: int) -> Step:
    """Run one command to completion; wall clock, CPU and peak RSS of it and its workers."""
    logs = OUT / "logs"
    logs.mkdir(exist_ok=True)
    stdout_path, stderr_path = logs / f"{name}.stdout", logs / f"{name}.stderr"
    env = {**os.environ, "COLUMNS": "200"}
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, cwd=REPO, env=env)
        # wait4 rather than getrusage(RUSAGE_CHILDREN): the latter keeps the maximum over every
        # child reaped so far, so a later, smaller step would report an earlier step's peak.
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return Step(
        name=name,
        feeds=feeds,
        entries=entries,
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,  # Linux reports KiB
        returncode=process.returncode,
        stdout=stdout_path.read_text(errors="replace"),
        stderr=stderr_path.read_text(errors="replace"),
    )


def start_server(port: int, gzip: bool) -> subprocess.Popen[str]:
    argv = [PYTHON, str(BENCH / "serve.py"), str(OUT), "--port", str(port)]
    if gzip:
        argv.append("--gzip")
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert server.stdout is not None
    # serve.py prints its ready line only once its socket listens.
    readable, _, _ = select.select([server.stdout], [], [], SERVER_START_TIMEOUT)
    line = server.stdout.readline() if readable else ""
    if not line.startswith("ready"):
        server.kill()
        server.wait()
        sys.exit(f"bench/serve.py did not start (said {line!r}); is port {port} free?")
    return server


def clean_out() -> None:
    """Empty bench/out so the cold pass meets an empty database and no old outputs."""
    OUT.mkdir(exist_ok=True)
    for child in OUT.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def built_figures(public: Path) -> tuple[int, int]:
    """Output feeds written and entries they hold (counted in the JSON Feed files)."""
    documents = sorted(public.glob("*.json"))
    entries = sum(len(json.loads(path.read_bytes())["items"]) for path in documents)
    return len(documents), entries


def summary_lines(step: Step) -> list[str]:
    return [
        line
        for line in step.stdout.splitlines()
        if line.startswith(("sources:", "entries:")) or "output feeds written" in line
    ]


def print_table(steps: list[Step], profiled: bool) -> None:
    header = ("step", "feeds", "entries", "seconds", "feeds/s", "entries/s", "CPU s", "RSS MB")
    rows = [header]
    for step in steps:
        label = step.name + (" (profiled)" if profiled and step.name == "cold" else "")
        rows.append(
            (
                label + ("" if step.returncode == 0 else f" [exit {step.returncode}]"),
                f"{step.feeds:,}",
                f"{step.entries:,}",
                f"{step.seconds:.1f}",
                f"{step.feeds / step.seconds:,.0f}",
                f"{step.entries / step.seconds:,.0f}",
                f"{step.cpu_seconds:.1f}",
                f"{step.peak_rss_mb:,.0f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for number, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells))
        if number == 0:
            print("  ".join("-" * w for w in widths))


def print_profile(path: Path) -> None:
    print(f"\nTop 25 by cumulative time, cold pass (main process only), from {path}:")
    pstats.Stats(str(path)).sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--gzip", action="store_true", help="serve gzip to clients that ask")
    parser.add_argument(
        "--profile", action="store_true", help="run the cold pass under cProfile (slower)"
    )
    args = parser.parse_args()

    clean_out()
    started = time.perf_counter()
    now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    corpus = gencorpus.generate(args.feeds, args.seed, now)
    size = gencorpus.write(corpus, OUT, args.port)
    feeds, entries = len(corpus.feeds), corpus.entries
    print(
        f"corpus: {feeds:,} feeds, {entries:,} entries ({corpus.republished:,} republished), "
        f"{size / 1e6:.0f} MB, generated in {time.perf_counter() - started:.1f} s"
    )

    config = OUT / "aggregator.toml"
    profile = OUT / "cold.prof" if args.profile else None
    server = start_server(args.port, args.gzip)
    steps: list[Step] = []
    try:
        upgrade = run_step("db-upgrade", aggregator_command(config, "db", "upgrade"), 0, 0)
        if upgrade.returncode != 0:
            sys.exit(f"aggregator db upgrade failed:\n{upgrade.stderr}")
        plan = [
            ("cold", aggregator_command(config, "poll", "--all", profile_to=profile)),
            ("all-304", aggregator_command(config, "poll", "--all")),
            ("build", aggregator_command(config, "build", "--out", str(OUT / "public"))),
        ]
        for name, argv in plan:
            print(f"running {name}: {' '.join(argv[-4:])}", flush=True)
            step = run_step(name, argv, feeds, entries)
            if name == "build" and step.returncode == 0:
                built_feeds, built_entries = built_figures(OUT / "public")
                step = replace(step, feeds=built_feeds, entries=built_entries)
            steps.append(step)
            if step.returncode not in (0, 1):  # 1 = some sources failed; the figures still count
                print(step.stderr[-3000:], file=sys.stderr)
                break
    finally:
        server.terminate()
        server.wait(timeout=10)

    print()
    print_table(steps, profiled=profile is not None)
    print()
    for step in steps:
        for line in summary_lines(step):
            print(f"{step.name}: {line}")
        failures = [line for line in step.stderr.splitlines() if line.startswith("failed:")]
        if failures:
            print(f"{step.name}: {len(failures)} sources failed, e.g. {failures[0]}")
    warm = next((step for step in steps if step.name == "all-304"), None)
    if warm is not None and not re.search(rf"\b{feeds} not modified\b", warm.stdout):
        print("warning: the second pass was not all 304s; see bench/out/logs/all-304.stdout")
    print(f"logs: {OUT / 'logs'}")
    if profile is not None and profile.exists():
        print_profile(profile)


if __name__ == "__main__":
    main()
