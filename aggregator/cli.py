"""Command line: `aggregator [--config PATH] COMMAND`.

Exit status: 0 done, 1 failure at run time, 2 bad usage or bad configuration.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from aggregator import __version__
from aggregator.cli_sources import prune, sources
from aggregator.cli_support import EXIT_FAILURE, EXIT_USAGE, err, out, say
from aggregator.cli_support import fail as _fail
from aggregator.cli_support import load as _load
from aggregator.config import Config, default_config_path
from aggregator.model import Story
from aggregator.outputs import OutputFeed, Verdict, output_feeds
from aggregator.poll import PollSummary, SourceResult, run_pass
from aggregator.publish import build_all, review_for
from aggregator.status import overview, relative
from aggregator.store import Store, describe_error, display_url


def _database_failed(config: Config, error: Exception) -> NoReturn:
    _fail(f"database {display_url(config.settings.database)}: {describe_error(error)}")


def _open_store(config: Config) -> Store:
    try:
        store = Store(config.settings.database)
        store.upgrade()
        store.sync_sources(config.sources.values())
    except Exception as error:  # every driver has its own error types; all mean the same here
        _database_failed(config, error)
    return store


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Configuration file (default: $AGGREGATOR_CONFIG, else config/aggregator.toml).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, verbose: int) -> None:
    """Poll source feeds, store each story once, publish merged and filtered feeds."""
    level = logging.WARNING - 10 * verbose
    # journald stamps every line itself; elsewhere the time belongs in the line.
    under_journald = bool(os.environ.get("JOURNAL_STREAM"))
    logging.basicConfig(
        level=max(level, logging.DEBUG),
        format=("" if under_journald else "%(asctime)s ") + "%(levelname)s %(name)s: %(message)s",
    )
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path or default_config_path()


@main.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the configuration; print every error found."""
    config = _load(ctx)
    feeds = output_feeds(config)
    out.print(
        f"{config.path}: ok — {len(config.sources)} sources, {len(feeds)} output feeds "
        f"({', '.join(sorted(feeds))})",
        highlight=False,
        soft_wrap=True,
    )


@main.command()
@click.option("--all", "poll_all", is_flag=True, help="Poll every enabled source, due or not.")
@click.option("--source", "names", multiple=True, metavar="NAME", help="Poll this source.")
@click.pass_context
def poll(ctx: click.Context, poll_all: bool, names: tuple[str, ...]) -> None:
    """One polling pass over due sources, then a summary."""
    config = _load(ctx)
    unknown = [name for name in names if name not in config.sources]
    if unknown:
        _fail(f"unknown source(s): {', '.join(unknown)}", EXIT_USAGE)
    store = _open_store(config)
    try:
        summary = _poll_with_progress(config, store, poll_all, names)
    except (
        SQLAlchemyError
    ) as error:  # claiming met the database's failure (a poll's own is its result)
        _database_failed(config, error)
    finally:
        store.close()
    _print_summary(summary)
    if summary.failed:
        sys.exit(EXIT_FAILURE)


def _poll_with_progress(
    config: Config, store: Store, poll_all: bool, names: tuple[str, ...]
) -> PollSummary:
    progress = Progress(
        TextColumn("polling"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    task = progress.add_task("poll", total=None)

    def started(total: int) -> None:
        progress.update(task, total=total)

    def finished(result: SourceResult) -> None:
        progress.advance(task)

    with progress:
        return asyncio.run(
            run_pass(
                config,
                store,
                names=set(names) or None,
                force=poll_all or bool(names),
                on_start=started,
                on_result=finished,
            )
        )


def _print_summary(summary: PollSummary) -> None:
    counts = summary.counts
    out.print(
        f"sources: {len(summary.results)} polled, {summary.count('ok')} ok, "
        f"{summary.count('not_modified')} not modified, {summary.count('unchanged')} unchanged, "
        f"{len(summary.failed)} failed\n"
        f"entries: {counts.new} new, {counts.updated} updated, {counts.duplicates} duplicate "
        f"(joined an existing story), {counts.unchanged} unchanged",
        highlight=False,
    )
    for result in summary.results:
        if result.moved_to:
            out.print(f"moved: {result.source}: {result.url} -> {result.moved_to}", highlight=False)
    for result in sorted(summary.failed, key=lambda r: r.source):
        say(f"failed: {result.error}", to=err)


@main.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to write to (default: output_dir from the configuration).",
)
@click.pass_context
def build(ctx: click.Context, out_dir: Path | None) -> None:
    """Write every output feed (.atom, .rss, .json) and feeds.opml, atomically."""
    config = _load(ctx)
    target = out_dir or config.settings.output_dir
    if target is None:
        _fail("no --out given and no output_dir in the configuration", EXIT_USAGE)
    store = _open_store(config)
    try:
        feeds = output_feeds(config)
        changed = build_all(
            store, feeds, target, base_url=config.settings.base_url, now=datetime.now(UTC)
        )
    except OSError as error:
        _fail(f"cannot write to {target}: {error}")
    except SQLAlchemyError as error:
        _database_failed(config, error)
    finally:
        store.close()
    out.print(
        f"{len(feeds)} output feeds written to {target} ({len(changed)} files changed)",
        highlight=False,
    )


@main.command()
@click.argument("feed_name", metavar="FEED")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Stories to show (default: the feed's own limit).",
)
@click.option(
    "--why", is_flag=True, help="Also show rejected stories, and the query deciding each."
)
@click.pass_context
def preview(ctx: click.Context, feed_name: str, limit: int | None, why: bool) -> None:
    """What output feed FEED would publish now, with the sources of each story."""
    config = _load(ctx)
    feeds = output_feeds(config)
    feed = feeds.get(feed_name)
    if feed is None:
        _fail(f"no output feed named {feed_name!r} (known: {', '.join(sorted(feeds))})", EXIT_USAGE)
    try:
        # Migrated but not synced: previewing must not change what a running daemon polls.
        store = Store(config.settings.database)
        store.upgrade()
        reviewed = review_for(store, feed, datetime.now(UTC), limit=limit)
        store.close()
    except Exception as error:  # every driver has its own error types; all mean the same here
        _database_failed(config, error)
    shown = reviewed if why else [(story, v) for story, v in reviewed if v.admitted]
    _print_preview(feed, shown, why, published=sum(v.admitted for _, v in reviewed))


def _print_preview(
    feed: OutputFeed, rows: list[tuple[Story, Verdict]], why: bool, published: int
) -> None:
    def sources(story: Story) -> str:
        return ", ".join(story.sources)

    if out.is_terminal:
        table = Table(title=f"{feed.name}: {feed.title}", title_justify="left")
        table.add_column("published", no_wrap=True)
        table.add_column("title")
        table.add_column("sources")
        if why:
            table.add_column("why")
        for story, verdict in rows:
            cells = [f"{story.sort_time:%Y-%m-%d %H:%M}", story.face.title, sources(story)]
            if why:
                cells.append(str(verdict))
            table.add_row(*cells, style=None if verdict.admitted else "dim")
        out.print(table)
    else:
        for story, verdict in rows:
            cells = [story.sort_time.isoformat(), story.face.title, sources(story)]
            if why:
                cells.append(str(verdict))
            click.echo("\t".join(cells))  # tab-separated for scripts: rich would expand tabs
    rejected = len(rows) - published if why else None
    tail = f", {rejected} rejected on the way" if rejected else ""
    err.print(f"{feed.name}: {published} stories would be published{tail}", highlight=False)


@main.command()
@click.option(
    "--role",
    type=click.Choice(["all", "poller", "web"]),
    default="all",
    show_default=True,
    help="poller: poll, serve only /healthz and /metrics; web: serve, poll nothing; all: both.",
)
@click.pass_context
def run(ctx: click.Context, role: str) -> None:
    """Run the daemon: scheduler and HTTP server."""
    from aggregator.daemon import run as run_daemon

    config_path: Path = ctx.obj["config_path"]
    _load(ctx)  # report configuration errors with exit status 2 before starting anything
    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger().setLevel(logging.INFO)
    sys.exit(run_daemon(config_path, role))


_HEALTH_STYLES = {
    "ok": "green",
    "failing": "yellow",
    "gone": "red",
    "disabled": "dim",
    "new": "dim",
}


@main.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """A table of sources: health, last poll, result, next poll, entries, errors."""
    config = _load(ctx)
    store = _open_store(config)
    try:
        states = store.source_states()
    except Exception as error:  # every driver has its own error types; all mean the same here
        _database_failed(config, error)
    finally:
        store.close()
    now = datetime.now(UTC)
    view = overview(
        states,
        {name: source.title for name, source in config.sources.items()},
        output_feeds(config),
        base_url=config.settings.base_url,
        now=now,
    )
    table = Table(title=f"aggregator: {len(view.sources)} sources", title_justify="left")
    for heading in ("source", "health", "last poll", "result", "next poll"):
        table.add_column(heading, no_wrap=heading != "source")
    table.add_column("entries", justify="right")
    table.add_column("errors", justify="right")
    table.add_column("last error / detail", overflow="fold")
    for row in view.sources:
        result = (row.last_status or "—") + (f" ({row.http_status})" if row.http_status else "")
        style = _HEALTH_STYLES.get(row.health, "")
        table.add_row(
            row.name,
            f"[{style}]{row.health}[/{style}]" + (" (polling)" if row.polling_now else ""),
            relative(row.last_polled_at, now),
            result,
            relative(row.next_poll_at, now) if row.next_poll_at else "never",
            str(row.entries),
            str(row.errors),
            row.last_error or row.detail,
        )
    out.print(table)
    counts = ", ".join(f"{health} {count}" for health, count in view.counts.items() if count)
    out.print(f"{counts or 'no sources'}; {len(view.feeds)} output feeds", highlight=False)


main.add_command(sources)
main.add_command(prune)


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Apply schema migrations (also applied on start)."""
    config = _load(ctx)
    try:
        store = Store(config.settings.database)
        store.upgrade()
        store.close()
    except Exception as error:
        _database_failed(config, error)
    out.print(f"database {display_url(config.settings.database)} is up to date", highlight=False)
