"""`aggregator sources …` and `aggregator prune`: the admin's commands.

Thin: the edits are `sources` (pure), the file handling `configfile`, the fetch
`probe`, OPML `opml`, the reload `pidfile`. Every edit is checked as the daemon would
check it before the file is touched; a refused one prints each problem as FILE:LINE
and exits 2, leaving the file exactly as it was.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ParamSpec, TypeVar

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.engine import make_url

from aggregator import __version__, configfile
from aggregator.atomicfile import write_atomic
from aggregator.cli_support import EXIT_FAILURE, EXIT_USAGE, err, fail, load, out, print_errors, say
from aggregator.config import Config, name_problem, url_problem
from aggregator.configfile import ConfigText, SaveError
from aggregator.fetch import FetchError
from aggregator.model import SourceState
from aggregator.opml import ExportedSource, OpmlError, read_opml, write_opml
from aggregator.pidfile import signal_reload
from aggregator.probe import NotAFeed, Probe, probe_all, probe_one
from aggregator.sources import (
    Candidate,
    EditError,
    ImportPlan,
    NewSource,
    Skipped,
    add_sources,
    changes_for,
    find_duplicate,
    parse_value,
    plan_import,
    propose_name,
    remove_from_feeds,
    remove_source,
    set_keys,
)
from aggregator.status import health_of
from aggregator.store import Store, describe_error, display_url

_T = TypeVar("_T")
_P = ParamSpec("_P")

_NO_RELOAD = click.option(
    "--no-reload",
    is_flag=True,
    help="Save only; do not tell a running daemon to reload.",
)


@click.group()
def sources() -> None:
    """List and edit the sources in the configuration file (comments and layout kept)."""


# -- list ----------------------------------------------------------------------


@sources.command("list")
@click.pass_context
def list_sources(ctx: click.Context) -> None:
    """A table: name, URL, categories, interval, enabled, health."""
    config = load(ctx)
    health = {name: health_of(state) for name, state in _states(config).items()}
    default = _duration(config.settings.interval.total_seconds())
    folder = config.path.parent
    rows = [
        (
            name,
            source.url or _shown_path(source.path, folder),
            ", ".join(source.categories),
            _duration(source.interval.total_seconds()) if source.interval else f"{default}*",
            "yes" if source.enabled else "no",
            health.get(name, "new") if source.enabled else "disabled",
        )
        for name, source in config.sources.items()
    ]
    if not out.is_terminal:
        for row in rows:
            click.echo("\t".join(row))
        return
    table = Table(
        title=f"{config.path}: {len(rows)} sources", title_justify="left", caption_justify="left"
    )
    for heading in ("name", "url / path", "categories", "interval", "enabled", "health"):
        table.add_column(heading, overflow="fold", no_wrap=heading in ("name", "interval"))
    for row in rows:
        table.add_row(*row)
    table.caption = f"* the default interval ({default})"
    out.print(table)


def _states(config: Config) -> dict[str, SourceState]:
    """What the database knows of each source; nothing when there is no database yet (or
    it does not answer): the file alone still lists and exports."""
    url = make_url(config.settings.database)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return {}  # not polled yet; and listing must not create the database
    try:
        store = Store(config.settings.database)
        try:
            return {state.name: state for state in store.source_states()}
        finally:
            store.close()
    except Exception:  # every driver has its own error types; all mean the same here
        return {}


def _shown_path(path: Path | None, folder: Path) -> str:
    """A local file as the configuration would name it: relative to its folder if inside."""
    if path is None:
        return ""
    return str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)


def _duration(seconds: float) -> str:
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


# -- add -------------------------------------------------------------------------


@sources.command("add")
@click.argument("url")
@click.option("--name", default=None, help="Name of the source (default: from the feed's title).")
@click.option(
    "--category", "categories", multiple=True, metavar="NAME", help="A category (repeatable)."
)
@click.option("--interval", default=None, metavar="DURATION", help="Its own poll interval.")
@click.option("--title", default=None, help="Its title in outputs (default: the feed's own).")
@_NO_RELOAD
@click.pass_context
def add(
    ctx: click.Context,
    url: str,
    name: str | None,
    categories: tuple[str, ...],
    interval: str | None,
    title: str | None,
    no_reload: bool,
) -> None:
    """Fetch URL once, check it is a feed (or a page offering one), add it as a source."""
    config = load(ctx)
    current = _read(config)
    problem = url_problem(url)
    if problem:
        fail(problem, EXIT_USAGE)
    existing = {n: s.url for n, s in config.sources.items()}
    _refuse_duplicate(url, existing)
    if name is not None:
        problem = name_problem(name)
        if problem:
            fail(problem, EXIT_USAGE)
        if name in config.sources:
            fail(f"a source named {name!r} exists already (try another --name)", EXIT_USAGE)
    say(f"fetching {url} …", to=err)
    try:
        found = probe_one(config, url, name=name or "new source")
    except FetchError as error:
        fail(f"not added: {error.url}: {error.cause}")
    except NotAFeed as error:
        fail(f"not added: {error}")
    if found.url != url:
        _refuse_duplicate(found.url, existing)
    chosen = name or propose_name(found.feed.title, found.url, config.sources)
    source = NewSource(
        name=chosen,
        url=found.url,
        title=title,
        categories=tuple(dict.fromkeys(categories)),
        interval=interval,
    )
    new_config = _save(current, _edit(add_sources, current.text, [source]))
    _describe_probe(found)
    say(
        f"added [sources.{chosen}] to {config.path}: {found.url}"
        + (f" (categories: {', '.join(source.categories)})" if source.categories else "")
    )
    _reload(new_config, no_reload)


def _refuse_duplicate(url: str, existing: dict[str, str | None]) -> None:
    duplicate = find_duplicate(url, existing)
    if duplicate is not None:
        fail(f"{url} is already a source: {duplicate} ({existing[duplicate]})", EXIT_USAGE)


def _describe_probe(found: Probe) -> None:
    if found.page is not None:
        others = [url for url in found.offered if url != found.url]
        also = f"; it also offers {', '.join(others)}" if others else ""
        say(f"{found.page} is an HTML page; its feed is {found.url}{also}")
    feed = found.feed
    dates = [d for d in (e.published or e.updated for e in feed.entries) if d is not None]
    newest = f", newest {max(dates):%Y-%m-%d}" if dates else ""
    say(f"feed: {feed.title or '(untitled)'!r}, {feed.format}, {len(feed.entries)} entries{newest}")


# -- remove, enable, disable, set ----------------------------------------------------


@sources.command("remove")
@click.argument("name")
@_NO_RELOAD
@click.pass_context
def remove(ctx: click.Context, name: str, no_reload: bool) -> None:
    """Remove source NAME (also from the `sources` lists of output feeds)."""
    config = load(ctx)
    current = _read(config)
    text, feeds = _edit(remove_from_feeds, current.text, name)
    new_config = _save(current, _edit(remove_source, text, name))
    also = f"; also taken out of {', '.join(f'feeds.{f}.sources' for f in feeds)}" if feeds else ""
    say(
        f"removed [sources.{name}] from {config.path}{also}. Its stories are no longer "
        "published; they stay in the database until retention prunes them."
    )
    _reload(new_config, no_reload)


@sources.command("enable")
@click.argument("name")
@_NO_RELOAD
@click.pass_context
def enable(ctx: click.Context, name: str, no_reload: bool) -> None:
    """Poll source NAME again."""
    _set_enabled(ctx, name, True, no_reload)


@sources.command("disable")
@click.argument("name")
@_NO_RELOAD
@click.pass_context
def disable(ctx: click.Context, name: str, no_reload: bool) -> None:
    """Stop polling source NAME (its stories stay published)."""
    _set_enabled(ctx, name, False, no_reload)


def _set_enabled(ctx: click.Context, name: str, enabled: bool, no_reload: bool) -> None:
    config = load(ctx)
    current = _read(config)
    source = config.sources.get(name)
    if source is None:
        _edit(set_keys, current.text, name, {})  # says "no source named …" with a hint
        return
    word = "enabled" if enabled else "disabled"
    if source.enabled == enabled:
        out.print(f"{name} is {word} already; nothing changed", highlight=False, soft_wrap=True)
        return
    # Enabled is the default: enabling removes `enabled = false`, so disable then
    # enable gives back the file as it was.
    new_config = _save(
        current, _edit(set_keys, current.text, name, {"enabled": None if enabled else False})
    )
    say(f"{name} {word} in {config.path}")
    _reload(new_config, no_reload)


@sources.command("set")
@click.argument("name")
@click.argument("key")
@click.argument("value")
@_NO_RELOAD
@click.pass_context
def set_(ctx: click.Context, name: str, key: str, value: str, no_reload: bool) -> None:
    """Set KEY of source NAME to VALUE (url, path, title, categories, interval, enabled,
    allow_private); an empty VALUE removes the key. Categories: "a,b"."""
    config = load(ctx)
    current = _read(config)
    try:
        parsed = parse_value(key, value)
    except EditError as error:
        fail(str(error), EXIT_USAGE)
    new_config = _save(current, _edit(set_keys, current.text, name, changes_for(key, parsed)))
    shown = "removed (default)" if parsed is None else f"= {_toml(parsed)}"
    say(f"sources.{name}.{key} {shown} in {config.path}")
    _reload(new_config, no_reload)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(f'"{item}"' for item in value) + "]"
    return f'"{value}"'


# -- import, export ------------------------------------------------------------------


@sources.command("import")
@click.argument("opml_file", metavar="FILE.opml", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--category",
    "categories",
    multiple=True,
    metavar="NAME",
    help="Also put every imported source in this category (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Show what would be imported; change nothing.")
@click.option(
    "--check", is_flag=True, help="Fetch each feed once first and skip those that are no feed."
)
@_NO_RELOAD
@click.pass_context
def import_(
    ctx: click.Context,
    opml_file: Path,
    categories: tuple[str, ...],
    dry_run: bool,
    check: bool,
    no_reload: bool,
) -> None:
    """Add the feeds of an OPML subscription list; its folders become categories."""
    config = load(ctx)
    current = _read(config)
    for category in categories:
        problem = name_problem(category)
        if problem:
            fail(f"--category: {problem}", EXIT_USAGE)
    try:
        data = opml_file.read_bytes()
    except OSError as error:
        fail(f"{opml_file}: cannot read: {error.strerror or error}", EXIT_USAGE)
    try:
        document = read_opml(data)
    except OpmlError as error:
        fail(f"{opml_file}: not imported: {error}", EXIT_USAGE)
    existing = {name: source.url for name, source in config.sources.items()}
    with _progress() as progress:
        plan = plan_import(
            _tracked(progress, "reading", document.feeds),
            existing,
            extra_categories=categories,
        )
        if check and plan.add:
            plan = _checked(config, plan, progress)
    _print_plan(opml_file, document.title, plan, document.not_feeds, dry_run)
    if dry_run or not plan.add:
        return
    new_config = _save(current, _edit(add_sources, current.text, plan.add))
    cats = f" in categories {', '.join(plan.categories)}" if plan.categories else ""
    say(f"imported {len(plan.add)} sources into {config.path}{cats}")
    _reload(new_config, no_reload)


def _checked(config: Config, plan: ImportPlan, progress: Progress) -> ImportPlan:
    task = progress.add_task("fetching", total=len(plan.add))
    results = probe_all(
        config,
        [(source.name, source.url or "") for source in plan.add],
        on_done=lambda _name: progress.advance(task),
    )
    kept: list[NewSource] = []
    skipped = list(plan.skipped)
    for source in plan.add:
        result = results.get(source.name)
        if isinstance(result, Probe):
            kept.append(source if result.url == source.url else _moved(source, result.url))
        else:
            skipped.append(
                Skipped(Candidate(source.url or "", source.title), result or "not checked")
            )
    return ImportPlan(tuple(kept), tuple(skipped), plan.merged)


def _moved(source: NewSource, url: str) -> NewSource:
    return NewSource(source.name, url, None, source.title, source.categories, source.interval)


def _print_plan(
    opml_file: Path, title: str | None, plan: ImportPlan, not_feeds: int, dry_run: bool
) -> None:
    named = f" ({title})" if title else ""
    verb = "would import" if dry_run else "importing"
    say(
        f"{opml_file}{named}: {verb} {len(plan.add)}, skipping {len(plan.skipped)}"
        + (f"; {len(plan.merged)} outlines repeat a feed (merged)" if plan.merged else "")
        + (f"; {not_feeds} outlines are not feeds" if not_feeds else "")
    )
    if dry_run and plan.add:
        if out.is_terminal:
            table = Table(title_justify="left")
            for heading in ("name", "url", "categories"):
                table.add_column(heading, overflow="fold")
            for source in plan.add:
                table.add_row(source.name, source.url or "", ", ".join(source.categories))
            out.print(table)
        else:
            for source in plan.add:
                click.echo(f"{source.name}\t{source.url}\t{', '.join(source.categories)}")
    for verdict, notes in (("merged", plan.merged), ("skipped", plan.skipped)):
        for note in notes:
            label = note.candidate.title or "(untitled)"
            say(f"{verdict}: {label} <{note.candidate.url}>: {note.reason}", to=err)


@sources.command("export")
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file (atomically) instead of standard output.",
)
@click.pass_context
def export(ctx: click.Context, out_file: Path | None) -> None:
    """The sources as an OPML 2.0 subscription list, one folder per category."""
    config = load(ctx)
    titles = {name: state.feed_title for name, state in _states(config).items()}
    listed = [
        ExportedSource(
            name, source.url, source.title or titles.get(name) or name, source.categories
        )
        for name, source in config.sources.items()
        if source.url
    ]
    local = [name for name, source in config.sources.items() if not source.url]
    data = write_opml(
        f"aggregator sources ({config.path.name})",
        listed,
        now=datetime.now(UTC),
        generator=f"aggregator {__version__}",
    )
    if out_file is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        try:
            write_atomic(out_file, data)
        except OSError as error:
            fail(f"cannot write {out_file}: {error.strerror or error}")
        err.print(f"wrote {len(listed)} sources to {out_file}", highlight=False, soft_wrap=True)
    if local:
        err.print(
            f"left out {len(local)} local-file sources (no URL to subscribe to): "
            + ", ".join(local),
            highlight=False,
            soft_wrap=True,
        )


# -- prune -----------------------------------------------------------------------------


@click.command()
@click.option("--dry-run", is_flag=True, help="Count what would be pruned; delete nothing.")
@click.pass_context
def prune(ctx: click.Context, dry_run: bool) -> None:
    """Apply `retention` now: delete older stories (the daemon does it daily)."""
    config = load(ctx)
    retention = config.settings.retention
    try:
        store = Store(config.settings.database)
        try:
            store.upgrade()
            report = store.prune(datetime.now(UTC), retention, dry_run=dry_run)
        finally:
            store.close()
    except Exception as error:  # every driver has its own error types; all mean the same here
        fail(f"database {display_url(config.settings.database)}: {describe_error(error)}")
    days = _duration(retention.total_seconds())
    before = f"sorted before {report.cutoff:%Y-%m-%d %H:%M} UTC (retention {days})"
    if dry_run:
        out.print(
            f"would prune {report.stories} stories ({report.entries} entries) {before}; "
            f"{report.tombstones_expired} of {report.tombstones} tombstones would expire",
            highlight=False,
            soft_wrap=True,
        )
        return
    out.print(
        f"pruned {report.stories} stories ({report.entries} entries) {before}, "
        f"in {report.batches} batch{'' if report.batches == 1 else 'es'}; "
        f"tombstones: {report.tombstones} kept, "
        f"{report.tombstones_expired} expired",
        highlight=False,
        soft_wrap=True,
    )


# -- plumbing ----------------------------------------------------------------------------


def _read(config: Config) -> ConfigText:
    try:
        return configfile.read(config.path)
    except SaveError as error:
        print_errors(error.errors)
        sys.exit(EXIT_FAILURE)


def _edit(edit: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Run a pure edit; its EditError (no such source, …) is bad usage."""
    try:
        return edit(*args, **kwargs)
    except EditError as error:
        fail(str(error), EXIT_USAGE)


def _save(current: ConfigText, text: str) -> Config:
    try:
        return configfile.save(current, text)
    except SaveError as error:
        err.print(
            f"[red]error:[/red] not saved: the change would leave {escape(str(current.path))} with "
            "these problems (the file is unchanged):",
            highlight=False,
            soft_wrap=True,
        )
        print_errors(error.errors)
        sys.exit(EXIT_USAGE)


def _reload(config: Config, no_reload: bool) -> None:
    if no_reload:
        say(
            "not told any daemon (--no-reload): reload it yourself with "
            "`systemctl reload aggregator` or `kill -HUP $(cat "
            f"{config.settings.pid_file})`"
        )
        return
    result = signal_reload(config.settings.pid_file)
    say(f"reload: {result.reason}")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def _tracked(progress: Progress, what: str, items: Iterable[_T]) -> Iterator[_T]:
    listed = list(items)
    task = progress.add_task(what, total=len(listed))
    for item in listed:
        yield item
        progress.advance(task)
