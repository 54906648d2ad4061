"""systemd's service notification protocol (sd_notify): READY, RELOADING, STOPPING, WATCHDOG.

Written by hand because the protocol is one datagram of `KEY=VALUE` lines to the
Unix socket named in $NOTIFY_SOCKET, and the libraries that wrap it are either
unmaintained (sdnotify: last release 2017) or bind libsystemd through a C build
(systemd-python, cysystemd) that a plain `pip install` on a server without the
headers cannot do. Outside systemd ($NOTIFY_SOCKET unset) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("aggregator.systemd")


def notify(*lines: str) -> bool:
    """Send `lines` (e.g. "READY=1", "STATUS=…") to systemd; False when not under it."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract-namespace socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(lines).encode("utf-8"))
    except OSError as error:
        log.warning("cannot notify systemd at %s: %s", os.environ.get("NOTIFY_SOCKET"), error)
        return False
    return True


def watchdog_period() -> float | None:
    """How often to send WATCHDOG=1: half of $WATCHDOG_USEC, if the watchdog is for us."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1_000_000 / 2
