"""The status pages' charts, from plain numbers: SVG shapes, text alternatives, sorting."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from lxml import etree

from aggregator.charts import (
    ENTRIES,
    ERRORS,
    activity_chart,
    fill,
    sparkline,
    summary,
    totals,
    window,
)
from aggregator.model import DayActivity, SourceState
from aggregator.status import sort_rows, source_row

TODAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def days(*news: int, errors: tuple[int, ...] = ()) -> list[DayActivity]:
    start = TODAY - timedelta(days=len(news) - 1)
    return [
        DayActivity(
            start + timedelta(days=i),
            polls=4,
            ok=1 if new else 0,
            not_modified=3 if new else 4 - (i in errors),
            errors=1 if i in errors else 0,
            new=new,
        )
        for i, new in enumerate(news)
    ]


def test_window_and_fill_give_every_day_oldest_first() -> None:
    assert window(TODAY, 3) == [date(2026, 2, 28), date(2026, 3, 1), TODAY]
    filled = fill([DayActivity(TODAY, polls=2, new=5)], TODAY, 3)
    assert [(d.day, d.polls, d.new) for d in filled] == [
        (date(2026, 2, 28), 0, 0),
        (date(2026, 3, 1), 0, 0),
        (TODAY, 2, 5),
    ]


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        (fill([], TODAY, 30), "not polled in the 30 days to 2026-03-02"),
        (
            days(1, 0, 3, 2),
            "6 new entries in the 4 days to 2026-03-02; most on 2026-03-01 (3); 16 polls; "
            "no failures",
        ),
        (
            days(2, 0, 0, 0, errors=(3,)),
            "2 new entries in the 4 days to 2026-03-02; most on 2026-02-27 (2); 16 polls; "
            "failures on 1 day, last 2026-03-02; nothing new for the last 3 days",
        ),
    ],
)
def test_summary_says_what_the_chart_shows(history: list[DayActivity], expected: str) -> None:
    assert summary(history) == expected


def test_sparkline_draws_a_bar_per_day_with_news_and_marks_failures() -> None:
    svg = etree.fromstring(str(sparkline(days(4, 0, 2, 0, errors=(1, 3)), label="Alpha")))
    assert svg.get("role") == "img"
    assert svg.get("aria-label", "").startswith("Alpha: 6 new entries in the 4 days")
    assert svg.findtext(f"{SVG}title") == svg.get("aria-label")
    bars = [r for r in svg.iter(f"{SVG}rect") if r.get("fill") == ENTRIES]
    marks = [r for r in svg.iter(f"{SVG}rect") if r.get("fill") == ERRORS]
    assert len(bars) == 2 and len(marks) == 2
    # The busiest day is the tallest bar.
    assert float(bars[0].get("height")) > float(bars[1].get("height"))


def test_chart_text_is_escaped() -> None:
    svg = str(sparkline(days(1), label='<script>alert("x")</script>'))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    etree.fromstring(svg)


def test_activity_chart_is_labelled_and_stacks_poll_outcomes() -> None:
    history = days(3, 0, 1, errors=(1,))
    svg = etree.fromstring(str(activity_chart(history, label="Alpha: 30 days", chart_id="a")))
    assert svg.get("aria-labelledby") == "a-title a-desc"
    assert svg.findtext(f"{SVG}title") == "Alpha: 30 days"
    assert svg.findtext(f"{SVG}desc") == summary(history)
    fills = [r.get("fill") for r in svg.iter(f"{SVG}rect")]
    # Two days with news (blue), three days of polls stacked: ok, quiet, failed.
    assert fills.count(ENTRIES) == 2
    assert fills.count(ERRORS) == 1
    labels = [t.text for t in svg.iter(f"{SVG}text")]
    assert "entries per day (most 3)" in labels and "Mar 02" in labels


def test_totals_add_up_the_days() -> None:
    total = totals(days(3, 0, 1, errors=(1,)))
    assert (total.new, total.polls, total.errors, total.day) == (4, 12, 1, TODAY)


def state(name: str, **fields: object) -> SourceState:
    values: dict[str, object] = {"url": f"https://{name}.example/", "path": None, "enabled": True}
    values.update(fields)
    return SourceState(name, **values)  # type: ignore[arg-type]


def test_sorting_by_health_puts_the_worst_first() -> None:
    rows = [
        source_row(state("fine", last_status="ok", last_polled_at=NOW), None, NOW),
        source_row(state("bad", last_status="error", error_count=2), None, NOW),
        source_row(state("worse", last_status="error", error_count=9), None, NOW),
        source_row(state("off", enabled=False), None, NOW),
        source_row(state("fresh"), None, NOW),
        source_row(state("gone", gone=True, last_status="gone"), None, NOW),
    ]
    names = [row.name for row in sort_rows(rows, "health")]
    assert names == ["worse", "bad", "gone", "fresh", "off", "fine"]
    assert [row.name for row in sort_rows(rows, "name")] == sorted(names)
    assert [row.name for row in sort_rows(rows, "name", descending=True)] == sorted(names)[::-1]
    assert [row.name for row in sort_rows(rows, "errors", descending=True)][:2] == ["worse", "bad"]
    # Never polled sorts after every time; an unknown key falls back to names.
    assert next(row.name for row in sort_rows(rows, "last_poll")) == "fine"
    assert [row.name for row in sort_rows(rows, "'; DROP TABLE")] == sorted(names)
