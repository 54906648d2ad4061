"""Command line: `aggregator [--config PATH] COMMAND`.

Exit status: 0 done, 1 failure at run time, 2 bad usage or bad configuration.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aggregator import __version__
from aggregator.config import Config, ConfigError, default_config_path, load_config
from aggregator.outputs import output_feeds
from aggregator.poll import PollSummary, SourceResult, run_pass
from aggregator.publish import build_all
from aggregator.store import Store, describe_error

EXIT_FAILURE = 1
EXIT_USAGE = 2

err = Console(stderr=True)
out = Console()


def _fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def _load(ctx: click.Context) -> Config:
    path: Path = ctx.obj["config_path"]
    try:
        return load_config(path)
    except ConfigError as error:
        for line in error.errors:
            err.print(line, highlight=False, markup=False, soft_wrap=True)
        sys.exit(EXIT_USAGE)


def _open_store(config: Config) -> Store:
    try:
        store = Store(config.settings.database)
        store.upgrade()
        store.sync_sources(config.sources.values())
    except Exception as error:  # every driver has its own error types; all mean the same here
        _fail(f"database {config.settings.database}: {describe_error(error)}")
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
    logging.basicConfig(
        level=max(level, logging.DEBUG),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
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
        err.print(f"failed: {result.error}", highlight=False, markup=False, soft_wrap=True)


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
    finally:
        store.close()
    out.print(
        f"{len(feeds)} output feeds written to {target} ({len(changed)} files changed)",
        highlight=False,
    )


@main.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the daemon: scheduler and HTTP server."""
    from aggregator.daemon import run as run_daemon

    config_path: Path = ctx.obj["config_path"]
    _load(ctx)  # report configuration errors with exit status 2 before starting anything
    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger().setLevel(logging.INFO)
    sys.exit(run_daemon(config_path))


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
        _fail(f"database {config.settings.database}: {error}")
    out.print(f"database {config.settings.database} is up to date", highlight=False)
