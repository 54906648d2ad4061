"""The hostile-source catalogue as a table: outcome, time and peak memory of each case.

    .venv/bin/python bench/faults.py [--timeout 5] [--max-bytes 10000000] [--out FILE]

Serves every case of `tests/hostile.py` from the raw-socket fault server on
127.0.0.1 and runs one fetch and parse of each in a process of its own
(`tests/faultprobe.py`), so each peak is that case's alone: `rss+` is the growth
of the process's peak resident set over the fetch and parse (C libraries
included), `traced` the tracemalloc peak (Python objects only). Defaults are the
daemon's own limits but a 5 s timeout (the daemon's is 30 s), so the hanging
cases end sooner. The redirect-out-of-public-space cases run in a network
namespace (`tests/netns_guard.py`) and are listed without memory figures.
Figures are indicative: the machine's two cores are shared.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
TESTS = BENCH.parent / "tests"
sys.path.insert(0, str(TESTS))

from faultserver import FaultServer  # noqa: E402
from hostile import CASES, PUBLIC_HOST  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--max-bytes", type=int, default=10_000_000)
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()
    rows = [
        "| case | expected | outcome | seconds | peak RSS growth | tracemalloc peak |",
        "|---|---|---|---:|---:|---:|",
    ]
    failures = 0
    with FaultServer() as server:
        for case in CASES:
            url = case.install(server)
            command = [
                sys.executable,
                str(TESTS / "faultprobe.py"),
                url,
                f"--timeout={args.timeout}",
                f"--max-bytes={args.max_bytes}",
                f"--resolve={PUBLIC_HOST}=127.0.0.1",
            ]
            if case.allow_private:
                command.append("--allow-private")
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
            result = json.loads(done.stdout)
            outcome = str(result["outcome"])
            if outcome != "ok":
                outcome = outcome.split(": ", 2)[-1]  # without "probe: URL: "
            else:
                outcome = f"ok, {result['entries']} entries"
            good = (case.cause is None and outcome.startswith("ok")) or (
                case.cause is not None and case.cause in str(result["outcome"])
            )
            failures += not good
            leaked = f" LEAKED {result['found']}" if result["found"] else ""
            rows.append(
                f"| {case.name} | {'parses' if case.cause is None else case.cause} | "
                f"{'' if good else 'UNEXPECTED: '}{outcome[:140]}{leaked} | "
                f"{result['seconds']:.2f} | {result['rss_growth'] / 2**20:.1f} MB | "
                f"{result['traced_peak'] / 2**20:.1f} MB |"
            )
            print(rows[-1], flush=True)
        rows.append(f"| (internal URL requested) | 0 | {server.hits('/internal/secret')} | | | |")
    rows += netns_rows()
    table = "\n".join(rows)
    print("\n" + table)
    if args.out:
        args.out.write_text(table + "\n", encoding="utf-8")
    sys.exit(1 if failures else 0)


def netns_rows() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare is None:
        return ["| (netns cases) | | skipped: no unshare | | | |"]
    started = time.monotonic()
    done = subprocess.run(
        [unshare, "-n", sys.executable, str(TESTS / "netns_guard.py")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        return [f"| (netns cases) | | skipped: {done.stderr.strip()[:100]} | | | |"]
    seconds = time.monotonic() - started
    rows = []
    for name, outcome in json.loads(done.stdout).items():
        shown = outcome.split(": ", 2)[-1] if not outcome.startswith("ok") else outcome
        rows.append(f"| netns: {name} | | {shown[:140]} | (all: {seconds:.1f}) | | |")
    return rows


if __name__ == "__main__":
    main()
