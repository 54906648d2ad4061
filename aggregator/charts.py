"""Small charts for the status pages, drawn as inline SVG from plain numbers.

Pure: days of `DayActivity` in, SVG markup out (escaped, so safe to put in a page
as is). Each chart carries its own text alternative (`<title>`, `<desc>` and an
`aria-label`), and `summary` says in words what the chart shows. Hand-written: the
charting libraries draw on a canvas in the browser (JavaScript) or bring a plotting
stack for a few rectangles; these are a few dozen lines of SVG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from typing import Final

from markupsafe import Markup, escape

from aggregator.model import DayActivity

DAYS: Final = 30
# Colours: readable on white (contrast 4.5:1 or more) and apart for colour-blind eyes
# (blue against orange-red); every chart also says its numbers in text.
ENTRIES: Final = "#0b57d0"
OK: Final = "#1a7f37"
QUIET: Final = "#6e7781"  # not modified / unchanged
ERRORS: Final = "#c5221f"
AXIS: Final = "#57606a"


def window(today: date, days: int = DAYS) -> list[date]:
    """The last `days` days up to and including `today`, oldest first."""
    return [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def fill(activity: Sequence[DayActivity], today: date, days: int = DAYS) -> list[DayActivity]:
    """One `DayActivity` per day of the window, zeros where nothing happened."""
    known: Mapping[date, DayActivity] = {day.day: day for day in activity}
    return [known.get(day) or DayActivity(day) for day in window(today, days)]


def summary(days: Sequence[DayActivity]) -> str:
    """The chart in words: entries in all, the busiest day, days with failures."""
    if not days:
        return "no activity"
    total = sum(day.new for day in days)
    polls = sum(day.polls for day in days)
    failed = [day for day in days if day.errors]
    span = f"{len(days)} days to {days[-1].day.isoformat()}"
    if polls == 0:
        return f"not polled in the {span}"
    parts = [f"{total} new entries in the {span}"]
    if total:
        busiest = max(days, key=lambda day: (day.new, day.day))
        parts.append(f"most on {busiest.day.isoformat()} ({busiest.new})")
    parts.append(f"{polls} polls")
    if failed:
        parts.append(
            f"failures on {len(failed)} day{'s' if len(failed) != 1 else ''}, "
            f"last {failed[-1].day.isoformat()}"
        )
    else:
        parts.append("no failures")
    # A source that used to bring news and stopped is what a reader should notice.
    streak = 0
    for day in reversed(days):
        if day.new or not day.polls:
            break
        streak += 1
    if total and streak >= 3:
        parts.append(f"nothing new for the last {streak} days")
    return "; ".join(parts)


def sparkline(
    days: Sequence[DayActivity], *, label: str, width: int = 120, height: int = 28
) -> Markup:
    """Entries per day as thin bars, days with failed polls marked red underneath."""
    text = f"{label}: {summary(days)}"
    count = max(1, len(days))
    step = width / count
    bar_area = height - 5
    peak = max((day.new for day in days), default=0) or 1
    shapes = [
        f'<rect x="0" y="{bar_area}" width="{width}" height="1" fill="{AXIS}" opacity="0.4"/>'
    ]
    thin = max(1.0, step - 1)
    for index, day in enumerate(days):
        x = index * step + 0.5
        if day.new:
            tall = max(1.5, bar_area * day.new / peak)
            shapes.append(
                f'<rect x="{x:.1f}" y="{bar_area - tall:.1f}" width="{thin:.1f}" '
                f'height="{tall:.1f}" fill="{ENTRIES}"/>'
            )
        if day.errors:
            shapes.append(
                f'<rect x="{x:.1f}" y="{height - 3}" width="{thin:.1f}" height="3" '
                f'fill="{ERRORS}"/>'
            )
    return Markup(
        f'<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(text)}">'
        f"<title>{escape(text)}</title>{''.join(shapes)}</svg>"
    )


def activity_chart(days: Sequence[DayActivity], *, label: str, chart_id: str) -> Markup:
    """Two panels over the same days: entries that arrived, and how each day's polls
    ended (succeeded with news, not modified or unchanged, failed), stacked."""
    width, left, right = 640, 34, 8
    top_height, bottom_height, gap, axis = 90, 60, 26, 18
    height = top_height + gap + bottom_height + axis
    count = max(1, len(days))
    step = (width - left - right) / count
    peak_new = max((day.new for day in days), default=0)
    peak_polls = max((day.polls for day in days), default=0)
    shapes: list[str] = []

    def bar(index: int, base: float, value: float, scale: float, colour: str) -> float:
        tall = value * scale
        if value:
            shapes.append(
                f'<rect x="{left + index * step + 1:.1f}" y="{base - tall:.1f}" '
                f'width="{max(1.0, step - 2):.1f}" height="{tall:.1f}" fill="{colour}"/>'
            )
        return tall

    top_base = float(top_height)
    new_scale = (top_height - 12) / peak_new if peak_new else 0.0
    bottom_base = float(top_height + gap + bottom_height)
    poll_scale = (bottom_height - 4) / peak_polls if peak_polls else 0.0
    for index, day in enumerate(days):
        bar(index, top_base, day.new, new_scale, ENTRIES)
        base = bottom_base
        for value, colour in (
            (day.ok, OK),
            (day.not_modified + day.unchanged, QUIET),
            (day.errors, ERRORS),
        ):
            base -= bar(index, base, value, poll_scale, colour)
    for base in (top_base, bottom_base):
        shapes.append(
            f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" stroke="{AXIS}"/>'
        )
    shapes.append(_text(4, 12, f"entries per day (most {peak_new})"))
    shapes.append(_text(4, top_height + gap - 6, f"polls per day (most {peak_polls})"))
    if days:
        for index in sorted({0, len(days) // 2, len(days) - 1}):
            x = left + index * step + step / 2
            anchor = "start" if index == 0 else "end" if index == len(days) - 1 else "middle"
            shapes.append(
                _text(x, height - 4, days[index].day.strftime("%b %d"), anchor=anchor, size=11)
            )
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    return Markup(
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="{title_id} {desc_id}" preserveAspectRatio="xMinYMin meet">'
        f'<title id="{title_id}">{escape(label)}</title>'
        f'<desc id="{desc_id}">{escape(summary(days))}</desc>'
        f"{''.join(shapes)}</svg>"
    )


def _text(x: float, y: float, words: str, *, anchor: str = "start", size: int = 12) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{AXIS}" '
        f'text-anchor="{anchor}" font-family="system-ui, sans-serif">{escape(words)}</text>'
    )


def totals(days: Sequence[DayActivity]) -> DayActivity:
    """All the days added up (dated the last of them)."""
    total = DayActivity(days[-1].day if days else date.min)
    for day in days:
        total = replace(
            total,
            polls=total.polls + day.polls,
            ok=total.ok + day.ok,
            not_modified=total.not_modified + day.not_modified,
            unchanged=total.unchanged + day.unchanged,
            errors=total.errors + day.errors,
            new=total.new + day.new,
            updated=total.updated + day.updated,
            bytes=total.bytes + day.bytes,
        )
    return total
