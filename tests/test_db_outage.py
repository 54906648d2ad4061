"""PostgreSQL stopped and started again under a running daemon.

The shared PostgreSQL on 5432 serves other tests, so this one runs a throwaway
server of its own (initdb + pg_ctl on a free port in a temporary folder, as the
`postgres` user when the tests run as root) and stops that one. While it is
down: `/healthz` says 503 and why, feeds already rendered keep being served from
the cache, others (and the status page) get a clear 503, the daemon logs the
failed polls and ticks in the driver's words, without a traceback, and keeps
ticking. A poll under way when the server stops cannot record its result, nor
give its claim back. When the server is back, the daemon recovers by itself,
within seconds rather than when that claim's lease runs out: healthy again,
polling again, new entries published.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from daemonproc import free_port, start_daemon, wait_until
from feedserver import FeedServer, Reply, Request

PG_BIN = Path("/usr/lib/postgresql")


@dataclass
class Postgres:
    folder: Path
    port: int
    run_as: list[str]
    bin: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.ctl("-o", options, "-l", str(self.folder / "server.log"), "-w", "start")

    def stop(self) -> None:
        self.ctl("-m", "fast", "-w", "stop")


def find_bin() -> Path | None:
    for candidate in sorted(PG_BIN.glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@pytest.fixture
def throwaway_postgres() -> Iterator[Postgres]:
    binaries = find_bin()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) to run a throwaway server")
    run_as: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="aggregator-pg-"))
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root.
        if shutil.which("runuser") is None:
            pytest.skip("running as root and no runuser to start PostgreSQL as postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, "postgres")
    server = Postgres(folder, free_port(), run_as, binaries)
    try:
        made = subprocess.run(
            [
                *run_as,
                str(binaries / "initdb"),
                "-D",
                str(folder / "data"),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if made.returncode != 0:
            pytest.skip(f"cannot initdb a throwaway PostgreSQL: {made.stderr.strip()}")
        server.start()
        yield server
    finally:
        subprocess.run(
            [
                *run_as,
                str(binaries / "pg_ctl"),
                "-D",
                str(folder / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            check=False,
            timeout=60,
        )
        shutil.rmtree(folder, ignore_errors=True)


def status(url: str) -> int:
    try:
        return httpx2.get(url, timeout=5).status_code
    except httpx2.HTTPError:
        return 0


@pytest.mark.slow
def test_daemon_survives_postgresql_going_away_and_recovers_by_itself(
    throwaway_postgres: Postgres, feed_server: FeedServer, tmp_path: Path
) -> None:
    generation = {"n": 1}
    # While the gate is shut, the feed's answer waits: a poll is under way.
    gate_shut = threading.Event()
    gate_open = threading.Event()
    waiting = threading.Event()

    def feed(request: Request) -> Reply:
        if gate_shut.is_set():
            waiting.set()
            gate_open.wait(timeout=60)
        items = "".join(
            f"<item><guid>pg-{n}</guid><title>Item {n}</title><link>http://pg.example/{n}</link>"
            "</item>"
            for n in range(3 * generation["n"])
        )
        body = (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>P</title>'
            f"<link>http://pg.example/</link><description>d</description>{items}</channel></rss>"
        )
        return Reply(body=body.encode(), headers={"Content-Type": "application/rss+xml"})

    feed_server.handler("/feed.xml", feed)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = tmp_path / "aggregator.toml"
    config.write_text(
        f'[aggregator]\ndatabase = "{throwaway_postgres.url}"\nlisten = "127.0.0.1:{port}"\n'
        f'base_url = "{base}"\nmin_interval = "1s"\ninterval = "1s"\n'
        f'[sources.pg]\nurl = "{feed_server.url("/feed.xml")}"\n',
        encoding="utf-8",
    )
    daemon = start_daemon(config, port=port, env={"AGGREGATOR_TICK": "0.2"})
    process, log = daemon.process, daemon.log

    def items() -> list[str]:
        try:
            response = httpx2.get(f"{base}/feeds/all.json", timeout=5)
        except httpx2.HTTPError:
            return []
        if response.status_code != 200:
            return []
        return [item["title"] for item in response.json()["items"]]

    try:
        wait_until(lambda: len(items()) == 3, 40, "first poll", log)
        cached = httpx2.get(f"{base}/feeds/all.atom", timeout=5)
        assert cached.status_code == 200
        gate_shut.set()
        assert waiting.wait(timeout=30), log.read_text()

        throwaway_postgres.stop()
        health = httpx2.get(f"{base}/healthz", timeout=10)
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        assert health.json()["database"].startswith("error: OperationalError: ")
        again = httpx2.get(f"{base}/feeds/all.atom", timeout=10)
        assert (again.status_code, again.content) == (200, cached.content)  # from the cache
        unseen = httpx2.get(f"{base}/feeds/all.atom?limit=2", timeout=10)
        assert unseen.status_code == 503
        assert "database unavailable" in unseen.text
        page = httpx2.get(f"{base}/", timeout=10)
        assert page.status_code == 503
        assert page.text.startswith("database unavailable: connection")
        gate_open.set()
        gate_shut.clear()
        wait_until(
            lambda: "database error: " in log.read_text(),
            40,
            "the poll under way failing to record",
            log,
        )
        wait_until(
            lambda: "scheduler cannot claim due sources from " in log.read_text(),
            40,
            "a tick meeting the stopped database",
            log,
        )
        process.send_signal(signal.SIGHUP)
        wait_until(
            lambda: "reload failed" in log.read_text(),
            40,
            "a reload meeting the stopped database",
            log,
        )
        assert process.poll() is None
        down = log.read_text()
        url = feed_server.url("/feed.xml")
        assert f"poll source=pg failed: pg: {url}: database error: " in down
        for line in down.splitlines():
            if "database error: " in line or "cannot claim" in line or "reload failed" in line:
                assert "Connection refused" in line or "connection" in line, line
                assert "[SQL" not in line and "sqlalche.me" not in line, line

        generation["n"] = 2
        throwaway_postgres.start()
        wait_until(lambda: status(f"{base}/healthz") == 200, 40, "healthy again", log)
        wait_until(lambda: len(items()) == 6, 40, "new entries after recovery", log)
        assert httpx2.get(f"{base}/feeds/all.atom?limit=2", timeout=5).status_code == 200
        assert httpx2.get(f"{base}/", timeout=5).status_code == 200
        text = log.read_text()
        assert "scheduler claims again" in text
        assert "gave back 1 claims kept by polls the database failed" in text
    finally:
        returncode = daemon.stop()
    text = log.read_text()
    assert "Traceback" not in text, text
    assert returncode == 0, text
