"""Requests per second the daemon serves an output feed at: cached 200s and 304s, with wrk.

    .venv/bin/python bench/serve_rate.py [--feeds 20] [--seconds 10] [--connections 32]

Generates a small corpus with bench/gencorpus.py into a temporary folder, configures
every feed as a local `path` source (nothing touches the network), starts the real
`aggregator run` on a free loopback port, waits until /feeds/all.atom holds its 50
stories, then runs wrk (Debian: apt-get install wrk) against it three ways:

- cached 200, identity: the rendered bytes straight from the render cache;
- cached 200, gzip: the cached gzip form (compressed once per render, not per request);
- 304: If-None-Match with the feed's ETag, what a polite feed reader mostly sends.

wrk shares the machine's cores with the daemon, so the figures are a floor, and on a
machine shared with other work they move from run to run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PYTHON = str(REPO / ".venv" / "bin" / "python")
if not Path(PYTHON).exists():
    PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(folder: Path, port: int) -> Path:
    feeds = sorted((folder / "feeds").iterdir())
    text = (
        "[aggregator]\n"
        f'database = "sqlite:///{folder / "serve.db"}"\n'
        f'listen = "127.0.0.1:{port}"\nbase_url = "http://127.0.0.1:{port}"\n'
        'retention = "3650d"\n'
        + "".join(f'\n[sources.f{n:04d}]\npath = "{feed}"\n' for n, feed in enumerate(feeds))
    )
    config = folder / "serve.toml"
    config.write_text(text, encoding="utf-8")
    return config


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> dict[str, str]:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    done = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 60)
    out = done.stdout
    return {
        "requests/s": _match(r"Requests/sec:\s+([\d.]+)", out),
        "p50": _match(r"(?m)^\s+50%\s+(\S+)", out),
        "p99": _match(r"(?m)^\s+99%\s+(\S+)", out),
        "transfer/s": _match(r"Transfer/sec:\s+(\S+)", out),
        "errors": _match(r"Non-2xx or 3xx responses:\s+(\d+)", out) or "0",
        "socket errors": _match(r"Socket errors:\s+(.*)", out) or "none",
    }


def _match(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    return found.group(1) if found else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="serve-rate-") as name:
        folder = Path(name)
        subprocess.run(
            [PYTHON, str(BENCH / "gencorpus.py"), str(folder), "--feeds", str(args.feeds)],
            check=True,
            capture_output=True,
        )
        port = free_port()
        config = write_config(folder, port)
        log = (folder / "daemon.log").open("w")
        daemon = subprocess.Popen(
            [PYTHON, "-m", "aggregator", "--config", str(config), "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "AGGREGATOR_TICK": "0.5"},
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    items = httpx2.get(f"{base}/feeds/all.json", timeout=5).json()["items"]
                    if len(items) >= 50:
                        break
                except (httpx2.HTTPError, ValueError, KeyError):
                    pass
                if time.monotonic() > deadline or daemon.poll() is not None:
                    print((folder / "daemon.log").read_text(), file=sys.stderr)
                    return 1
                time.sleep(0.5)
            time.sleep(2)  # let the last polls land so the cache stays warm
            url = f"{base}/feeds/all.atom"
            first = httpx2.get(url, headers={"Accept-Encoding": "identity"})
            with httpx2.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as zipped:
                gzipped_size = sum(len(chunk) for chunk in zipped.iter_raw())
            print(
                f"/feeds/all.atom: {len(first.content)} bytes, "
                f"{gzipped_size} after gzip; {args.feeds} source feeds; "
                f"wrk -t2 -c{args.connections} -d{args.seconds}s on 127.0.0.1\n"
            )
            cases = [
                ("cached 200, identity", {"Accept-Encoding": "identity"}),
                ("cached 200, gzip", {"Accept-Encoding": "gzip"}),
                ("304 (If-None-Match)", {"If-None-Match": first.headers["etag"]}),
            ]
            print(f"{'case':24} {'req/s':>9} {'p50':>9} {'p99':>9} {'transfer/s':>11} non-2xx/3xx")
            for label, headers in cases:
                row = wrk(url, args.seconds, args.connections, headers)
                print(
                    f"{label:24} {row['requests/s']:>9} {row['p50']:>9} {row['p99']:>9} "
                    f"{row['transfer/s']:>11} {row['errors']}"
                )
            metrics = httpx2.get(f"{base}/metrics").text
            print(f"\nrenders during the run (render cache misses): {_renders(metrics)}")
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
            log.close()
    return 0


def _renders(metrics: str) -> str:
    found = re.search(r"^aggregator_renders_total (\S+)$", metrics, re.MULTILINE)
    return found.group(1) if found else "?"


if __name__ == "__main__":
    sys.exit(main())
