"""Pure edits of the configuration text: layout kept, only the intended lines change."""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path

import pytest

from aggregator.config import parse_config
from aggregator.sources import (
    Candidate,
    EditError,
    NewSource,
    add_sources,
    category_name,
    changes_for,
    find_duplicate,
    original_line,
    parse_value,
    plan_import,
    propose_name,
    remove_from_feeds,
    remove_source,
    set_keys,
    slug,
    unique_name,
)

REPO = Path(__file__).resolve().parents[1]
BUNDLED = (REPO / "config" / "aggregator.toml").read_text(encoding="utf-8")

SMALL = """\
# Top of the file.
[aggregator]
interval = "30m"   # default

# --- sources ---
[sources.alpha]
# about alpha
url = "https://alpha.example/feed"  # keep this comment
categories = ['world']
# enabled = false   (a commented-out option, alpha's own)

# described right above its header
[sources.beta]
url = "https://beta.example/feed"


# --- output feeds ---

[feeds.only-alpha]
sources = ["alpha", "beta"]
"""


def changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    """The lines removed from `old` and added in `new`."""
    removed, added = [], []
    for line in difflib.ndiff(old.splitlines(), new.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def data(text: str) -> dict[str, object]:
    return tomllib.loads(text)


# -- add ---------------------------------------------------------------------------


def test_add_puts_the_table_after_the_last_source_before_the_next_sections_comment() -> None:
    new = add_sources(SMALL, [NewSource("gamma", url="https://g.example/rss", categories=("x",))])
    removed, added = changed_lines(SMALL, new)
    assert removed == []
    assert sorted(added) == sorted(
        ["", "[sources.gamma]", 'url = "https://g.example/rss"', 'categories = ["x"]']
    )
    assert new.index("[sources.gamma]") < new.index("# --- output feeds ---")
    assert data(new)["sources"]["gamma"] == {"url": "https://g.example/rss", "categories": ["x"]}


def test_add_to_the_bundled_file_changes_nothing_else_and_validates(tmp_path: Path) -> None:
    sources = [
        NewSource("one", url="https://one.example/feed", title='A "quoted" title', interval="1h"),
        NewSource("two", url="https://two.example/feed", enabled=False),
    ]
    new = add_sources(BUNDLED, sources)
    removed, added = changed_lines(BUNDLED, new)
    assert removed == []
    assert "[sources.one]" in added and "enabled = false" in added
    config = parse_config(new, REPO / "config" / "aggregator.toml")
    assert config.sources["one"].title == 'A "quoted" title'
    assert not config.sources["two"].enabled
    assert list(config.sources)[-2:] == ["one", "two"]


@pytest.mark.parametrize(
    ("case", "text"),
    [
        ("empty file", ""),
        ("settings only, no final newline", '[aggregator]\ninterval = "1h"'),
        ("only feeds", '[feeds.all-news]\ntitle = "News"\n'),
    ],
)
def test_add_when_the_file_has_no_source_yet(case: str, text: str) -> None:
    new = add_sources(text, [NewSource("first", url="https://first.example/")])
    assert data(new)["sources"] == {"first": {"url": "https://first.example/"}}
    assert new.startswith(text)


def test_add_to_inline_tables_keeps_their_style() -> None:
    text = '[sources]\nalpha = { url = "https://alpha.example/" }\n'
    new = add_sources(text, [NewSource("beta", url="https://beta.example/")])
    assert 'beta = {url = "https://beta.example/"}' in new
    assert data(new)["sources"]["beta"] == {"url": "https://beta.example/"}


def test_add_refuses_a_name_taken() -> None:
    with pytest.raises(EditError, match="'alpha' exists already"):
        add_sources(SMALL, [NewSource("alpha", url="https://x.example/")])


# -- remove ------------------------------------------------------------------------


def test_remove_takes_the_table_and_the_comment_right_above_its_header() -> None:
    new = remove_source(SMALL, "beta")
    removed, added = changed_lines(SMALL, new)
    assert added == []
    assert sorted(removed) == sorted(
        [
            "",
            "# described right above its header",
            "[sources.beta]",
            'url = "https://beta.example/feed"',
        ]
    )
    # alpha's own trailing comment and the next section's comment stay.
    assert "# enabled = false   (a commented-out option, alpha's own)" in new
    assert "\n\n\n# --- output feeds ---" in new


def test_remove_the_first_source_keeps_what_stood_before_it() -> None:
    new = remove_source(SMALL, "alpha")
    # Right above the first source, a comment may head the whole section: it stays.
    assert new.startswith(
        '# Top of the file.\n[aggregator]\ninterval = "30m"   # default\n\n# --- sources ---\n'
    )
    assert "about alpha" not in new and "[sources.alpha]" not in new
    assert data(new)["sources"] == {"beta": {"url": "https://beta.example/feed"}}


def test_remove_every_bundled_source_one_by_one_keeps_the_rest_of_the_file() -> None:
    text = BUNDLED
    for name in ("socialist-appeal", "marxist", "socialist-revolution", "fightback"):
        text = remove_source(text, name)
    removed, added = changed_lines(BUNDLED, text)
    assert added == []
    assert all(
        line.startswith(("[sources.", "path =", "categories =", "title =", "interval =", "# "))
        or line == ""
        for line in removed
    )
    assert "sources" not in data(text)
    assert "# ─── Output feeds" in text and "# ─── Sources" in text


def test_remove_an_unknown_source_names_the_close_one() -> None:
    with pytest.raises(EditError, match="no source named 'alpah' \\(did you mean 'alpha'\\?\\)"):
        remove_source(SMALL, "alpah")


def test_remove_from_feeds_takes_the_name_out_of_sources_lists() -> None:
    new, feeds = remove_from_feeds(SMALL, "beta")
    assert feeds == ["only-alpha"]
    assert data(new)["feeds"]["only-alpha"] == {"sources": ["alpha"]}


def test_remove_from_feeds_refuses_to_leave_a_feed_taking_every_source() -> None:
    text = SMALL.replace('sources = ["alpha", "beta"]', 'sources = ["beta"]')
    with pytest.raises(EditError, match="lists only source 'beta'"):
        remove_from_feeds(text, "beta")


# -- set ---------------------------------------------------------------------------


def test_set_an_existing_key_keeps_its_place_and_comment() -> None:
    new = set_keys(SMALL, "alpha", {"url": "https://alpha.example/rss"})
    assert changed_lines(SMALL, new) == (
        ['url = "https://alpha.example/feed"  # keep this comment'],
        ['url = "https://alpha.example/rss"  # keep this comment'],
    )


def test_set_a_new_key_goes_after_the_tables_own_lines() -> None:
    new = set_keys(SMALL, "alpha", {"interval": "2h"})
    lines = new.splitlines()
    at = lines.index('interval = "2h"')
    assert lines[at - 1] == "# enabled = false   (a commented-out option, alpha's own)"
    assert lines[at + 1] == ""


def test_disable_then_enable_gives_back_the_same_bytes() -> None:
    disabled = set_keys(BUNDLED, "fightback", {"enabled": False})
    assert changed_lines(BUNDLED, disabled) == ([], ["enabled = false"])
    assert set_keys(disabled, "fightback", {"enabled": None}) == BUNDLED


def test_setting_url_replaces_path_where_it_stood() -> None:
    new = set_keys(BUNDLED, "marxist", changes_for("url", "https://www.marxist.com/index.rss"))
    assert changed_lines(BUNDLED, new) == (
        ['path = "samples/marxist.xml"'],
        ['url = "https://www.marxist.com/index.rss"'],
    )
    back = set_keys(new, "marxist", changes_for("path", "samples/marxist.xml"))
    assert back == BUNDLED


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("enabled", "no", False),
        ("enabled", "True", True),
        ("allow_private", "yes", True),
        ("categories", "world, theory  labour", ["world", "theory", "labour"]),
        ("interval", "15m", "15m"),
        ("title", "  My title ", "My title"),
        ("title", "", None),
        ("interval", "", None),
    ],
)
def test_parse_value(key: str, value: str, expected: object) -> None:
    assert parse_value(key, value) == expected


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("enabled", "maybe", "enabled is true or false"),
        ("intervall", "5m", "did you mean 'interval'"),
        ("url", "", "url may not be empty"),
    ],
)
def test_parse_value_refuses(key: str, value: str, message: str) -> None:
    with pytest.raises(EditError, match=message):
        parse_value(key, value)


# -- names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("In Defence of Marxism", "in-defence-of-marxism"),
        ("Ærø Zürich — Łódź news", "aero-zurich-lodz-news"),
        ("  --Hello, World!--  ", "hello-world"),
        ("中文新闻", ""),
        (
            "A very long title that goes on and on and on beyond any reason",
            "a-very-long-title-that-goes-on-and-on",
        ),
    ],
)
def test_slug(text: str, expected: str) -> None:
    assert slug(text) == expected


@pytest.mark.parametrize(
    ("title", "url", "taken", "expected"),
    [
        ("Socialist Appeal", "https://socialist.net/feed", set(), "socialist-appeal"),
        ("Socialist Appeal", "https://x/", {"socialist-appeal"}, "socialist-appeal-2"),
        (
            "Socialist Appeal",
            "https://x/",
            {"socialist-appeal", "socialist-appeal-2"},
            "socialist-appeal-3",
        ),
        ("中文新闻", "https://www.news.example.cn/rss", set(), "news-example-cn"),
        (None, "https://blog.example.org/feed", set(), "blog-example-org"),
        ("", "http://[::1]:8080/feed", set(), "source"),
        ("🎉", "not a url", set(), "source"),
    ],
)
def test_propose_name(title: str | None, url: str, taken: set[str], expected: str) -> None:
    assert propose_name(title, url, taken) == expected


def test_unique_name_stays_within_the_length_limit() -> None:
    base = "x" * 40
    assert unique_name(base, {base}) == "x" * 38 + "-2"


@pytest.mark.parametrize(
    ("folder", "expected"),
    [("World News", "world-news"), ("🔐 Security", "security"), ("🔐", "u1f510")],
)
def test_category_name(folder: str, expected: str) -> None:
    assert category_name(folder) == expected


def test_duplicates_are_found_by_canonical_url() -> None:
    existing = {"marxist": "https://www.marxist.com/index.rss", "local": None}
    assert find_duplicate("http://marxist.com/index.rss?utm_source=x", existing) == "marxist"
    assert find_duplicate("https://www.marxist.com/other.rss", existing) is None


# -- import plan -------------------------------------------------------------------------


def test_import_plan_names_categorises_and_skips_with_reasons() -> None:
    candidates = [
        Candidate("https://a.example/feed", "Alpha Blog", ("Tech", "Linux")),
        Candidate("https://www.a.example/feed/", "Alpha again", ("Other",)),
        Candidate("https://a.example/feed?utm_source=opml", "Alpha thrice", ("Tech",)),
        Candidate("feed.xml", "Relative", ()),
        Candidate("https://known.example/rss", "Known", ()),
        Candidate("https://b.example/feed", None, ("🔐 Security",)),
        Candidate("https://c.example/feed", "Alpha Blog", ()),
    ]
    plan = plan_import(
        candidates, {"known": "https://known.example/rss"}, extra_categories=("imported",)
    )
    assert [(s.name, s.url, s.categories, s.title) for s in plan.add] == [
        (
            "alpha-blog",
            "https://a.example/feed",
            ("tech", "linux", "imported", "other"),
            "Alpha Blog",
        ),
        ("b-example", "https://b.example/feed", ("security", "imported"), None),
        ("alpha-blog-2", "https://c.example/feed", ("imported",), "Alpha Blog"),
    ]
    # a feed in several folders is one source in every folder's category
    assert [(s.candidate.title, s.reason) for s in plan.merged] == [
        (
            "Alpha again",
            "listed again in the file: one source, alpha-blog; categories added: other",
        ),
        ("Alpha thrice", "listed again in the file: one source, alpha-blog"),
    ]
    assert [(s.candidate.title, s.reason.split(" (")[0]) for s in plan.skipped] == [
        ("Relative", "expected an http:// or https:// URL, got 'feed.xml'"),
        ("Known", "already a source: known"),
    ]
    assert plan.categories == ("tech", "linux", "imported", "other", "security")


# -- where errors are ----------------------------------------------------------------------


def test_original_line_maps_unchanged_lines_and_points_new_ones_at_their_place() -> None:
    old = "a\nb\nc\nd\n"
    new = "a\nc\nX\nd\n"  # b removed, X added
    assert original_line(old, new, 1) == (1, True)
    assert original_line(old, new, 2) == (3, True)
    assert original_line(old, new, 3) == (4, False)
    assert original_line(old, new, 4) == (4, True)
