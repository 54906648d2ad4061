"""Replacing a file so that no reader ever sees half of it, and a crash leaves the old
one or the new one: a temporary file in the same folder, written and synced, then
renamed over the target, and the folder synced so the rename itself survives.

Used for the configuration the `sources` commands edit (which keeps its mode and
owner) and for the output files `build` and `output_dir` write (which readers and a
web server must be able to read).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(target: Path, data: bytes, *, keep_mode_and_owner: bool = False) -> bool:
    """Replace `target` with `data`; False, writing nothing, when it holds those bytes.

    A new file is mode 0644; with `keep_mode_and_owner` the target's own mode and owner
    carry over (the owner only when this process may give files away, i.e. as root)."""
    try:
        status: os.stat_result | None = target.stat()
    except FileNotFoundError:
        status = None
    if status is not None and status.st_size == len(data) and target.read_bytes() == data:
        return False
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if keep_mode_and_owner and status is not None:
            os.chmod(temp_name, status.st_mode & 0o7777)
            with contextlib.suppress(PermissionError):
                os.chown(temp_name, status.st_uid, status.st_gid)
        else:
            os.chmod(temp_name, 0o644)
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return True
