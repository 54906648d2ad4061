"""Random, truncated and mangled configuration files: never a traceback, always FILE:LINE.

Hypothesis feeds `parse_config` random text, every prefix-cut of real
configuration files, line-level mutations of them and structurally generated
TOML with keys in the right places and values of any type. Whatever comes in,
the result is a `Config` or a `ConfigError` whose every line reads
`FILE:LINE: …`. A few of the same inputs go through the real `aggregator check`,
and a running daemon gets a series of them on SIGHUP: it refuses each with the
FILE:LINE lines in its log and keeps serving with the configuration it had.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import tomlkit
from daemonproc import DaemonProcess, free_port, running_daemon, settings_toml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.config import Config, ConfigError, parse_config

REPO = Path(__file__).resolve().parents[1]
PATH = Path("/etc/aggregator/fuzzed.toml")
LINE = re.compile(rf"^{re.escape(str(PATH))}:\d+: \S")

RICH = """\
[aggregator]
database = "sqlite:///var/a.db"
listen = "127.0.0.1:8080"
base_url = "http://feeds.example"
interval = "30m"
min_interval = "5m"
max_interval = "1d"
timeout = "30s"
max_bytes = "10MB"
user_agent = "aggregator/VERSION (+BASE_URL)"
retention = "180d"
concurrency = 20
per_host = 2
max_entries = 1000

[sources.marxist]
url = "https://www.marxist.com/index.rss"
title = "In Defence of Marxism"
categories = ["world", "theory"]
interval = "15m"
enabled = true
allow_private = false

[sources.local]
path = "samples/x.xml"
categories = ["world"]

[feeds.middle-east]
title = "Middle East"
categories = ["world"]
sources = ["marxist"]
include = ["Israel", "Gaza", "Palestin*", "title:Iran -tag:sport", "/ira[nq]/"]
exclude = ["title:\\"Help Wanted\\""]
limit = 50
max_age = "30d"
"""
BASES = [RICH, (REPO / "config" / "aggregator.toml").read_text(encoding="utf-8")]

SETTINGS_KEYS = [
    "database", "listen", "base_url", "interval", "min_interval", "max_interval", "timeout",
    "max_bytes", "user_agent", "retention", "output_dir", "concurrency", "per_host",
    "max_entries", "bogus",
]  # fmt: skip
SOURCE_KEYS = [
    "url", "path", "title", "categories", "interval", "enabled", "allow_private", "nonsense",
]  # fmt: skip
FEED_KEYS = [
    "title", "description", "categories", "sources", "include", "exclude", "limit", "max_age",
]  # fmt: skip


def check(text: str) -> Config | None:
    """parse_config, holding it to its contract; the Config, or None for a ConfigError."""
    try:
        return parse_config(text, PATH)
    except ConfigError as error:
        assert error.errors, "a ConfigError must say what is wrong"
        for line in error.errors:
            assert LINE.match(line), line
        return None


FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.text(max_size=400))
def test_random_text_is_a_config_or_file_line_errors(text: str) -> None:
    check(text)


@FAST
@given(st.sampled_from(BASES), st.floats(min_value=0, max_value=1))
def test_every_truncation_of_a_real_config_is_a_config_or_file_line_errors(
    base: str, where: float
) -> None:
    check(base[: int(len(base) * where)])


TOKENS = ['"', "'", "[", "]", "[[", "=", '"""', "\\", "\x00", "#", "{", "}", ",", "\n", "\ufeff"]


@FAST
@given(
    st.sampled_from(BASES),
    st.lists(
        st.tuples(
            st.sampled_from(["drop", "repeat", "insert", "swap"]),
            st.integers(min_value=0, max_value=10_000),
            st.sampled_from(TOKENS) | st.text(max_size=20),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_mangled_lines_of_a_real_config_are_a_config_or_file_line_errors(
    base: str, edits: list[tuple[str, int, str]]
) -> None:
    lines = base.splitlines()
    for action, index, token in edits:
        at = index % max(1, len(lines))
        if action == "drop" and lines:
            del lines[at]
        elif action == "repeat" and lines:
            lines.insert(at, lines[at])
        elif action == "insert":
            lines.insert(at, token)
        elif action == "swap" and lines:
            line = lines[at]
            cut = index % (len(line) + 1)
            lines[at] = line[:cut] + token + line[cut:]
    check("\n".join(lines))


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["90s", "15m", "0s", "-5m", "10MB", "1GiB", "http://x", "ftp://x", "a:b"])
    | st.datetimes()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
NAMES = st.sampled_from(["a", "world", "Bad Name", "", "x" * 300, "ünï", "-x", "9"]) | st.text(
    max_size=12
)


@st.composite
def toml_documents(draw: st.DrawFn) -> str:
    """A TOML document with the right tables and keys, and values of any type."""
    document: dict[str, Any] = {}
    if draw(st.booleans()):
        document["aggregator"] = draw(
            st.dictionaries(st.sampled_from(SETTINGS_KEYS), VALUES, max_size=6)
        )
    for table, keys in (("sources", SOURCE_KEYS), ("feeds", FEED_KEYS)):
        if draw(st.booleans()):
            document[table] = draw(
                st.dictionaries(
                    NAMES,
                    st.dictionaries(st.sampled_from(keys), VALUES, max_size=5) | VALUES,
                    max_size=3,
                )
            )
    if draw(st.booleans()):
        document[draw(st.text(max_size=10))] = draw(VALUES)
    drop_none = _without_none(document)
    try:
        return tomlkit.dumps(drop_none)
    except (ValueError, TypeError):
        return str(drop_none)


def _without_none(value: Any) -> Any:
    # TOML has no null.
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(toml_documents())
def test_structured_toml_with_values_of_any_type_is_a_config_or_file_line_errors(
    text: str,
) -> None:
    check(text)


# Inputs the strategies above rarely reach, each of which once escaped as a traceback.
NASTY = [
    ("arrays_nested_100000_deep", "[aggregator]\nlisten = 'x'\na = " + "[" * 100_000, 3),
    ("inline_tables_nested_5000_deep", "a = " + "{b=" * 5_000, 1),
    ("duration_past_timedelta", '[aggregator]\ninterval = "99999999999999999999d"', 2),
    ("duration_of_5000_digits", '[aggregator]\ninterval = "' + "9" * 5000 + 's"', 2),
]


@pytest.mark.parametrize(
    "text, line", [case[1:] for case in NASTY], ids=[case[0] for case in NASTY]
)
def test_nasty_configs_are_reported_at_their_line(text: str, line: int) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, PATH)
    assert raised.value.errors[0].startswith(f"{PATH}:{line}: "), raised.value.errors


@FAST
@given(st.binary(max_size=300))
def test_any_bytes_in_the_file_are_a_config_or_file_line_errors(data: bytes) -> None:
    import tempfile

    from aggregator.config import load_config

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.toml"
        path.write_bytes(data)
        try:
            load_config(path)
        except ConfigError as error:
            pattern = re.compile(rf"^{re.escape(str(path))}:\d+: \S")
            assert all(pattern.match(line) for line in error.errors), error.errors


# -- the same inputs through the real programs -----------------------------------------


def bad_configs(count: int, seed: int) -> list[str]:
    """Seeded truncations and manglings of RICH that `parse_config` refuses."""
    chance = random.Random(seed)
    found: list[str] = []
    while len(found) < count:
        lines = RICH.splitlines()
        if chance.random() < 0.5:
            text = RICH[: chance.randrange(1, len(RICH))]
        else:
            at = chance.randrange(len(lines))
            lines[at] = lines[at][: chance.randrange(len(lines[at]) + 1)] + chance.choice(TOKENS)
            text = "\n".join(lines)
        try:
            parse_config(text, PATH)
        except ConfigError:
            found.append(text)
    return found


@pytest.mark.parametrize("number", range(4))
def test_check_command_on_a_bad_config_prints_file_line_errors_and_exits_2(
    tmp_path: Path, number: int
) -> None:
    text = bad_configs(4, seed=7)[number]
    config = tmp_path / "aggregator.toml"
    config.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), "check"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert result.returncode == 2, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    pattern = re.compile(rf"^{re.escape(str(config))}:\d+: \S")
    assert lines and all(pattern.match(line) for line in lines), lines


@pytest.fixture
def running(tmp_path: Path) -> Iterator[DaemonProcess]:
    port = free_port()
    config = tmp_path / "aggregator.toml"
    sample = REPO / "config" / "samples"
    good = (
        settings_toml(f"sqlite:///{tmp_path / 'r.db'}", port)
        + "".join(
            f'[sources.s{n}]\npath = "{path}"\ncategories = ["news"]\n'
            for n, path in enumerate(sorted(sample.iterdir()))
        )
        + '[feeds.kept]\ninclude = ["the"]\n'
    )
    config.write_text(good, encoding="utf-8")
    with running_daemon(
        config, port=port, ready=lambda daemon: daemon.answers("/feeds/kept.atom", (200,))
    ) as daemon:
        yield daemon


def test_sighup_with_random_bad_configs_keeps_the_running_one(
    running: DaemonProcess,
) -> None:
    process, config, log, base = running.process, running.config, running.log, running.base
    good = config.read_text(encoding="utf-8")
    for number, text in enumerate(bad_configs(6, seed=11), start=1):
        config.write_text(text, encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while log.read_text().count("reload refused") < number:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert httpx2.get(f"{base}/feeds/kept.atom", timeout=5).status_code == 200
        assert httpx2.get(f"{base}/healthz", timeout=5).status_code == 200
    text = log.read_text()
    assert "Traceback" not in text, text
    # One log line per error after each refusal: "TIME ERROR aggregator.daemon:   FILE:LINE: …".
    messages = [
        line.split(" ERROR aggregator.daemon: ", 1)[1]
        for line in text.splitlines()
        if " ERROR aggregator.daemon: " in line
    ]
    refusal = re.compile(rf"^reload refused: {re.escape(str(config))} has (\d+) error\(s\)")
    pattern = re.compile(rf"^  {re.escape(str(config))}:\d+: \S")
    refusals = [n for n, m in enumerate(messages) if refusal.match(m)]
    assert len(refusals) == 6, messages
    for at in refusals:
        match = refusal.match(messages[at])
        assert match is not None
        errors = messages[at + 1 : at + 1 + int(match.group(1))]
        assert errors and all(pattern.match(line) for line in errors), messages[at:]

    config.write_text(good + '[feeds.added]\ninclude = ["the"]\n', encoding="utf-8")
    process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while httpx2.get(f"{base}/feeds/added.atom", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    assert httpx2.get(f"{base}/feeds/kept.atom", timeout=5).status_code == 200
