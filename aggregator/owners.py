"""Who holds a claim, and whether that poller is known to have died.

A claim names its owner `ROLE:HOST:PID:PLACE:TOKEN`. PLACE stands for this boot
of this machine and the pid namespace the process runs in (read from /proc), so
a PID is only ever looked up where it means the same process: a container with
the host's name but its own pids (`docker run --network host`), a cloned VM
with the same host name, or the machine after a reboot all have another PLACE.

An owner is dead when its PLACE is ours and its PID is no running process — or
is this very process, and the owner has been retired here (a pass that ended
without managing to give its claims back). Anything else (another machine, no
/proc to read, a PID taken by a new process) counts as alive, and its claims
end only with their lease: taking over a live poller's claim would poll a
source twice, waiting out a lease only delays it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import uuid
from pathlib import Path

# Owners created in this process and still at work (see `is_dead`).
_IN_USE: set[str] = set()


@functools.cache
def _place() -> str:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return "-"  # not Linux: no owner is ever known dead
    return hashlib.blake2b(f"{boot} {namespace}".encode(), digest_size=4).hexdigest()


def new_owner(role: str) -> str:
    """A name for a poller in claims: unique, readable in the database, and in use
    until `retire`."""
    owner = f"{role}:{socket.gethostname()}:{os.getpid()}:{_place()}:{uuid.uuid4().hex[:6]}"
    _IN_USE.add(owner)
    return owner


def retire(owner: str) -> None:
    """This owner takes no claims any more; any it still holds may be taken over."""
    _IN_USE.discard(owner)


def is_dead(owner: str) -> bool:
    """True only when the owner's process is known to be gone (see the module's doc)."""
    parts = owner.split(":")
    if len(parts) != 5:
        return False
    _role, host, pid_text, place, _token = parts
    if place == "-" or place != _place() or host != socket.gethostname():
        return False
    if not (pid_text.isascii() and pid_text.isdigit()) or len(pid_text) > 9:
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return owner not in _IN_USE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: a process of another user's, alive
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed process its parent has not reaped yet: it can hold nothing any more."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    # "PID (COMMAND) STATE …": the command may hold spaces and parentheses itself.
    return stat.rpartition(")")[2].split()[:1] == ["Z"]
