"""Where the pid file is, and what its lock says (a real second process holds it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aggregator.config import parse_config
from aggregator.pidfile import PidFile, PidFileError, running_pid, signal_reload


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ("", "var/aggregator.pid"),  # the default database is var/aggregator.db
        ('database = "sqlite:///data/agg.db"\n', "data/aggregator.pid"),
        ('database = "sqlite:////srv/agg/agg.db"\n', "/srv/agg/aggregator.pid"),
        ('database = "postgresql+psycopg://u@db/agg"\n', "var/aggregator.pid"),
        ('pid_file = "/run/aggregator/aggregator.pid"\n', "/run/aggregator/aggregator.pid"),
        ('pid_file = "run/a.pid"\n', "run/a.pid"),
    ],
)
def test_pid_file_defaults_to_beside_the_database(
    tmp_path: Path, settings: str, expected: str
) -> None:
    config = parse_config(f"[aggregator]\n{settings}", tmp_path / "aggregator.toml")
    assert config.settings.pid_file == tmp_path / expected


HOLDER = """
import sys, time
from pathlib import Path
from aggregator.pidfile import PidFile
held = PidFile(Path(sys.argv[1]))
held.acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_the_lock_not_the_number_says_whether_a_daemon_runs(tmp_path: Path) -> None:
    path = tmp_path / "run" / "aggregator.pid"
    assert running_pid(path) is None
    assert not signal_reload(path).told
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert running_pid(path) == holder.pid
        with pytest.raises(PidFileError, match=f"another daemon \\(pid {holder.pid}\\)"):
            PidFile(path).acquire()
    finally:
        holder.kill()
        holder.wait()
    # Killed: the number is still in the file, but nobody holds the lock.
    assert path.read_text().strip() == str(holder.pid)
    assert running_pid(path) is None
    result = signal_reload(path)
    assert (result.told, result.pid) == (False, None)
    assert "a stale pid file was left there" in result.reason
    mine = PidFile(path)
    mine.acquire()
    assert running_pid(path) == os.getpid()
    mine.release()
    assert not path.exists()


def test_releasing_leaves_a_file_another_process_wrote_alone(tmp_path: Path) -> None:
    path = tmp_path / "aggregator.pid"
    mine = PidFile(path)
    mine.acquire()
    path.write_text("1\n")  # say an admin "fixed" it by hand
    mine.release()
    assert path.read_text() == "1\n"
