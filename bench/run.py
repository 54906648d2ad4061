"""Benchmark, side by side: aggregator and the Python peer `reader` over one served corpus.

    .venv/bin/python bench/run.py [--feeds 2000] [--hosts 300] [--repeat 2] [--quick]
                                  [--skip-reader] [--skip-plain] [--skip-store] [--profile]

Everything goes to bench/out/ (git ignores it), which is emptied first. See bench/README.md.
Each step runs a real command line in its own process, timed by wall clock, with its peak
RSS and CPU time from the kernel's accounting of that process (os.wait4).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import bulkstore
import gencorpus

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
READER_VENV = BENCH / ".venv-reader"
READER_VERSION = "3.27"  # needs Python 3.12 or later
SERVER_START_TIMEOUT = 60.0
CHANGED_SHARE = 0.10
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Step:
    name: str
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str
    server_cpu: float = 0.0  # CPU the feed server spent during the step


@dataclass
class Figures:
    """Every measurement of one (tool, pass), over the rounds."""

    steps: list[Step] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(step, attribute) for step in self.steps)

    def spread(self, attribute: str) -> float:
        """(max - min) / median, as a share: how much the repeats disagreed."""
        values = [getattr(step, attribute) for step in self.steps]
        middle = statistics.median(values)
        return (max(values) - min(values)) / middle if middle else 0.0


# -- processes -------------------------------------------------------------------------


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        found.append(parent)
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                queue += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
    return found


def _high_water_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else 0.0


def _own_and_reaped_cpu(pid: int) -> tuple[float, float]:
    """A process's own CPU seconds (utime + stime) and its reaped children's (cutime + cstime)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return own, (int(fields[13]) + int(fields[14])) / CLOCK_TICKS


class PeakMemory(threading.Thread):
    """The largest resident high-water mark (VmHWM) of a process and its descendants
    (parser workers), read every 50 ms while it runs, and the CPU its descendants used.

    Not wait4's ru_maxrss: at exec the kernel carries the forking parent's RSS into the
    child's maximum, so every step would report at least this script's own size. Nor
    wait4's CPU alone: the parser workers are children of the forkserver, which the
    command does not wait for, so their CPU never reaches its rusage."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.finished = pid, 0.0, threading.Event()
        self._own: dict[int, float] = {}  # descendant -> its own CPU when last seen
        self._reaped = 0.0  # the command's reaped children's CPU when last seen

    def run(self) -> None:
        while not self.finished.is_set():
            for pid in _descendants(self.pid):
                self.peak = max(self.peak, _high_water_mb(pid))
                own, reaped = _own_and_reaped_cpu(pid)
                if pid == self.pid:
                    self._reaped = max(self._reaped, reaped)
                else:
                    self._own[pid] = max(self._own.get(pid, 0.0), own)
            self.finished.wait(0.05)

    def note_exit(self) -> None:
        """Read the command's reaped children's CPU once more, from its zombie (waited
        for with WNOWAIT, not reaped yet): all of them, the last one included."""
        self._reaped = max(self._reaped, _own_and_reaped_cpu(self.pid)[1])

    def cpu_seconds(self, usage_of_command: float) -> float:
        """The command's CPU (wait4) and every descendant's own, each counted once: the
        children the command reaped are in both, so their share of wait4 comes off.
        The last 50 ms of a descendant that outlives no sample can be missed."""
        return usage_of_command - self._reaped + sum(self._own.values())


def run_step(name: str, argv: list[str], server_pid: int | None = None) -> Step:
    """Run one command to completion; wall clock, CPU and peak RSS of it and its workers."""
    logs = OUT / "logs"
    logs.mkdir(exist_ok=True)
    stdout_path, stderr_path = logs / f"{name}.stdout", logs / f"{name}.stderr"
    env = {**os.environ, "COLUMNS": "200"}
    server_before = process_cpu(server_pid) if server_pid else 0.0
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, cwd=REPO, env=env)
        memory = PeakMemory(process.pid)
        memory.start()
        # Wait for the exit without reaping, so the sampler can tell it ended.
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        memory.finished.set()
        memory.join()
        memory.note_exit()
        # wait4 rather than getrusage(RUSAGE_CHILDREN): the latter keeps the maximum over every
        # child reaped so far, so a later, smaller step would report an earlier step's peak.
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    return Step(
        name=name,
        seconds=seconds,
        cpu_seconds=memory.cpu_seconds(usage.ru_utime + usage.ru_stime),
        peak_rss_mb=memory.peak,
        returncode=os.waitstatus_to_exitcode(status),
        stdout=stdout_path.read_text(errors="replace"),
        stderr=stderr_path.read_text(errors="replace"),
        server_cpu=(process_cpu(server_pid) - server_before) if server_pid else 0.0,
    )


class FeedServer:
    """bench/serve.py on many loopback addresses; `reload()` after the corpus changes."""

    def __init__(self, port: int, hosts: int, gzip: bool, directory: Path = OUT) -> None:
        argv = [PYTHON, str(BENCH / "serve.py"), str(directory), "--port", str(port)]
        argv += ["--hosts", str(hosts)] + (["--gzip"] if gzip else [])
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=REPO)
        line = self._line()
        if not line.startswith("ready"):
            self.stop()
            sys.exit(f"bench/serve.py did not start (said {line!r}); is port {port} free?")

    def _line(self) -> str:
        assert self.process.stdout is not None
        # serve.py prints its ready line only once its sockets listen.
        readable, _, _ = select.select([self.process.stdout], [], [], SERVER_START_TIMEOUT)
        return self.process.stdout.readline() if readable else ""

    @property
    def pid(self) -> int:
        return self.process.pid

    def reload(self) -> None:
        self.process.send_signal(signal.SIGHUP)
        line = self._line()
        if not line.startswith("reloaded"):
            sys.exit(f"bench/serve.py did not reload (said {line!r})")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def clean_out() -> None:
    """Empty bench/out so every cold pass meets an empty database and no old outputs."""
    OUT.mkdir(exist_ok=True)
    for child in OUT.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# -- the two tools -----------------------------------------------------------------------


def aggregator_command(config: Path, *args: str, profile_to: Path | None = None) -> list[str]:
    head = [PYTHON, "-m", "aggregator"]
    if profile_to is not None:
        head = [PYTHON, "-m", "cProfile", "-o", str(profile_to), "-m", "aggregator"]
    elif (VENV_BIN / "aggregator").exists():
        head = [str(VENV_BIN / "aggregator")]
    return [*head, "--config", str(config), *args]


def reader_python() -> Path | None:
    """reader's own environment, created on first use; None when it cannot be had."""
    python = READER_VENV / "bin" / "python"
    if python.exists():
        return python
    base = next(
        (
            candidate
            for candidate in (
                shutil.which("python3.13"),
                shutil.which("python3.12"),
                *sorted(str(p) for p in Path("/root/.pyenv/versions").glob("3.1[2-9]*/bin/python")),
            )
            if candidate
            and subprocess.run([candidate, "-c", "1"], capture_output=True).returncode == 0
        ),
        None,
    )
    if base is None:
        print("reader: no Python 3.12+ found for reader 3.27; skipping the reader passes")
        return None
    print(f"reader: creating {READER_VENV} with {base} and reader {READER_VERSION}", flush=True)
    subprocess.run([base, "-m", "venv", str(READER_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if subprocess.run([*pip, f"reader=={READER_VERSION}"]).returncode != 0:
        shutil.rmtree(READER_VENV)
        print("reader: install failed; skipping the reader passes")
        return None
    return python


PASSES = ("cold", "all-304", "changed")


def run_tool(
    tool: str,
    round_number: int,
    server: FeedServer,
    corpus: gencorpus.Corpus,
    later: gencorpus.Corpus,
    reader: Path | None,
) -> dict[str, Step]:
    """The three passes of one tool from an empty database: cold, all-304, 10% changed."""
    config = OUT / "aggregator.toml"
    steps: dict[str, Step] = {}
    if tool == "aggregator":
        remove_database(OUT / "bench.db")
        setup = run_step("aggregator-db-upgrade", aggregator_command(config, "db", "upgrade"))
        commands = {name: aggregator_command(config, "poll", "--all") for name in PASSES}
    elif tool == "plain":
        database = OUT / "plain.db"
        remove_database(database)
        # Nothing to set up: the loop makes its schema on first use.
        setup = run_step("plain-setup", [PYTHON, "-c", "pass"])
        base = [PYTHON, str(BENCH / "plain_pass.py"), str(database), str(OUT / "feeds.txt")]
        commands = {name: base for name in PASSES}
    else:
        assert reader is not None
        database = OUT / "reader.db"
        remove_database(database)
        base = [str(reader), str(BENCH / "reader_pass.py"), str(database), str(OUT / "feeds.txt")]
        setup = run_step("reader-add", [*base, "--add"])
        commands = {name: [*base, "--workers", "8"] for name in PASSES}
    if setup.returncode != 0:
        sys.exit(f"{tool}: setup failed:\n{setup.stderr[-3000:]}")
    for name in PASSES:
        if name == "changed":
            gencorpus.write_feeds(later, OUT, only_changed_from=corpus)
            server.reload()
        print(f"  round {round_number + 1}: {tool} {name}", flush=True)
        steps[name] = run_step(f"{tool}-{name}-{round_number + 1}", commands[name], server.pid)
    gencorpus.write_feeds(corpus, OUT, only_changed_from=later)
    server.reload()
    return steps


def pass_summary(step: Step) -> str:
    lines = [
        line
        for line in step.stdout.splitlines()
        if line.startswith(("sources:", "entries:", "reader:", "plain:"))
    ]
    return " | ".join(lines)


# -- output-side figures ----------------------------------------------------------------


def store_dir(stories: int) -> Path:
    """Big stores are kept between runs (bench/store-N/, git ignores it): a million stories
    take minutes to make."""
    return BENCH / f"store-{stories}"


def build_figures(stories: int, sources: int, categories: int, repeat: int) -> list[Step]:
    started = time.perf_counter()
    store = store_dir(stories)
    built = bulkstore.ensure(store, stories, sources, categories)
    how = "built" if built else "reused"
    print(f"store: {how} {stories:,} stories in {time.perf_counter() - started:.0f} s", flush=True)
    steps = []
    for number in range(repeat):
        public = OUT / f"public-big-{number}"
        step = run_step(
            f"build-big-{number + 1}",
            aggregator_command(store / "aggregator.toml", "build", "--out", str(public)),
        )
        if step.returncode != 0:
            sys.exit(f"build failed:\n{step.stderr[-3000:]}")
        steps.append(step)
    return steps


def _wrk_script(paths: Sequence[str], etags: Sequence[str] | None, path: Path) -> Path:
    quoted = ", ".join(json.dumps(p) for p in paths)
    lines = [f"local paths = {{{quoted}}}", "local i = 0"]
    if etags is not None:
        lines.append("local etags = {" + ", ".join(json.dumps(e) for e in etags) + "}")
        call = 'wrk.format("GET", paths[i], {["If-None-Match"] = etags[i]})'
    else:
        call = 'wrk.format("GET", paths[i])'
    lines += ["request = function()", "  i = i % #paths + 1", f"  return {call}", "end"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _requests_per_second(wrk_output: str) -> tuple[float, int]:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", wrk_output)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", wrk_output)
    return (float(rate.group(1)) if rate else 0.0), int(errors.group(1)) if errors else 0


async def _fallback_load(host: str, port: int, requests: list[bytes], seconds: float) -> float:
    """A small keep-alive HTTP/1.1 load loop, for machines without wrk."""
    deadline = time.monotonic() + seconds
    done = 0

    async def client(offset: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(host, port)
        number = offset
        while time.monotonic() < deadline:
            writer.write(requests[number % len(requests)])
            number += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if length:
                await reader.readexactly(int(length.group(1)))
            done += 1
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(client(i) for i in range(16)))
    return done / (time.monotonic() - started)


def web_figures(stories: int, port: int, seconds: float) -> dict[str, tuple[float, int]]:
    """Cached output requests per second on the big store: 200s, gzip 200s and 304s."""
    import httpx2

    store = store_dir(stories)
    config = store / "aggregator-web.toml"
    text = (store / "aggregator.toml").read_text()
    config.write_text(
        text.replace("[aggregator]\n", f'[aggregator]\nlisten = "127.0.0.1:{port}"\n')
    )
    daemon = subprocess.Popen(
        aggregator_command(config, "run"),
        stdout=subprocess.DEVNULL,
        stderr=(OUT / "logs" / "web.stderr").open("wb"),
        cwd=REPO,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            time.sleep(0.1)
        feeds = sorted({p.stem for p in (OUT / "public-big-0").glob("*.json")})
        paths = [f"/feeds/{name}.{fmt}" for name in feeds for fmt in ("atom", "rss", "json")]
        etags = []
        with httpx2.Client(base_url=base, timeout=60) as client:
            for path in paths:  # renders once: every later request is a cache hit
                response = client.get(path)
                response.raise_for_status()
                etags.append(response.headers["etag"])
            check = client.get(paths[0], headers={"If-None-Match": etags[0]})
            assert check.status_code == 304, check.status_code
        results = {}
        wrk = shutil.which("wrk")
        cases = {
            "200": (None, {}),
            "200 gzip": (None, {"Accept-Encoding": "gzip"}),
            "304": (etags, {}),
        }
        for name, (tags, headers) in cases.items():
            if wrk:
                script = _wrk_script(paths, tags, OUT / f"wrk-{name.replace(' ', '-')}.lua")
                argv = [wrk, "-t1", "-c32", f"-d{seconds:g}s", "-s", str(script)]
                argv += [arg for key, value in headers.items() for arg in ("-H", f"{key}: {value}")]
                output = subprocess.run([*argv, base], capture_output=True, text=True).stdout
                (OUT / "logs" / f"wrk-{name.replace(' ', '-')}.txt").write_text(output)
                results[name] = _requests_per_second(output)
            else:
                extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                raw = [
                    f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}"
                    + (f"If-None-Match: {tags[i]}\r\n" if tags else "")
                    + "\r\n"
                    for i, path in enumerate(paths)
                ]
                rate = asyncio.run(
                    _fallback_load("127.0.0.1", port, [r.encode() for r in raw], seconds)
                )
                results[name] = (rate, 0)
        return results
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)


# -- profiles --------------------------------------------------------------------------


def profile_cold(server: FeedServer) -> None:
    config = OUT / "aggregator.toml"
    remove_database(OUT / "bench.db")
    run_step("profile-db-upgrade", aggregator_command(config, "db", "upgrade"))
    target = OUT / "cold.prof"
    step = run_step("profile-cold", aggregator_command(config, "poll", "--all", profile_to=target))
    print(f"\nProfiled cold pass: {step.seconds:.1f} s (slower under cProfile).")
    print("Top 25 by cumulative time, main process (parsing shows as waiting on workers):")
    pstats.Stats(str(target)).sort_stats("cumulative").print_stats(25)
    print("What a parser worker does, profiled in-process over the corpus (top 20, tottime):")
    sys.path.insert(0, str(REPO))
    from aggregator.parse import parse_document

    documents = [(p.name, p.read_bytes()) for p in sorted((OUT / "feeds").iterdir())]
    profiler = cProfile.Profile()
    profiler.enable()
    for name, body in documents:
        parse_document(body, url=f"http://127.0.0.1/feeds/{name}")
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


# -- the table ---------------------------------------------------------------------------


def print_rows(header: Sequence[str], rows: list[Sequence[str]]) -> None:
    table = [tuple(header), *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for number, row in enumerate(table):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells))
        if number == 0:
            print("  ".join("-" * w for w in widths))


def print_poll_table(
    figures: dict[tuple[str, str], Figures], feeds: int, entries: int, tools: Sequence[str]
) -> None:
    header = (
        "pass",
        "tool",
        "seconds",
        "spread",
        "feeds/s",
        "entries/s",
        "CPU s",
        "server CPU s",
        "RSS MB",
        "ratio",
    )
    rows = []
    for name in PASSES:
        theirs = figures.get(("reader", name))
        for tool in tools:
            figure = figures.get((tool, name))
            if figure is None or not figure.steps:
                continue
            seconds = figure.median("seconds")
            ratio = ""
            if tool != "reader" and theirs and theirs.steps:
                ratio = f"{theirs.median('seconds') / seconds:.1f}x"
            failed = any(step.returncode not in (0,) for step in figure.steps)
            rows.append(
                (
                    name if tool == tools[0] else "",
                    tool + (" [exit≠0]" if failed else ""),
                    f"{seconds:.1f}",
                    f"±{figure.spread('seconds') * 50:.0f}%",
                    f"{feeds / seconds:,.0f}",
                    f"{entries / seconds:,.0f}",
                    f"{figure.median('cpu_seconds'):.1f}",
                    f"{figure.median('server_cpu'):.1f}",
                    f"{max(step.peak_rss_mb for step in figure.steps):,.0f}",
                    ratio,
                )
            )
    print_rows(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=300, help="loopback addresses to serve on")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--web-port", type=int, default=8766)
    parser.add_argument("--repeat", type=int, default=2, help="rounds of every measurement")
    parser.add_argument("--gzip", action="store_true", help="serve gzip to clients that ask")
    parser.add_argument("--quick", action="store_true", help="200 feeds, 100,000 stories, 1 round")
    parser.add_argument("--skip-reader", action="store_true")
    parser.add_argument(
        "--skip-plain", action="store_true", help="no plain feedparser-and-SQLite baseline"
    )
    parser.add_argument("--skip-store", action="store_true", help="no big-store build or web load")
    parser.add_argument("--stories", type=int, default=1_000_000)
    parser.add_argument("--web-seconds", type=float, default=10.0)
    parser.add_argument("--profile", action="store_true", help="also profile a cold pass")
    args = parser.parse_args()
    if args.quick:
        args.feeds, args.hosts, args.repeat = min(args.feeds, 200), min(args.hosts, 40), 1
        args.stories, args.web_seconds = min(args.stories, 100_000), min(args.web_seconds, 3)

    clean_out()
    started = time.perf_counter()
    now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    corpus = gencorpus.generate(args.feeds, args.seed, now)
    later = gencorpus.changed(corpus, CHANGED_SHARE, args.seed, now)
    size = gencorpus.write(corpus, OUT, args.port, args.hosts)
    feeds, entries = len(corpus.feeds), corpus.entries
    print(
        f"corpus: {feeds:,} feeds on {args.hosts} loopback addresses, {entries:,} entries "
        f"({corpus.republished:,} republished), {size / 1e6:.0f} MB, generated in "
        f"{time.perf_counter() - started:.1f} s; {CHANGED_SHARE:.0%} of feeds change for the "
        "third pass",
        flush=True,
    )
    reader = None if args.skip_reader else reader_python()
    tools = ["aggregator"] + ([] if args.skip_plain else ["plain"]) + (["reader"] if reader else [])
    figures: dict[tuple[str, str], Figures] = {}
    server = FeedServer(args.port, args.hosts, args.gzip)
    try:
        for round_number in range(args.repeat):
            # Alternate who goes first, so neither always meets a warmer machine.
            order = tools if round_number % 2 == 0 else list(reversed(tools))
            for tool in order:
                steps = run_tool(tool, round_number, server, corpus, later, reader)
                for name, step in steps.items():
                    figures.setdefault((tool, name), Figures()).steps.append(step)
        if args.profile:
            profile_cold(server)
    finally:
        server.stop()

    build_steps: list[Step] = []
    web: dict[str, tuple[float, int]] = {}
    if not args.skip_store:
        build_steps = build_figures(args.stories, 2000, 50, args.repeat)
        web = web_figures(args.stories, args.web_port, args.web_seconds)

    print(
        f"\nPolling {feeds:,} feeds / {entries:,} entries, median of {args.repeat} round(s); "
        "spread = ±half the range over the rounds; ratio = reader's seconds / the tool's"
    )
    print_poll_table(figures, feeds, entries, tools)
    print()
    for (tool, name), figure in figures.items():
        print(f"{tool} {name}: {pass_summary(figure.steps[-1])}")
    if build_steps:
        seconds = statistics.median(step.seconds for step in build_steps)
        print(
            f"\nbuild: all outputs of 51 feeds (50 categories + all) x 3 formats + OPML from "
            f"{args.stories:,} stories: median {seconds:.1f} s "
            f"({', '.join(f'{s.seconds:.1f}' for s in build_steps)}), "
            f"peak RSS {max(s.peak_rss_mb for s in build_steps):.0f} MB"
        )
    for name, (rate, errors) in web.items():
        extra = f" ({errors} errors)" if errors else ""
        print(f"web: cached output requests, {name}: {rate:,.0f}/s{extra}")
    print(f"logs: {OUT / 'logs'}")


if __name__ == "__main__":
    main()
