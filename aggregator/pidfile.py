"""The daemon's pid file: written by `run`, read by the commands that ask it to reload.

The daemon holds an exclusive `flock` on the file for as long as it runs, so whether a
daemon is alive is answered by the lock, not by the number inside: a file left behind
by a killed daemon (or a pid the system has since given to another process) is stale
as soon as nobody holds its lock. Hand-written because the PyPI pid-file packages
either daemonise (we run under systemd, in the foreground) or judge liveness by the pid
alone, which is exactly the test that goes wrong after a crash.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
from dataclasses import dataclass
from pathlib import Path


class PidFileError(Exception):
    """The pid file cannot be taken: another daemon holds it, or it cannot be written."""


@dataclass(frozen=True, slots=True)
class Reload:
    """What `signal_reload` did, for the command's output."""

    told: bool
    pid: int | None
    reason: str  # for people: "sent SIGHUP to the daemon (pid 123)", "no daemon is running …"


class PidFile:
    """The pid file of the running daemon; `acquire` on start, `release` on stop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Write our pid and hold the lock; PidFileError if another daemon holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EAGAIN, errno.EACCES):
                holder = read_pid(self.path)
                raise PidFileError(
                    f"{self.path}: another daemon (pid {holder or '?'}) runs with this pid file"
                ) from None
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            os.fsync(fd)
        except OSError:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Remove the file and drop the lock (removing first, so no reader sees our pid
        in a file nobody locks)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            if read_pid(self.path) == os.getpid():
                self.path.unlink()
        os.close(self._fd)
        self._fd = None


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def running_pid(path: Path) -> int | None:
    """The pid of the daemon holding `path`'s lock; None when none does (or no file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.EACCES):
                return read_pid(path)
            raise
        # We got the lock: nobody holds it, the file is stale.
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def signal_reload(path: Path) -> Reload:
    """Send SIGHUP to the daemon whose pid file is `path`, if one runs."""
    pid = running_pid(path)
    if pid is None:
        stale = " (a stale pid file was left there)" if path.exists() else ""
        return Reload(False, None, f"no daemon is running with pid file {path}{stale}")
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return Reload(False, pid, f"the daemon (pid {pid}) has just exited")
    except PermissionError:
        return Reload(
            False,
            pid,
            f"not allowed to signal the daemon (pid {pid}); run `systemctl reload aggregator` "
            "or `kill -HUP` as its user",
        )
    return Reload(True, pid, f"told the running daemon (pid {pid}) to reload")
