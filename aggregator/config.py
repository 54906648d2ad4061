"""Configuration: one TOML file read into frozen, typed settings.

`[aggregator]` holds the daemon's settings, `[sources.NAME]` the feeds to poll and
`[feeds.NAME]` the output feeds to publish. Loading either returns a complete `Config`
or raises `ConfigError` listing every problem at once as `FILE:LINE: key.path: message`,
because an admin fixing a file wants the whole list, not one error per attempt.

tomllib parses, pydantic checks each value's shape, and a second pass checks what
spans several tables (a feed's categories exist, intervals are ordered). tomllib
reports no positions, so `_KeyLines` finds the line of each key in the raw text.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from aggregator import __version__
from aggregator.filters import QueryError, parse_query

CONFIG_ENV: Final = "AGGREGATOR_CONFIG"
DEFAULT_CONFIG_PATH: Final = Path("config/aggregator.toml")

# Defaults that the public types below also carry (the rest live on the document models).
# Throughput of the HTTP client on two cores peaks at 10-20 requests in flight (FACTS.md).
DEFAULT_CONCURRENCY: Final = 20
# Politeness: no publisher sees more than two requests from us at once.
DEFAULT_PER_HOST: Final = 2
# Caps what one runaway feed can cost in parsing time and storage per poll.
DEFAULT_MAX_ENTRIES: Final = 1000
# A page of a typical feed reader; `limit` may go up to 500.
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 500


class ConfigError(Exception):
    """Everything wrong with a configuration file, one `FILE:LINE: key.path: message` a line."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))


# ---------------------------------------------------------------------------
# Public, immutable configuration


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """`[aggregator]`: settings of the whole daemon."""

    database: str  # SQLAlchemy URL; a relative SQLite path is made absolute
    listen_host: str
    listen_port: int
    base_url: str  # no trailing slash
    interval: timedelta
    min_interval: timedelta
    max_interval: timedelta
    timeout: timedelta
    retention: timedelta
    max_bytes: int
    user_agent: str  # VERSION and BASE_URL substituted
    output_dir: Path | None  # absolute
    # Where `run` writes its process id, so `aggregator sources …` can ask it to reload.
    pid_file: Path  # absolute
    concurrency: int = DEFAULT_CONCURRENCY
    per_host: int = DEFAULT_PER_HOST
    max_entries: int = DEFAULT_MAX_ENTRIES  # entries kept per document


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceConfig:
    """`[sources.NAME]`: one feed to poll, by URL or from a local file."""

    name: str
    url: str | None
    path: Path | None  # absolute
    title: str | None
    categories: tuple[str, ...]
    interval: timedelta | None  # None: the global interval
    enabled: bool
    allow_private: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedConfig:
    """`[feeds.NAME]`: an output feed chosen by categories and/or sources, then filtered."""

    name: str
    title: str | None
    description: str | None
    categories: tuple[str, ...]
    sources: tuple[str, ...]
    include: tuple[str, ...]  # query texts, each accepted by filters.parse_query
    exclude: tuple[str, ...]
    limit: int = DEFAULT_LIMIT
    max_age: timedelta | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole file. The mappings are read-only views, keyed by name in file order."""

    path: Path  # absolute
    settings: Settings
    sources: Mapping[str, SourceConfig]
    feeds: Mapping[str, FeedConfig]


# ---------------------------------------------------------------------------
# Durations, sizes, names, URLs

_DURATION = re.compile(r"(?:\d+[wdhms])+")
_DURATION_PART = re.compile(r"(\d+)([wdhms])")
_DURATION_UNITS: Final = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?", re.IGNORECASE)
_SIZE_UNITS: Final = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `2h`, `7d`, `1w`, or a sum such as `1h30m`; ValueError otherwise."""
    compact = text.strip() if isinstance(text, str) else ""
    if not _DURATION.fullmatch(compact):
        raise ValueError(f"expected a duration like 90s, 15m, 2h or 7d, got {_show(text)}")
    try:
        total = sum(
            (int(count) * _DURATION_UNITS[unit] for count, unit in _DURATION_PART.findall(compact)),
            timedelta(),
        )
    except (OverflowError, ValueError):  # past timedelta's range, or int()'s digit limit
        raise ValueError(f"duration too long: {_show(text)}") from None
    if total <= timedelta():
        raise ValueError(f"a duration must be longer than zero, got {_show(text)}")
    return total


def parse_size(text: str | int) -> int:
    """`10MB` (decimal), `512KiB` (binary), or a whole number of bytes; ValueError otherwise."""
    if isinstance(text, int) and not isinstance(text, bool):
        size = text
    else:
        match = _SIZE.fullmatch(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise ValueError(
                f"expected a size like 10MB, 512KB or 1GiB, or a number of bytes, got {_show(text)}"
            )
        number, unit = match.groups()
        size = int(float(number) * _SIZE_UNITS[(unit or "b").lower()])
    if size <= 0:
        raise ValueError(f"a size must be more than zero bytes, got {_show(text)}")
    return size


def default_config_path() -> Path:
    """`$AGGREGATOR_CONFIG` when set, else `config/aggregator.toml` in the current folder."""
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"invalid name {name!r}: use lowercase letters, digits, '-' and '_',"
            " starting with a letter or digit"
        )
    return name


def _check_http_url(url: str) -> str:
    if any(ch.isspace() for ch in url):
        raise ValueError(f"a URL may not contain spaces, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        hint = "" if parts.scheme else ' (for a local file, use path = "…" instead)'
        raise ValueError(f"expected an http:// or https:// URL, got {url!r}{hint}")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked for it
    except ValueError:
        raise ValueError(f"URL {url!r} has an invalid port") from None
    if not parts.hostname:
        raise ValueError(f"URL {url!r} has no host name")
    return url


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a source's `url` (the message `check` would print), or None."""
    try:
        _check_http_url(url)
    except ValueError as error:
        return str(error)
    return None


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a source, category or feed, or None."""
    try:
        _check_name(name)
    except ValueError as error:
        return str(error)
    return None


def _check_listen(listen: str) -> str:
    _split_listen(listen)
    return listen


def _split_listen(listen: str) -> tuple[str, int]:
    host, colon, port = listen.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [::1]:8080
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT like 127.0.0.1:8080, got {listen!r}")
    return host, int(port)


def _check_database(url: str) -> str:
    try:
        make_url(url)
    except ArgumentError:
        raise ValueError(
            "expected a database URL like sqlite:///var/aggregator.db"
            f" or postgresql+psycopg://user@host/dbname, got {url!r}"
        ) from None
    return url


def _check_query(text: str) -> str:
    try:
        parse_query(text)
    except QueryError as error:
        raise ValueError(f"invalid query: {error}") from None
    return text


def _duration_input(value: object) -> timedelta:
    return parse_duration(value)  # type: ignore[arg-type]  # anything else is reported


def _size_input(value: object) -> int:
    return parse_size(value)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# The document as written: pydantic checks every value and key, all errors at once

Duration = Annotated[timedelta, BeforeValidator(_duration_input)]
Size = Annotated[int, BeforeValidator(_size_input)]
Name = Annotated[str, AfterValidator(_check_name)]
HttpUrl = Annotated[str, AfterValidator(_check_http_url)]
QueryText = Annotated[str, AfterValidator(_check_query)]


class _Document(BaseModel):
    # strict: TOML is typed, so "true" or "50" in quotes is a mistake worth reporting.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _SettingsDocument(_Document):
    # SQLite beside the config file: works with no database server to set up.
    database: Annotated[str, AfterValidator(_check_database)] = "sqlite:///var/aggregator.db"
    # Loopback only: nothing is exposed to the network until the admin chooses to.
    listen: Annotated[str, AfterValidator(_check_listen)] = "127.0.0.1:8080"
    # Matches `listen`, so self links work out of the box on this machine.
    base_url: HttpUrl = "http://127.0.0.1:8080"
    # Fresh enough for news, light on publishers' servers.
    interval: Duration = timedelta(minutes=30)
    # Never hammer a publisher, whatever a feed's ttl or a source's override asks.
    min_interval: Duration = timedelta(minutes=5)
    # A failing or quiet source is still checked daily, backoff included.
    max_interval: Duration = timedelta(days=1)
    # Enough for slow servers; a hung one does not hold a worker for long.
    timeout: Duration = timedelta(seconds=30)
    # Real feeds are far smaller; more is a mistake or a decompression bomb.
    max_bytes: Size = 10_000_000
    # Names the product, its version and a contact URL, as publishers ask of bots.
    user_agent: str = "aggregator/VERSION (+BASE_URL)"
    # Half a year of stories; older ones are rarely read and only grow the database.
    retention: Duration = timedelta(days=180)
    # No static files unless asked: the built-in server serves every feed.
    output_dir: str | None = None
    # None: `aggregator.pid` beside a SQLite database (the one folder the daemon surely may
    # write), else `var/aggregator.pid` beside this file.
    pid_file: Annotated[str, Field(min_length=1)] | None = None
    concurrency: Annotated[int, Field(ge=1)] = DEFAULT_CONCURRENCY
    per_host: Annotated[int, Field(ge=1)] = DEFAULT_PER_HOST
    max_entries: Annotated[int, Field(ge=1)] = DEFAULT_MAX_ENTRIES


class _SourceDocument(_Document):
    url: HttpUrl | None = None
    path: Annotated[str, Field(min_length=1)] | None = None
    title: str | None = None  # None: the feed's own title
    categories: list[Name] = []
    interval: Duration | None = None  # None: [aggregator] interval
    enabled: bool = True
    # Private addresses are refused unless asked for: a public feed must not reach the LAN.
    allow_private: bool = False


class _FeedDocument(_Document):
    title: str | None = None  # None: the feed's name
    description: str | None = None
    categories: list[Name] = []
    sources: list[Name] = []  # with no categories either: every source
    include: list[QueryText] = []  # none: every story is admitted
    exclude: list[QueryText] = []
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    max_age: Duration | None = None  # None: no age limit


class _ConfigDocument(_Document):
    aggregator: _SettingsDocument = _SettingsDocument()
    sources: dict[Name, _SourceDocument] = {}
    feeds: dict[Name, _FeedDocument] = {}


# ---------------------------------------------------------------------------
# Loading


def load_config(path: str | Path | None = None) -> Config:
    """Read and check the file at `path` (default: `default_config_path()`)."""
    path = Path(path) if path is not None else default_config_path()
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError([f"{path}: cannot read: {error.strerror or error}"]) from None
    try:
        # utf-8-sig: editors on Windows start files with a byte order mark.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError(
            [f"{path}:{line}: cannot read: not UTF-8 text (byte {error.start} is not valid)"]
        ) from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    """Check the TOML `text` of the file at `path`; relative paths in it are under its folder."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([_syntax_error(str(error), text, path)]) from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively.
        line = _deepest_line(text)
        raise ConfigError([f"{path}:{line}: syntax: arrays or tables nested too deeply"]) from None
    problems: list[tuple[tuple[str | int, ...], str]] = []
    document: _ConfigDocument | None = None
    try:
        document = _ConfigDocument.model_validate(raw)
    except ValidationError as error:
        problems.extend((tuple(e["loc"]), _message(e)) for e in error.errors())
    problems.extend(_cross_problems(raw))
    if problems or document is None:
        lines = _KeyLines(text)
        located = sorted(
            ((lines.find(loc), _key_path(loc), message) for loc, message in problems),
            key=lambda item: item[0],
        )
        raise ConfigError([f"{path}:{line}: {key}: {message}" for line, key, message in located])
    return _build(document, Path(os.path.abspath(path)))


def _build(document: _ConfigDocument, path: Path) -> Config:
    folder = path.parent
    given = document.aggregator
    base_url = given.base_url.rstrip("/")
    host, port = _split_listen(given.listen)
    database = _resolve_database(given.database, folder)
    settings = Settings(
        database=database,
        listen_host=host,
        listen_port=port,
        base_url=base_url,
        interval=given.interval,
        min_interval=given.min_interval,
        max_interval=given.max_interval,
        timeout=given.timeout,
        retention=given.retention,
        max_bytes=given.max_bytes,
        user_agent=given.user_agent.replace("VERSION", __version__).replace("BASE_URL", base_url),
        output_dir=_resolve_path(given.output_dir, folder) if given.output_dir else None,
        pid_file=_pid_file(given.pid_file, database, folder),
        concurrency=given.concurrency,
        per_host=given.per_host,
        max_entries=given.max_entries,
    )
    sources = {
        name: SourceConfig(
            name=name,
            url=source.url,
            path=_resolve_path(source.path, folder) if source.path else None,
            title=source.title,
            categories=tuple(dict.fromkeys(source.categories)),
            interval=source.interval,
            enabled=source.enabled,
            allow_private=source.allow_private,
        )
        for name, source in document.sources.items()
    }
    feeds = {
        name: FeedConfig(
            name=name,
            title=feed.title,
            description=feed.description,
            categories=tuple(dict.fromkeys(feed.categories)),
            sources=tuple(dict.fromkeys(feed.sources)),
            include=tuple(feed.include),
            exclude=tuple(feed.exclude),
            limit=feed.limit,
            max_age=feed.max_age,
        )
        for name, feed in document.feeds.items()
    }
    return Config(
        path=path,
        settings=settings,
        sources=MappingProxyType(sources),
        feeds=MappingProxyType(feeds),
    )


def _resolve_path(text: str, folder: Path) -> Path:
    return Path(os.path.normpath(folder / Path(text).expanduser()))


def _pid_file(given: str | None, database: str, folder: Path) -> Path:
    if given:
        return _resolve_path(given, folder)
    parsed = make_url(database)
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file and file != ":memory:" and not file.startswith("file:"):
        return Path(file).parent / "aggregator.pid"
    return folder / "var" / "aggregator.pid"


def _resolve_database(url: str, folder: Path) -> str:
    """Anchor a relative SQLite file under `folder`; leave every other URL as written."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return url
    if Path(parsed.database).is_absolute():
        return url
    absolute = _resolve_path(parsed.database, folder)
    return parsed.set(database=str(absolute)).render_as_string(hide_password=False)


# ---------------------------------------------------------------------------
# Checks across tables, run on the raw document so they report even when a value is malformed


def _cross_problems(raw: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    settings = raw.get("aggregator")
    if isinstance(settings, dict):
        low = _duration_or(settings.get("min_interval", "5m"))
        high = _duration_or(settings.get("max_interval", "1d"))
        if low and high and low > high:
            yield (
                ("aggregator", "min_interval"),
                f"min_interval ({_show_duration(low)}) is longer than"
                f" max_interval ({_show_duration(high)})",
            )
    sources = raw.get("sources")
    sources = sources if isinstance(sources, dict) else {}
    categories: set[str] = set()
    for name, source in sources.items():
        if not isinstance(source, dict):
            continue
        if "url" in source and "path" in source:
            yield ("sources", name), f"source {name!r} sets both url and path; keep one"
        elif "url" not in source and "path" not in source:
            yield (
                ("sources", name),
                f'source {name!r} needs url = "https://…" or path = "file.xml"',
            )
        categories.update(_strings(source.get("categories")))
    feeds = raw.get("feeds")
    for name, feed in (feeds if isinstance(feeds, dict) else {}).items():
        if not isinstance(feed, dict):
            continue
        for key, kind, known in (
            ("categories", "category", categories),
            ("sources", "source", set(sources)),
        ):
            for index, value in enumerate(_strings(feed.get(key))):
                if value not in known:
                    hint = _did_you_mean(value, known)
                    yield (
                        ("feeds", name, key, index),
                        f"feed {name!r} names unknown {kind} {value!r}{hint}",
                    )


def _strings(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _duration_or(value: object) -> timedelta | None:
    try:
        return parse_duration(value)  # type: ignore[arg-type]
    except ValueError:
        return None  # reported by the document check


def _show_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# ---------------------------------------------------------------------------
# Messages for people who edit the file, not for programmers

_KNOWN_KEYS: Final[Mapping[str, type[BaseModel]]] = {
    "": _ConfigDocument,
    "aggregator": _SettingsDocument,
    "sources": _SourceDocument,
    "feeds": _FeedDocument,
}


def _message(error: Mapping[str, Any]) -> str:
    kind: str = error["type"]
    loc: tuple[str | int, ...] = tuple(error["loc"])
    value = error.get("input")
    if kind == "extra_forbidden":
        key = str(loc[-1])
        model = _KNOWN_KEYS.get(str(loc[0]) if len(loc) > 1 else "")
        known = set(model.model_fields) if model else set()
        return f"unknown key {key!r}{_did_you_mean(key, known)}"
    if kind in ("value_error", "assertion_error"):
        return str(error["ctx"]["error"])
    expected = {
        "string_type": "text in quotes",
        "bool_type": "true or false",
        "int_type": "a whole number",
        "list_type": 'a list like ["a", "b"]',
        "dict_type": "a table",
        "model_type": "a table",
    }.get(kind)
    if expected:
        return f"expected {expected}, got {_show(value)}"
    if kind == "greater_than_equal":
        return f"must be at least {error['ctx']['ge']}, got {_show(value)}"
    if kind == "less_than_equal":
        return f"must be at most {error['ctx']['le']}, got {_show(value)}"
    if kind == "string_too_short":
        return "may not be empty"
    return str(error["msg"])


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime | date | time):
        return f"a date or time ({value.isoformat()})"
    return repr(value)


def _did_you_mean(word: str, choices: set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key_path(loc: Sequence[str | int]) -> str:
    parts: list[str] = []
    for part in loc:
        if part == "[key]":  # pydantic's marker for an invalid table name
            continue
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{part}]"]
        else:
            parts.append(part if _BARE_KEY.fullmatch(part) else f'"{part}"')
    return ".".join(parts)


def _deepest_line(text: str) -> int:
    """The line where brackets and braces first nest deepest (strings not told apart:
    this only has to point near the runaway nesting)."""
    depth = deepest = 0
    line = where = 1
    for char in text:
        if char == "\n":
            line += 1
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest, where = depth, line
        elif char in "]}":
            depth = max(0, depth - 1)
    return where


def _syntax_error(message: str, text: str, path: Path) -> str:
    position = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if position:
        line, column = position.groups()
        return f"{path}:{line}: syntax: {message[: position.start()]} at column {column}"
    # "(at end of document)"
    line_count = max(1, len(text.splitlines()))
    return f"{path}:{line_count}: syntax: {message}"


# ---------------------------------------------------------------------------
# Line numbers: tomllib keeps none, so the raw text is scanned for table headers and keys

_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED_KEY = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_HEADER_LINE = re.compile(rf"\s*\[\[?\s*({_DOTTED_KEY})\s*\]\]?\s*(?:#.*)?")
_KEY_LINE = re.compile(rf"\s*({_DOTTED_KEY})\s*=")


class _KeyLines:
    """Where each table and key of a TOML text is first defined (1-based lines)."""

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        open_value = _ValueScan()
        for number, line in enumerate(text.splitlines(), start=1):
            if open_value.is_open:  # inside a multi-line array or string
                open_value.feed(line)
                continue
            if header := _HEADER_LINE.fullmatch(line):
                table = _split_key(header.group(1))
                self.lines.setdefault(table, number)
            elif key := _KEY_LINE.match(line):
                self.lines.setdefault(table + _split_key(key.group(1)), number)
                open_value.feed(line[key.end() :])

    def find(self, loc: Sequence[str | int]) -> int:
        """The line of the longest defined prefix of `loc`, else 1."""
        keys = tuple(part for part in loc if isinstance(part, str) and part != "[key]")
        for size in range(len(keys), 0, -1):
            if keys[:size] in self.lines:
                return self.lines[keys[:size]]
        return 1


def _split_key(dotted: str) -> tuple[str, ...]:
    # tomllib itself unquotes each part, escapes included.
    return tuple(
        str(tomllib.loads(f"k = {part}")["k"]) if part[0] in "\"'" else part
        for part in re.findall(_KEY_PART, dotted)
    )


class _ValueScan:
    """Tracks whether a value continues on the next line: open brackets or a \"\"\" string."""

    def __init__(self) -> None:
        self.depth = 0
        self.closing: str | None = None  # the delimiter of an open multi-line string

    @property
    def is_open(self) -> bool:
        return self.depth > 0 or self.closing is not None

    def feed(self, line: str) -> None:
        position = 0
        while position < len(line):
            if self.closing is not None:
                end = line.find(self.closing, position)
                if end < 0:
                    return
                position = end + 3
                self.closing = None
                continue
            char = line[position]
            if char == "#":
                return
            if line.startswith(('"""', "'''"), position):
                self.closing = line[position : position + 3]
                position += 3
                continue
            if char in "\"'":
                position = _string_end(line, position)
            elif char in "[{":
                self.depth += 1
            elif char in "]}":
                self.depth = max(0, self.depth - 1)
            position += 1


def _string_end(line: str, start: int) -> int:
    quote = line[start]
    position = start + 1
    while position < len(line) and line[position] != quote:
        position += 2 if quote == '"' and line[position] == "\\" else 1
    return position
