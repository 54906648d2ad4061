"""A real `aggregator run` process for the tests that need the daemon itself.

Started on a free loopback port with its output in a log file, waited for until it
answers, and stopped with SIGTERM (killed only when it will not go), so a failing
test still leaves no process behind. Every failure message carries the daemon's log:
a test that times out says what the daemon was doing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    check: Callable[[], object], timeout: float, what: str, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    detail = f"\n--- daemon log ---\n{log.read_text()}" if log is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")


def settings_toml(database: str, port: int, **settings: str) -> str:
    """The `[aggregator]` table of a daemon on `port`; `settings` are TOML values as written."""
    lines = [
        "[aggregator]",
        f'database = "{database}"',
        f'listen = "127.0.0.1:{port}"',
        f'base_url = "http://127.0.0.1:{port}"',
        *(f"{key} = {value}" for key, value in settings.items()),
    ]
    return "\n".join(lines) + "\n"


@dataclass
class DaemonProcess:
    process: subprocess.Popen[bytes]
    port: int
    config: Path
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **options: object) -> httpx2.Response:
        return httpx2.get(self.base + path, **{"timeout": 10, **options})  # type: ignore[arg-type]

    def text(self) -> str:
        return self.log.read_text()

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait_exit(self, timeout: float = 30) -> int:
        return self.process.wait(timeout=timeout)

    def answers(self, path: str = "/healthz", statuses: Sequence[int] = (200, 503)) -> bool:
        assert self.alive(), f"daemon exited early:\n{self.text()}"
        try:
            return self.get(path, timeout=2).status_code in statuses
        except httpx2.HTTPError:
            return False

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then SIGKILL if it has not gone after `timeout`; the exit status."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_daemon(
    config: Path,
    *,
    port: int,
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = ("run",),
    prefix: Sequence[str] = (),
    ready: Callable[[DaemonProcess], object] | None = None,
    timeout: float = 30,
) -> DaemonProcess:
    """`aggregator --config CONFIG run` as a process, once `ready` (by default: `/healthz`
    answers at all) holds. `env` is added to this process's environment; `prefix` runs
    it under another command (`unshare --pid --fork`, say)."""
    log = log or config.with_name("daemon.log")
    with log.open("w") as sink:
        process = subprocess.Popen(
            [*prefix, sys.executable, "-m", "aggregator", "--config", str(config), *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    daemon = DaemonProcess(process, port, config, log)
    check = ready or (lambda d: d.answers())

    def ready_now() -> object:
        assert daemon.alive(), f"daemon exited early:\n{daemon.text()}"
        return check(daemon)

    try:
        wait_until(ready_now, timeout, "the daemon to be ready", log)
    except BaseException:
        daemon.stop(timeout=5)
        raise
    return daemon


@contextmanager
def running_daemon(config: Path, *, port: int, **options: object) -> Iterator[DaemonProcess]:
    """`start_daemon` for a `with` block: stopped at its end, whatever happened."""
    daemon = start_daemon(config, port=port, **options)  # type: ignore[arg-type]
    try:
        yield daemon
    finally:
        daemon.stop()
