"""`aggregator sources …` and `prune` on real files, a real feed server and a real daemon."""

from __future__ import annotations

import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from daemonproc import DaemonProcess, free_port, running_daemon, start_daemon, wait_until
from feedserver import FeedServer

from aggregator import configfile
from aggregator.cli import main
from aggregator.config import load_config
from aggregator.opml import read_opml
from aggregator.parse import parse_document
from aggregator.store import Store

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "config" / "samples"
RSS = (SAMPLES / "marxist.xml").read_bytes()
ATOM = (SAMPLES / "socialist-appeal.atom").read_bytes()
PAGE = (
    b"<!DOCTYPE html><html><head><title>A blog</title>"
    b'<link rel="alternate" type="application/rss+xml" href="/feed.xml">'
    b'<link rel="alternate" type="application/atom+xml" href="/comments.atom">'
    b"</head><body>hello</body></html>"
)

BASE = """\
# The admin's notes stay where they are.
[aggregator]
database = "sqlite:///{db}"
retention = "30d"

[sources.local]
# A local sample.
path = "{sample}"
categories = ["world"]

[feeds.picked]
sources = ["local", "other"]

[sources.other]
path = "{other}"
"""


@pytest.fixture
def site(feed_server: FeedServer) -> FeedServer:
    feed_server.add("/feed.xml", RSS)
    feed_server.add("/comments.atom", ATOM, content_type="application/atom+xml")
    feed_server.add("/blog/", PAGE, content_type="text/html; charset=utf-8")
    feed_server.add(
        "/about", b"<!DOCTYPE html><html><body>no feeds</body></html>", content_type="text/html"
    )
    feed_server.add("/data.json", b'{"hello": "world"}', content_type="application/json")
    return feed_server


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "aggregator.toml"
    path.write_text(
        BASE.format(
            db=tmp_path / "var" / "a.db",
            sample=SAMPLES / "marxist.xml",
            other=SAMPLES / "fightback.json",
        ),
        encoding="utf-8",
    )
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args])


# -- add -----------------------------------------------------------------------------


def test_add_discovers_the_feed_of_an_html_page_and_names_it_from_its_title(
    site: FeedServer, config: Path
) -> None:
    result = run(config, "sources", "add", site.url("/blog/"), "--category", "world")
    assert result.exit_code == 0, result.output
    assert f"{site.url('/blog/')} is an HTML page; its feed is {site.url('/feed.xml')}" in (
        result.stdout
    )
    assert f"it also offers {site.url('/comments.atom')}" in result.stdout
    assert "feed: 'In Defence of Marxism', rss20, 6 entries, newest 2021-06-04" in result.stdout
    assert "added [sources.in-defence-of-marxism]" in result.stdout
    assert "reload: no daemon is running" in result.stdout
    added = load_config(config).sources["in-defence-of-marxism"]
    assert (added.url, added.categories, added.title) == (site.url("/feed.xml"), ("world",), None)
    # One request each to the page and to its feed, with the poller's User-Agent.
    assert site.hits("/blog/") == site.hits("/feed.xml") == 1
    assert all(r.headers["user-agent"].startswith("aggregator/") for r in site.requests)
    assert config.read_text(encoding="utf-8").startswith("# The admin's notes stay where they are.")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/about", "an HTML page that offers no feed"),
        ("/data.json", "not a JSON Feed"),
        ("/missing", "HTTP 404"),
    ],
)
def test_add_refuses_what_is_not_a_feed_with_the_reason_and_writes_nothing(
    site: FeedServer, config: Path, path: str, reason: str
) -> None:
    before = config.read_bytes()
    result = run(config, "sources", "add", site.url(path))
    assert result.exit_code == 1
    assert "not added:" in result.stderr and reason in result.stderr
    assert site.url(path) in result.stderr
    assert config.read_bytes() == before


def test_add_refuses_a_duplicate_by_canonical_url(site: FeedServer, config: Path) -> None:
    assert run(config, "sources", "add", site.url("/feed.xml"), "--name", "m").exit_code == 0
    before = config.read_bytes()
    again = run(config, "sources", "add", site.url("/feed.xml?utm_source=x"))
    assert again.exit_code == 2
    assert "is already a source: m" in again.stderr
    assert config.read_bytes() == before


def test_a_change_that_fails_validation_leaves_the_file_byte_for_byte(
    site: FeedServer, config: Path
) -> None:
    before = config.read_bytes()
    bad = run(config, "sources", "add", site.url("/feed.xml"), "--interval", "soon")
    assert bad.exit_code == 2
    assert "not saved" in bad.stderr and "the file is unchanged" in bad.stderr
    assert f"{config}:" in bad.stderr and "expected a duration" in bad.stderr
    assert config.read_bytes() == before
    line = run(config, "sources", "set", "local", "categories", "World News")
    assert line.exit_code == 2
    # The error names the line as it is in the file on disk.
    assert (
        f"{config}:9: (a line this change writes) sources.local.categories[0]: "
        "invalid name 'World'" in line.stderr
    )
    assert config.read_bytes() == before


# -- edits in place ----------------------------------------------------------------


def test_edits_keep_the_files_mode_and_write_through_a_symlink(
    config: Path, tmp_path: Path
) -> None:
    config.chmod(0o640)
    link = tmp_path / "link.toml"
    link.symlink_to(config)
    assert run(link, "sources", "disable", "local").exit_code == 0
    assert link.is_symlink()
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert not load_config(config).sources["local"].enabled
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_disable_then_enable_restores_the_file_exactly(config: Path) -> None:
    before = config.read_bytes()
    disabled = run(config, "sources", "disable", "local")
    assert disabled.exit_code == 0 and "local disabled in" in disabled.stdout
    assert b"enabled = false" in config.read_bytes()
    assert run(config, "sources", "disable", "local").stdout.startswith("local is disabled already")
    assert run(config, "sources", "enable", "local").exit_code == 0
    assert config.read_bytes() == before


def test_remove_takes_the_source_out_of_feeds_that_list_it(config: Path) -> None:
    result = run(config, "sources", "remove", "other")
    assert result.exit_code == 0, result.output
    assert "also taken out of feeds.picked.sources" in result.stdout
    loaded = load_config(config)
    assert list(loaded.sources) == ["local"]
    assert loaded.feeds["picked"].sources == ("local",)
    assert run(config, "sources", "remove", "other").exit_code == 2


def test_set_switches_a_path_source_to_a_url_in_place(site: FeedServer, config: Path) -> None:
    result = run(config, "sources", "set", "local", "url", site.url("/feed.xml"))
    assert result.exit_code == 0, result.output
    text = config.read_text(encoding="utf-8")
    assert f'# A local sample.\nurl = "{site.url("/feed.xml")}"\ncategories' in text
    assert run(config, "sources", "set", "local", "nope", "x").exit_code == 2
    assert run(config, "sources", "set", "ghost", "title", "x").exit_code == 2


def test_list_says_where_each_source_is_and_how_it_is(config: Path) -> None:
    assert run(config, "poll", "--all").exit_code == 0
    assert run(config, "sources", "disable", "other", "--no-reload").exit_code == 0
    rows = [line.split("\t") for line in run(config, "sources", "list").stdout.splitlines()]
    assert rows == [
        ["local", str(SAMPLES / "marxist.xml"), "world", "30m*", "yes", "ok"],
        ["other", str(SAMPLES / "fightback.json"), "", "30m*", "no", "disabled"],
    ]
    # A file beside the configuration is shown as the configuration names it.
    beside = config.parent / "feeds" / "mine.xml"
    beside.parent.mkdir()
    beside.write_bytes(RSS)
    assert run(config, "sources", "set", "other", "path", "feeds/mine.xml").exit_code == 0
    listed = run(config, "sources", "list").stdout.splitlines()[1].split("\t")
    assert listed[1] == "feeds/mine.xml"


def test_export_writes_opml_with_categories(site: FeedServer, config: Path, tmp_path: Path) -> None:
    run(config, "sources", "add", site.url("/feed.xml"), "--category", "world", "--category", "x")
    target = tmp_path / "out.opml"
    result = run(config, "sources", "export", "--out", str(target))
    assert result.exit_code == 0
    assert "left out 2 local-file sources" in result.stderr
    [feed] = read_opml(target.read_bytes()).feeds
    assert (feed.url, set(feed.folders)) == (site.url("/feed.xml"), {"world", "x"})


# -- prune -------------------------------------------------------------------------


def test_prune_by_hand_says_what_it_would_remove_then_removes_it(config: Path) -> None:
    assert run(config, "poll", "--all").exit_code == 0
    store = Store(load_config(config).settings.database)
    stories = len(store.stories(limit=500))
    entries = sum(state.entry_count for state in store.source_states())
    store.close()
    dry = run(config, "prune", "--dry-run")
    assert dry.exit_code == 0
    # The samples date from 2021: every story is past a 30-day retention.
    assert f"would prune {stories} stories ({entries} entries) sorted before" in dry.stdout
    assert "(retention 30d); 0 of 0 tombstones would expire" in dry.stdout
    done = run(config, "prune")
    assert done.exit_code == 0
    assert f"pruned {stories} stories ({entries} entries)" in done.stdout
    assert f"tombstones: {entries} kept, 0 expired" in done.stdout
    assert "would prune 0 stories" in run(config, "prune", "--dry-run").stdout


# -- telling the daemon ------------------------------------------------------------------


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def daemon_config(tmp_path: Path, site: FeedServer) -> Iterator[tuple[Path, Path, int]]:
    port = free_port()
    config = tmp_path / "aggregator.toml"
    config.write_text(
        f'[aggregator]\ndatabase = "sqlite:///{tmp_path / "d.db"}"\n'
        f'listen = "127.0.0.1:{port}"\nbase_url = "http://127.0.0.1:{port}"\n'
        'interval = "1h"\n\n'
        f'[sources.first]\nurl = "{site.url("/comments.atom")}"\n',
        encoding="utf-8",
    )
    yield config, tmp_path / "aggregator.pid", port


def start(config: Path, port: int, log: Path) -> DaemonProcess:
    return start_daemon(
        config,
        port=port,
        log=log,
        env={"AGGREGATOR_TICK": "0.2"},
        ready=lambda daemon: "serving http" in daemon.text(),
    )


def test_edits_tell_the_running_daemon_through_its_pid_file(
    site: FeedServer, daemon_config: tuple[Path, Path, int], tmp_path: Path
) -> None:
    config, pid_file, port = daemon_config
    log = tmp_path / "daemon.log"
    daemon = start(config, port, log)
    process = daemon.process
    try:
        assert pid_file.read_text().strip() == str(process.pid)
        added = cli(config, "sources", "add", site.url("/blog/"), "--name", "blog")
        assert added.returncode == 0, added.stderr
        assert f"reload: told the running daemon (pid {process.pid}) to reload" in added.stdout
        wait_until(lambda: "(added blog;" in log.read_text(), 30, "the reload", log)
        quiet = cli(config, "sources", "disable", "blog", "--no-reload")
        assert quiet.returncode == 0 and "not told any daemon (--no-reload)" in quiet.stdout
        time.sleep(0.5)
        assert log.read_text().count("configuration reloaded") == 1
        # A second daemon on the same pid file refuses to start, naming the first.
        second = subprocess.run(
            [sys.executable, "-m", "aggregator", "--config", str(config), "run"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert f"another daemon (pid {process.pid}) runs with this pid file" in second.stderr
    finally:
        assert daemon.stop() == 0
    assert not pid_file.exists()
    after = cli(config, "sources", "enable", "blog")
    assert f"reload: no daemon is running with pid file {pid_file}" in after.stdout


def test_a_killed_daemons_pid_file_is_known_to_be_stale(
    site: FeedServer, daemon_config: tuple[Path, Path, int], tmp_path: Path
) -> None:
    config, pid_file, port = daemon_config
    first = start(config, port, tmp_path / "first.log")
    first.process.kill()
    first.process.wait()
    assert pid_file.exists()
    result = cli(config, "sources", "disable", "first")
    assert result.returncode == 0
    assert "no daemon is running with pid file" in result.stdout
    assert "(a stale pid file was left there)" in result.stdout
    # The next daemon takes the stale file over.
    again = start(config, port, tmp_path / "again.log")
    try:
        wait_until(
            lambda: pid_file.read_text().strip() == str(again.process.pid),
            30,
            "a new pid",
            again.log,
        )
    finally:
        again.stop()


def test_the_daemon_prunes_by_itself(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "aggregator.toml"
    # The samples date from 2021: a 30-day retention prunes all they bring.
    config.write_text(
        f'[aggregator]\ndatabase = "sqlite:///{tmp_path / "d.db"}"\n'
        f'listen = "127.0.0.1:{port}"\nretention = "30d"\n'
        f'\n[sources.local]\npath = "{SAMPLES / "marxist.xml"}"\n',
        encoding="utf-8",
    )
    env = {"AGGREGATOR_TICK": "0.2", "AGGREGATOR_PRUNE_AFTER": "3"}
    with running_daemon(config, port=port, env=env) as daemon:
        log = daemon.log
        wait_until(lambda: "source=local" in log.read_text(), 30, "the first poll", log)
        wait_until(lambda: "retention: pruned" in log.read_text(), 30, "the daily prune", log)
    line = next(line for line in log.read_text().splitlines() if "retention: pruned" in line)
    entries = len(parse_document(RSS, url="https://x.example/").entries)
    assert f"retention: pruned {entries} stories ({entries} entries)" in line
    assert f"{entries} tombstones kept, 0 expired" in line
    store = Store(load_config(config).settings.database)
    assert store.stories() == []
    store.close()


def test_import_with_check_fetches_each_feed_and_skips_what_is_none(
    site: FeedServer, config: Path, tmp_path: Path
) -> None:
    opml = tmp_path / "list.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head/><body>'
        '<outline text="News">'
        f'<outline text="Feed" xmlUrl="{site.url("/comments.atom")}"/>'
        f'<outline text="Blog page" xmlUrl="{site.url("/blog/")}"/>'
        f'<outline text="Gone" xmlUrl="{site.url("/missing")}"/>'
        "</outline></body></opml>",
        encoding="utf-8",
    )
    result = run(config, "sources", "import", str(opml), "--check", "--no-reload")
    assert result.exit_code == 0, result.output
    assert f"skipped: Gone <{site.url('/missing')}>: {site.url('/missing')}: HTTP 404" in (
        result.stderr
    )
    added = {name: s for name, s in load_config(config).sources.items() if s.url}
    assert {s.url for s in added.values()} == {site.url("/comments.atom"), site.url("/feed.xml")}
    assert all(s.categories == ("news",) for s in added.values())
    assert site.hits("/missing") == 1


def test_an_edit_does_not_overwrite_someone_elses_meanwhile(config: Path) -> None:
    current = configfile.read(config)
    config.write_text(config.read_text(encoding="utf-8") + "\n# theirs\n", encoding="utf-8")
    theirs = config.read_bytes()
    with pytest.raises(configfile.SaveError, match="changed by someone else meanwhile"):
        configfile.save(current, current.text.replace('"30d"', '"60d"'))
    assert config.read_bytes() == theirs


def test_a_byte_order_mark_survives_an_edit(config: Path) -> None:
    config.write_bytes(b"\xef\xbb\xbf" + config.read_bytes())
    assert run(config, "sources", "disable", "local", "--no-reload").exit_code == 0
    assert config.read_bytes().startswith(b"\xef\xbb\xbf# The admin's notes")
    assert not load_config(config).sources["local"].enabled


def test_list_before_any_poll_creates_no_database(config: Path, tmp_path: Path) -> None:
    rows = [line.split("\t") for line in run(config, "sources", "list").stdout.splitlines()]
    assert [row[-1] for row in rows] == ["new", "new"]
    assert not (tmp_path / "var").exists()
