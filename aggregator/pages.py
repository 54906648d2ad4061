"""HTML for people, rendered on the server (no JavaScript): the status page, a page per
source and a page per output feed.

Jinja2 templates live in `aggregator/templates/`: `base.html` holds the layout and
style, each page extends it. A page is a template plus a function here that hands it
plain rows from `status` and charts from `charts`; escaping is on for every value.
Links between pages are relative, so the pages work under any host and path prefix;
subscription links use `base_url`, the address readers subscribe to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from aggregator import __version__, charts
from aggregator.model import DayActivity
from aggregator.status import FeedPage, Overview, SourcePage, SourceRow, iso, relative

FORMATS = {"atom": "Atom", "rss": "RSS", "json": "JSON Feed"}
MEDIA_TYPES = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "json": "application/feed+json",
}
# The sortable columns of the sources table, in order; None: not sortable.
COLUMNS: tuple[tuple[str | None, str], ...] = (
    ("name", "source"),
    ("health", "health"),
    (None, "last 30 days"),
    ("last_poll", "last poll"),
    ("next_poll", "next poll"),
    ("entries", "entries"),
    ("errors", "errors"),
)
SORT_LABELS = {
    "name": "name",
    "health": "health (worst first)",
    "last_poll": "last poll",
    "next_poll": "next poll",
    "entries": "entries",
    "errors": "errors",
}


def _machine(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when is not None else ""


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("aggregator", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,  # a misspelt field is an error in tests, not a blank cell
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["iso"] = iso
    env.filters["machine"] = _machine
    env.globals["relative"] = relative
    env.globals["version"] = __version__
    env.globals["formats"] = FORMATS
    env.globals["media_types"] = MEDIA_TYPES
    return env


def status_page(
    view: Overview,
    rows: Sequence[SourceRow] | None = None,
    *,
    activity: Mapping[str, Sequence[DayActivity]] | None = None,
    sort: str = "name",
    descending: bool = False,
) -> str:
    """`/`: every source (in `rows` order) with its health and a sparkline of its last
    30 days; every output feed with its subscription links."""
    listed = tuple(rows) if rows is not None else view.sources
    today = view.now.date()
    sparklines = {
        row.name: charts.sparkline(
            charts.fill((activity or {}).get(row.name, ()), today),
            label=f"{row.title}, last 30 days",
        )
        for row in listed
    }
    return _render(
        "status.html",
        root="",
        view=view,
        rows=listed,
        sparklines=sparklines,
        columns=COLUMNS,
        sort=sort if sort in SORT_LABELS else "name",
        sort_labels=SORT_LABELS,
        descending=descending,
        now=view.now,
        opml_url=view.opml_url,
    )


def source_page(page: SourcePage, *, now: datetime, opml_url: str) -> str:
    """`/sources/NAME`: its state, last error in full, 30-day chart, polls and entries."""
    chart = charts.activity_chart(
        page.days, label=f"{page.row.title}: the last 30 days", chart_id="activity"
    )
    return _render(
        "source.html",
        root="../",
        page=page,
        chart=chart,
        summary=charts.summary(page.days),
        colours={
            "entries": charts.ENTRIES,
            "ok": charts.OK,
            "quiet": charts.QUIET,
            "errors": charts.ERRORS,
        },
        now=now,
        opml_url=opml_url,
    )


def feed_page(page: FeedPage, *, now: datetime, opml_url: str) -> str:
    """`/outputs/NAME`: subscription links, what goes in, and what it publishes now."""
    return _render("output.html", root="../", page=page, now=now, opml_url=opml_url)


def missing_page(message: str, *, root: str, opml_url: str) -> str:
    return _render("missing.html", root=root, message=message, opml_url=opml_url)


def _render(template: str, **values: object) -> str:
    return _environment().get_template(template).render(**values)
