"""What every command shares: the consoles, exit statuses, failing, loading the file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console
from rich.markup import escape

from aggregator.config import Config, ConfigError, load_config

EXIT_FAILURE = 1
EXIT_USAGE = 2

# No emoji codes: "FILE:100: …" must not print as an emoji.
err = Console(stderr=True, emoji=False)
out = Console(emoji=False)


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    # Escaped: messages quote TOML such as [sources.NAME], which is not markup.
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def say(text: str, *, to: Console = out) -> None:
    """Print `text` as it is: never read as markup (it quotes TOML tables such as
    [sources.NAME]), not highlighted, and not wrapped, so scripts can read the lines."""
    to.print(text, highlight=False, markup=False, soft_wrap=True)


def print_errors(lines: list[str]) -> None:
    for line in lines:
        say(line, to=err)


def load(ctx: click.Context) -> Config:
    path: Path = ctx.obj["config_path"]
    try:
        return load_config(path)
    except ConfigError as error:
        print_errors(error.errors)
        sys.exit(EXIT_USAGE)
