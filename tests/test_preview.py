"""`aggregator preview FEED [--limit N] [--why]` over the bundled samples in a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.cli import main

SAMPLES = Path(__file__).resolve().parents[1] / "config" / "samples"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    body = f"""
[aggregator]
database = "sqlite:///{tmp_path / "aggregator.db"}"
retention = "3650d"

[sources.marxist]
path = "{SAMPLES / "marxist.xml"}"
categories = ["world"]

[sources.socialist-appeal]
path = "{SAMPLES / "socialist-appeal.atom"}"
categories = ["world"]

[sources.socialist-revolution]
path = "{SAMPLES / "socialist-revolution.xml"}"
categories = ["usa"]

[feeds.middle-east]
include = ["Israel", "Gaza", "Palestin*", "title:Iran"]
exclude = ["title:\\"Help Wanted\\""]
"""
    path = tmp_path / "aggregator.toml"
    path.write_text(body, encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(path), "poll", "--all"])
    assert result.exit_code == 0, result.output
    return path


def preview(config: Path, *args: str) -> tuple[int, list[list[str]], str]:
    result = CliRunner().invoke(main, ["--config", str(config), "preview", *args])
    rows = [line.split("\t") for line in result.stdout.splitlines() if line]
    return result.exit_code, rows, result.stderr


def test_preview_lists_what_the_feed_publishes_with_sources(config: Path) -> None:
    code, rows, summary = preview(config, "middle-east")
    assert code == 0
    titles = [row[1] for row in rows]
    assert "Iran: For an Independent Labor Movement!" in titles
    assert not any(title.startswith("Help Wanted") for title in titles)
    netanyahu = next(row for row in rows if row[1].startswith("After Netanyahu"))
    assert netanyahu[2] == "marxist, socialist-appeal"
    assert f"middle-east: {len(rows)} stories would be published" in summary
    assert [row[0] for row in rows] == sorted((row[0] for row in rows), reverse=True)


def test_preview_why_shows_the_deciding_query_of_every_story_looked_at(config: Path) -> None:
    code, rows, summary = preview(config, "middle-east", "--why")
    assert code == 0
    why = {row[1]: row[3] for row in rows}
    assert why["Iran: For an Independent Labor Movement!"] == (
        "admitted by include title:Iran (copy from socialist-revolution)"
    )
    help_wanted = next(title for title in why if title.startswith("Help Wanted"))
    assert (
        why[help_wanted] == 'rejected by exclude title:"Help Wanted" (copy from socialist-appeal)'
    )
    assert why["Tiananmen: a Marxist Reading Guide"] == (
        "rejected: no include query matches any copy"
    )
    assert "rejected on the way" in summary


def test_preview_category_feed_includes_stories_any_copy_of_which_is_in_it(config: Path) -> None:
    # socialist-appeal (world) republishes two marxist articles; usa holds only
    # socialist-revolution, whose own stories are in it whoever else carried them.
    code, rows, _ = preview(config, "usa")
    assert code == 0 and rows
    assert all("socialist-revolution" in row[2].split(", ") for row in rows)


def test_preview_limit(config: Path) -> None:
    code, rows, summary = preview(config, "world", "--limit", "2")
    assert code == 0 and len(rows) == 2
    assert "world: 2 stories would be published" in summary


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere"], "no output feed named 'nowhere' (known: all, middle-east, usa, world)"),
        (["world", "--limit", "0"], "Invalid value for '--limit'"),
    ],
)
def test_preview_bad_usage_exits_2(config: Path, args: list[str], message: str) -> None:
    code, _, stderr = preview(config, *args)
    assert code == 2
    assert message in stderr
