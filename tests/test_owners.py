"""Claim owners: a poller known to be dead is told from one that may be alive.

Real processes, really exited, killed and left unreaped: `is_dead` is what lets
the next poll or daemon take over claims at once instead of waiting out a lease,
so it must never call a live poller dead.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from aggregator.owners import is_dead, new_owner, retire

MAKE_OWNER = "from aggregator.owners import new_owner; print(new_owner('cli'), flush=True)"


def child(*, stay: bool) -> tuple[subprocess.Popen[str], str]:
    """A process that makes an owner name for itself, then exits or sleeps."""
    code = MAKE_OWNER + ("\nimport time; time.sleep(60)" if stay else "")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    owner = process.stdout.readline().strip()
    assert owner.startswith(f"cli:{socket.gethostname()}:{process.pid}:"), owner
    return process, owner


def test_the_owner_of_a_process_that_exited_is_dead() -> None:
    process, owner = child(stay=False)
    process.wait(timeout=30)
    assert is_dead(owner)


def test_the_owner_of_a_running_process_is_alive_until_it_is_killed() -> None:
    process, owner = child(stay=True)
    try:
        assert not is_dead(owner)
        process.send_signal(signal.SIGKILL)
        # Killed but not yet reaped (a zombie): it can hold nothing any more.
        deadline = time.monotonic() + 10
        while not is_dead(owner):
            assert time.monotonic() < deadline, "a killed, unreaped process still counts as alive"
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait(timeout=30)
    assert is_dead(owner)


def test_an_owner_of_this_process_is_alive_until_it_is_retired() -> None:
    owner = new_owner("run")
    assert not is_dead(owner)
    retire(owner)
    assert is_dead(owner)


def _with(owner: str, index: int, value: str) -> str:
    parts = owner.split(":")
    parts[index] = value
    return ":".join(parts)


@pytest.mark.parametrize(
    "why, change",
    [
        ("another host name", lambda o: _with(o, 1, "elsewhere")),
        ("another boot or pid namespace", lambda o: _with(o, 3, "0badc0de")),
        ("a place nobody could read", lambda o: _with(o, 3, "-")),
        ("a pid that is not a number", lambda o: _with(o, 2, "x1")),
        ("a pid of non-ASCII digits", lambda o: _with(o, 2, "\u00b2")),
        ("a pid past any pid", lambda o: _with(o, 2, "9" * 40)),
        ("the format before places", lambda o: ":".join([*o.split(":")[:3], "abcdef"])),
        ("no format at all", lambda o: "someone"),
        ("empty", lambda o: ""),
    ],
)
def test_an_owner_that_cannot_be_checked_here_counts_as_alive(
    why: str, change: Callable[[str], str]
) -> None:
    process, owner = child(stay=False)
    process.wait(timeout=30)
    assert is_dead(owner)
    assert not is_dead(change(owner)), why


def test_a_pid_of_a_running_process_of_another_owner_counts_as_alive() -> None:
    # PID 1 always runs; an owner naming it (a reused pid) must not be called dead.
    owner = _with(new_owner("cli"), 2, "1")
    assert os.getpid() != 1
    assert not is_dead(owner)
