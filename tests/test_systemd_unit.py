"""systemd/aggregator.service: the promised directives, and `systemd-analyze verify` on it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "aggregator.service"


def directives() -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault((section, key), []).append(value)
    return found


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Type", "notify"),
        ("Restart", "on-failure"),
        ("StateDirectory", "aggregator"),
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("PrivateDevices", "yes"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("RestartPreventExitStatus", "2"),
        ("CapabilityBoundingSet", ""),
    ],
)
def test_unit_sets(key: str, value: str) -> None:
    assert value in directives()[("Service", key)]


def test_unit_stop_timeout_outlasts_the_shutdown_grace_and_watchdog_is_on() -> None:
    from aggregator.daemon import SHUTDOWN_GRACE

    found = directives()
    assert int(found[("Service", "TimeoutStopSec")][0]) > SHUTDOWN_GRACE + 5
    assert int(found[("Service", "WatchdogSec")][0]) > 0


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    # verify checks that ExecStart names an executable: point it at this checkout's.
    executable = Path(sys.executable).with_name("aggregator")
    if not executable.exists():
        pytest.skip(f"no aggregator entry point beside {sys.executable} (pip install -e .)")
    unit = tmp_path / "aggregator.service"
    unit.write_text(
        UNIT.read_text().replace("/opt/aggregator/.venv/bin/aggregator", str(executable))
    )
    verified = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    problems = [
        line
        for line in (verified.stdout + verified.stderr).splitlines()
        # A container without systemd as PID 1 has no default targets to load; that is
        # about this machine, not the unit.
        if line.strip() and "sysinit.target" not in line and "Unit default.target" not in line
    ]
    assert problems == [], verified.stderr
