"""What the status page and `aggregator status` say about each source, as a table of states."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.model import SourceState
from aggregator.outputs import OutputFeed
from aggregator.status import overview, relative, source_row

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)
BASE = SourceState(
    name="alpha",
    url="https://alpha.example/feed",
    path=None,
    enabled=True,
    last_polled_at=NOW - 5 * M,
    last_status="not_modified",
    next_poll_at=NOW + 25 * M,
    host="alpha.example",
    last_ok_at=NOW - 5 * M,
)


@pytest.mark.parametrize(
    ("case", "changes", "health", "detail", "next_poll"),
    [
        ("healthy", {}, "ok", "not modified", NOW + 25 * M),
        ("never polled", {"last_status": None, "next_poll_at": None}, "new", "not polled yet", NOW),
        (
            "failing",
            {"last_status": "error", "error_count": 3, "last_ok_at": NOW - 60 * M},
            "failing",
            "3 failed polls; last success 1 h ago",
            NOW + 25 * M,
        ),
        ("gone", {"gone": True, "last_status": "gone"}, "gone", "answered 410 Gone", None),
        ("disabled", {"enabled": False}, "disabled", "disabled in the configuration", None),
        (
            "host held by Retry-After",
            {"host_not_before": NOW + 90 * M},
            "ok",
            "host alpha.example asked us to wait until 2026-03-02 13:30:00 UTC",
            NOW + 90 * M,
        ),
        (
            "moved",
            {"moved_from": "https://old.example/feed", "moved_at": NOW - 120 * M},
            "ok",
            "moved from https://old.example/feed (2 h ago)",
            NOW + 25 * M,
        ),
    ],
)
def test_source_row(
    case: str,
    changes: dict[str, object],
    health: str,
    detail: str,
    next_poll: datetime | None,
) -> None:
    row = source_row(replace(BASE, **changes), None, NOW)  # type: ignore[arg-type]
    assert row.health == health, case
    assert detail in row.detail, case
    assert row.next_poll_at == next_poll, case


def test_overview_leaves_out_removed_sources_and_counts_healths() -> None:
    states = [BASE, replace(BASE, name="beta", gone=True), replace(BASE, name="removed")]
    feed = OutputFeed(name="all", title="All", sources=frozenset({"alpha", "beta"}))
    view = overview(
        states,
        {"alpha": "Alpha", "beta": None},
        {"all": feed},
        base_url="https://agg.example",
        now=NOW,
    )
    assert [row.name for row in view.sources] == ["alpha", "beta"]
    assert view.sources[0].title == "Alpha"
    assert (view.counts["ok"], view.counts["gone"]) == (1, 1)
    assert view.feeds[0].links == {
        "atom": "https://agg.example/feeds/all.atom",
        "rss": "https://agg.example/feeds/all.rss",
        "json": "https://agg.example/feeds/all.json",
    }
    assert view.opml_url == "https://agg.example/feeds.opml"


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (None, "—"),
        (timedelta(seconds=2), "now"),
        (timedelta(seconds=-40), "40 s ago"),
        (timedelta(minutes=5), "in 5 min"),
        (timedelta(hours=-3), "3 h ago"),
        (timedelta(days=2, hours=5), "in 2 d"),
    ],
)
def test_relative(delta: timedelta | None, text: str) -> None:
    assert relative(NOW + delta if delta is not None else None, NOW) == text


def test_status_command_prints_every_source(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parents[1] / "config" / "samples" / "marxist.xml"
    config = tmp_path / "aggregator.toml"
    config.write_text(
        f'[aggregator]\ndatabase = "sqlite:///{tmp_path / "s.db"}"\n'
        f'\n[sources.marxist]\npath = "{sample}"\n'
        f'\n[sources.missing]\npath = "{tmp_path / "nope.xml"}"\n',
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "aggregator", "--config", str(config)]
    subprocess.run([*command, "poll"], capture_output=True, text=True, timeout=120)
    shown = subprocess.run(
        [*command, "status"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    marxist = next(line for line in lines if "marxist" in line)
    missing = next(line for line in lines if "missing" in line)
    assert " ok " in marxist and " 6 " in marxist
    assert "failing" in missing and "file not found" in missing
    assert "ok 1, failing 1" in shown.stdout
