"""Configuration loading: defaults, path resolution, value syntax, and error reports."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator import __version__
from aggregator.config import (
    ConfigError,
    FeedConfig,
    SourceConfig,
    default_config_path,
    load_config,
    parse_config,
    parse_duration,
    parse_size,
)

SPEC_EXAMPLE = """\
[aggregator]
database = "sqlite:///var/aggregator.db"   # any SQLAlchemy URL
listen = "127.0.0.1:8080"
base_url = "http://127.0.0.1:8080"
interval = "30m"
min_interval = "5m"
max_interval = "1d"
timeout = "30s"
max_bytes = "10MB"
user_agent = "aggregator/VERSION (+BASE_URL)"
retention = "180d"
output_dir = "var/public"

[sources.marxist]
url = "https://www.marxist.com/index.rss"
title = "In Defence of Marxism"
categories = ["world", "theory"]
interval = "15m"
enabled = true
allow_private = false

[feeds.middle-east]
title = "Middle East"
categories = ["world"]
sources = ["marxist"]
include = ["Israel", "Gaza", "Palestin*", "title:Iran -tag:sport"]
exclude = ["title:\\"Help Wanted\\""]
limit = 50
max_age = "30d"
"""


def write(tmp_path: Path, text: str, name: str = "aggregator.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    """The reported lines without the file name, which every line starts with."""
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert all(line.startswith(f"{path}:") for line in caught.value.errors)
    return [line.removeprefix(f"{path}:") for line in caught.value.errors]


# --- Valid documents -----------------------------------------------------------------------


def test_empty_file_gets_documented_defaults(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, "")).settings

    assert settings.database == f"sqlite:///{tmp_path}/var/aggregator.db"
    assert (settings.listen_host, settings.listen_port) == ("127.0.0.1", 8080)
    assert settings.base_url == "http://127.0.0.1:8080"
    assert settings.interval == timedelta(minutes=30)
    assert settings.min_interval == timedelta(minutes=5)
    assert settings.max_interval == timedelta(days=1)
    assert settings.timeout == timedelta(seconds=30)
    assert settings.max_bytes == 10_000_000
    assert settings.user_agent == f"aggregator/{__version__} (+http://127.0.0.1:8080)"
    assert settings.retention == timedelta(days=180)
    assert settings.output_dir is None
    assert (settings.concurrency, settings.per_host, settings.max_entries) == (20, 2, 1000)
    assert sorted(tmp_path.iterdir()) == [tmp_path / "aggregator.toml"], "created nothing"


def test_spec_example_loads_as_written(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SPEC_EXAMPLE))

    assert config.path == tmp_path / "aggregator.toml"
    assert config.settings.output_dir == tmp_path / "var" / "public"
    assert config.sources == {
        "marxist": SourceConfig(
            name="marxist",
            url="https://www.marxist.com/index.rss",
            path=None,
            title="In Defence of Marxism",
            categories=("world", "theory"),
            interval=timedelta(minutes=15),
            enabled=True,
            allow_private=False,
        )
    }
    assert config.feeds == {
        "middle-east": FeedConfig(
            name="middle-east",
            title="Middle East",
            description=None,
            categories=("world",),
            sources=("marxist",),
            include=("Israel", "Gaza", "Palestin*", "title:Iran -tag:sport"),
            exclude=('title:"Help Wanted"',),
            limit=50,
            max_age=timedelta(days=30),
        )
    }


def test_loaded_config_is_immutable(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SPEC_EXAMPLE))

    with pytest.raises(dataclasses.FrozenInstanceError):
        config.settings.interval = timedelta(seconds=1)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.sources["marxist"].enabled = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.sources["other"] = config.sources["marxist"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("database", "expected"),
    [
        ("sqlite:///var/agg.db", "sqlite:///{folder}/var/agg.db"),
        ("sqlite:///../data/agg.db", "sqlite:///{parent}/data/agg.db"),
        ("sqlite+pysqlite:///agg.db?timeout=5", "sqlite+pysqlite:///{folder}/agg.db?timeout=5"),
        ("sqlite:////srv/agg.db", "sqlite:////srv/agg.db"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("postgresql+psycopg://agg:secret@db.internal/agg", None),
    ],
)
def test_database_url_relative_sqlite_path_is_anchored_at_config_folder(
    tmp_path: Path, database: str, expected: str | None
) -> None:
    folder = tmp_path / "conf"
    path = write(folder, f'[aggregator]\ndatabase = "{database}"\n')

    resolved = load_config(path).settings.database

    want = database if expected is None else expected
    assert resolved == want.format(folder=folder, parent=tmp_path)
    assert sorted(folder.iterdir()) == [path], "created nothing"


def test_relative_paths_resolve_against_config_folder_not_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc" / "aggregator"
    path = write(
        folder,
        '[aggregator]\noutput_dir = "public"\n'
        '[sources.local]\npath = "samples/local.xml"\n'
        '[sources.shared]\npath = "../shared/x.xml"\n'
        '[sources.absolute]\npath = "/srv/feeds/a.xml"\n',
    )
    monkeypatch.chdir(tmp_path)

    config = load_config(Path("etc/aggregator/aggregator.toml"))

    assert config.path == path
    assert config.settings.output_dir == folder / "public"
    assert {name: source.path for name, source in config.sources.items()} == {
        "local": folder / "samples" / "local.xml",
        "shared": tmp_path / "etc" / "shared" / "x.xml",
        "absolute": Path("/srv/feeds/a.xml"),
    }


@pytest.mark.parametrize(
    ("settings", "field", "expected"),
    [
        ('listen = "0.0.0.0:9000"', "listen_host", "0.0.0.0"),
        ('listen = "[::1]:9000"', "listen_host", "::1"),
        ('listen = "[::1]:9000"', "listen_port", 9000),
        ('base_url = "https://news.example/agg/"', "base_url", "https://news.example/agg"),
        (
            'base_url = "https://news.example/"\nuser_agent = "bot/VERSION; BASE_URL/about"',
            "user_agent",
            f"bot/{__version__}; https://news.example/about",
        ),
        ("max_bytes = 4096", "max_bytes", 4096),
        ("concurrency = 50", "concurrency", 50),
    ],
)
def test_settings_values_are_converted(
    tmp_path: Path, settings: str, field: str, expected: object
) -> None:
    config = load_config(write(tmp_path, f"[aggregator]\n{settings}\n"))

    assert getattr(config.settings, field) == expected


def test_feed_without_categories_or_sources_and_repeated_names_are_kept_tidy(
    tmp_path: Path,
) -> None:
    config = load_config(
        write(
            tmp_path,
            '[sources.a]\nurl = "https://a.example/feed"\ncategories = ["x", "y", "x"]\n'
            "[feeds.everything]\n",
        )
    )

    assert config.sources["a"].categories == ("x", "y")
    everything = config.feeds["everything"]
    assert (everything.categories, everything.sources, everything.limit) == ((), (), 50)


# --- Durations and sizes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(minutes=90)),
        (" 1s ", timedelta(seconds=1)),
    ],
)
def test_parse_duration_accepts(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0s", "longer than zero"),
        ("0m0s", "longer than zero"),
        ("-5m", "expected a duration like 90s, 15m, 2h or 7d, got '-5m'"),
        ("15 minutes", "got '15 minutes'"),
        ("15", "got '15'"),
        ("1.5h", "got '1.5h'"),
        ("5M", "got '5M'"),
        ("", "got ''"),
    ],
)
def test_parse_duration_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10MB", 10_000_000),
        ("512KB", 512_000),
        ("512KiB", 524_288),
        ("1GiB", 1_073_741_824),
        ("1.5 MB", 1_500_000),
        ("2mb", 2_000_000),
        ("100", 100),
        (2048, 2048),
    ],
)
def test_parse_size_accepts(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lots", "expected a size like 10MB, 512KB or 1GiB, or a number of bytes, got 'lots'"),
        ("10 MiBs", "got '10 MiBs'"),
        ("-1MB", "got '-1MB'"),
        (0, "more than zero"),
        (-5, "more than zero"),
        (True, "got true"),
    ],
)
def test_parse_size_rejects(text: str | int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_size(text)


# --- Errors: one per document, with its line -----------------------------------------------

BAD_DOCUMENTS = {
    "unknown key, with a suggestion": (
        '[aggregator]\nintervall = "5m"\n',
        "2: aggregator.intervall: unknown key 'intervall' (did you mean 'interval'?)",
    ),
    "unknown table": (
        '[sourcs.a]\nurl = "https://a.example/"\n',
        "1: sourcs: unknown key 'sourcs' (did you mean 'sources'?)",
    ),
    "duration in words": (
        '[aggregator]\n\ninterval = "15 minutes"\n',
        "3: aggregator.interval: expected a duration like 90s, 15m, 2h or 7d, got '15 minutes'",
    ),
    "duration as a bare number": (
        "[aggregator]\ntimeout = 30\n",
        "2: aggregator.timeout: expected a duration like 90s, 15m, 2h or 7d, got 30",
    ),
    "size": (
        '[aggregator]\nmax_bytes = "big"\n',
        "2: aggregator.max_bytes: expected a size like 10MB, 512KB or 1GiB,"
        " or a number of bytes, got 'big'",
    ),
    "min_interval above max_interval": (
        '[aggregator]\nmax_interval = "2h"\nmin_interval = "3h"\n',
        "3: aggregator.min_interval: min_interval (3h) is longer than max_interval (2h)",
    ),
    "listen without port": (
        '[aggregator]\nlisten = "localhost"\n',
        "2: aggregator.listen: expected HOST:PORT like 127.0.0.1:8080, got 'localhost'",
    ),
    "database that is no URL": (
        '[aggregator]\ndatabase = "var/agg.db"\n',
        "2: aggregator.database: expected a database URL like sqlite:///var/aggregator.db"
        " or postgresql+psycopg://user@host/dbname, got 'var/agg.db'",
    ),
    "number in quotes": (
        '[aggregator]\nconcurrency = "8"\n',
        "2: aggregator.concurrency: expected a whole number, got '8'",
    ),
    "string instead of boolean": (
        '[sources.a]\nurl = "https://a.example/"\nenabled = "yes"\n',
        "3: sources.a.enabled: expected true or false, got 'yes'",
    ),
    "date instead of text": (
        '[sources.a]\nurl = "https://a.example/"\ntitle = 2024-05-01\n',
        "3: sources.a.title: expected text in quotes, got a date or time (2024-05-01)",
    ),
    "source URL without scheme": (
        '[sources.a]\nurl = "a.example/feed"\n',
        "2: sources.a.url: expected an http:// or https:// URL, got 'a.example/feed'"
        ' (for a local file, use path = "…" instead)',
    ),
    "source URL with another scheme": (
        '[sources.a]\nurl = "ftp://a.example/feed"\n',
        "2: sources.a.url: expected an http:// or https:// URL, got 'ftp://a.example/feed'",
    ),
    "source URL without host": (
        '[sources.a]\nurl = "https:///feed"\n',
        "2: sources.a.url: URL 'https:///feed' has no host name",
    ),
    "source URL with a bad port": (
        '[sources.a]\nurl = "https://a.example:99999/"\n',
        "2: sources.a.url: URL 'https://a.example:99999/' has an invalid port",
    ),
    "source with url and path": (
        '\n[sources.a]\nurl = "https://a.example/"\npath = "a.xml"\n',
        "2: sources.a: source 'a' sets both url and path; keep one",
    ),
    "source with neither url nor path": (
        '[sources.a]\ntitle = "A"\n',
        '1: sources.a: source \'a\' needs url = "https://…" or path = "file.xml"',
    ),
    "source name with capitals": (
        '[sources.World]\nurl = "https://a.example/"\n',
        "1: sources.World: invalid name 'World': use lowercase letters, digits, '-' and '_',"
        " starting with a letter or digit",
    ),
    "category name with a space": (
        '[sources.a]\nurl = "https://a.example/"\ncategories = ["world", "middle east"]\n',
        "3: sources.a.categories[1]: invalid name 'middle east': use lowercase letters, digits,"
        " '-' and '_', starting with a letter or digit",
    ),
    "sources written as an array of tables": (
        '[[sources]]\nurl = "https://a.example/"\n',
        "1: sources: expected a table, got a list",
    ),
    "categories as a string": (
        '[sources.a]\nurl = "https://a.example/"\ncategories = "world"\n',
        '3: sources.a.categories: expected a list like ["a", "b"], got \'world\'',
    ),
    "feed limit too high": (
        "[feeds.f]\nlimit = 501\n",
        "2: feeds.f.limit: must be at most 500, got 501",
    ),
    "feed limit zero": (
        "[feeds.f]\nlimit = 0\n",
        "2: feeds.f.limit: must be at least 1, got 0",
    ),
    "feed with unknown category": (
        '[sources.a]\nurl = "https://a.example/"\ncategories = ["world"]\n'
        '[feeds.f]\ncategories = ["wrld"]\n',
        "5: feeds.f.categories[0]: feed 'f' names unknown category 'wrld' (did you mean 'world'?)",
    ),
    "feed with unknown source": (
        '[sources.marxist]\nurl = "https://a.example/"\n[feeds.f]\nsources = ["zzz"]\n',
        "4: feeds.f.sources[0]: feed 'f' names unknown source 'zzz'",
    ),
    "invalid include query": (
        '[feeds.f]\ninclude = ["Gaza", "title:"]\n',
        "2: feeds.f.include[1]: invalid query: empty value for field 'title'"
        " at column 7 in query 'title:'",
    ),
    "key in a quoted table header": (
        '[sources."a"]\nurl = "https://a.example/"\nlimit = 5\n',
        "3: sources.a.limit: unknown key 'limit'",
    ),
    "dotted key at the top level": (
        'sources.a.url = "https://a.example/"\nsources.a.intervall = "5m"\n',
        "2: sources.a.intervall: unknown key 'intervall' (did you mean 'interval'?)",
    ),
    "key after a multi-line array holding brackets and a header-like string": (
        '[feeds.f]\ninclude = [\n  "a ]",\n  "[sources.x]",  # ] [\n]\nlimit = 0\n',
        "6: feeds.f.limit: must be at least 1, got 0",
    ),
    "key after a multi-line string holding a key-like line": (
        '[feeds.f]\ndescription = """\nlimit = 3\n"""\nlimit = 0\n',
        "5: feeds.f.limit: must be at least 1, got 0",
    ),
}


@pytest.mark.parametrize(
    ("text", "expected"), list(BAD_DOCUMENTS.values()), ids=list(BAD_DOCUMENTS)
)
def test_bad_document_reports_line_key_and_reason(tmp_path: Path, text: str, expected: str) -> None:
    assert errors_of(write(tmp_path, text)) == [expected]


def test_every_error_is_reported_at_once_sorted_by_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[feeds.f]\ncategories = ["nope"]\n'
        '[sources.a]\nurl = "gopher://a.example/"\n'
        '[aggregator]\nretention = "forever"\nlisten = "127.0.0.1:0"\n',
    )

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert [line.split(":")[1] for line in caught.value.errors] == ["2", "4", "6", "7"]
    assert str(caught.value) == "\n".join(caught.value.errors)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[aggregator]\ninterval = "5m\n', "2: syntax: Illegal character '\\n' at column 15"),
        ("[aggregator\n", "1: syntax: Expected ']' at the end of a table declaration at column 12"),
        ('a = 1\n\n\nb = "x" "y"\n', "4: syntax: Expected newline or end of document"),
        ("a = 1\na = 2", "2: syntax: Cannot overwrite a value (at end of document)"),
    ],
)
def test_toml_syntax_error_names_its_line(tmp_path: Path, text: str, expected: str) -> None:
    assert errors_of(write(tmp_path, text))[0].startswith(expected)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda folder: folder / "missing.toml", "No such file or directory"),
        (lambda folder: folder, "Is a directory"),
    ],
)
def test_unreadable_file_is_a_config_error(
    tmp_path: Path, make: Callable[[Path], Path], reason: str
) -> None:
    path = make(tmp_path)

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.errors == [f"{path}: cannot read: {reason}"]


def test_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('title = "Zürich"\n'.encode("latin-1"))

    with pytest.raises(ConfigError, match=r"cannot read: not UTF-8 text"):
        load_config(path)


def test_parse_config_reports_the_given_path(tmp_path: Path) -> None:
    path = tmp_path / "never-written.toml"

    with pytest.raises(ConfigError) as caught:
        parse_config("[aggregator]\nport = 1\n", path)

    assert caught.value.errors == [f"{path}:2: aggregator.port: unknown key 'port'"]


# --- Where the file is ---------------------------------------------------------------------


def test_default_config_path_is_under_the_current_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGGREGATOR_CONFIG", raising=False)

    assert default_config_path() == Path("config/aggregator.toml")


def test_environment_variable_names_the_config_loaded_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[aggregator]\nlisten = "127.0.0.1:9999"\n', name="elsewhere.toml")
    monkeypatch.setenv("AGGREGATOR_CONFIG", str(path))

    assert default_config_path() == path
    assert load_config().settings.listen_port == 9999
