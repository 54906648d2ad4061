"""The pages for people, served in process over a real SQLite store with 30 days of history."""

from __future__ import annotations

import asyncio
import html as html_text
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pagedata
import pytest
from lxml import html
from sqlalchemy import event
from starlette.testclient import TestClient

from aggregator.config import Config, parse_config
from aggregator.poll import run_pass
from aggregator.store import Store
from aggregator.web import WebState, create_app

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SAMPLES = Path(__file__).resolve().parents[1] / "config" / "samples"


def make_config(tmp_path: Path, extra_sources: int = 0) -> Config:
    text = (
        f'[aggregator]\ndatabase = "sqlite:///{tmp_path / "p.db"}"\n'
        'base_url = "http://feeds.test"\nretention = "3650d"\n'
        f'\n[sources.marxist]\npath = "{SAMPLES / "marxist.xml"}"\ncategories = ["world"]\n'
        + pagedata.sources_toml()
        + "".join(
            f'\n[sources.extra-{n}]\nurl = "https://extra{n}.example/feed"\n'
            for n in range(extra_sources)
        )
        + '\n[feeds.middle-east]\ntitle = "Middle East"\ninclude = ["Israel", "Gaza"]\n'
        'exclude = ["title:\\"Help Wanted\\""]\n'
    )
    return parse_config(text, tmp_path / "aggregator.toml")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Store]]:
    config = make_config(tmp_path_factory.mktemp("pages"))
    pagedata.seed(config, NOW)
    store = Store(config.settings.database)
    asyncio.run(run_pass(config, store, names={"marxist"}, force=True, clock=lambda: NOW))
    state = WebState(config=config, store=store, clock=lambda: NOW)
    with TestClient(create_app(state)) as client:
        yield client, store
    store.close()


def page(client: TestClient, path: str) -> html.HtmlElement:
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "<script" not in response.text.lower()
    document = html.document_fromstring(response.text)
    ids = [element.get("id") for element in document.iter() if element.get("id")]
    assert len(ids) == len(set(ids)), "ids are unique"
    assert document.get("lang") == "en"
    assert document.find(".//main") is not None
    return document


def source_order(document: html.HtmlElement) -> list[str]:
    return [
        row.get("id").removeprefix("source-")
        for row in document.iter("tr")
        if (row.get("id") or "").startswith("source-")
    ]


def test_front_page_lists_sources_by_name_with_a_sparkline_each(
    site: tuple[TestClient, Store],
) -> None:
    client, _ = site
    document = page(client, "/")
    assert source_order(document) == ["broken", "dying", "flooding", "marxist", "steady"]
    sparks = document.xpath("//svg[@class='spark']")
    assert len(sparks) == 5
    labels = {svg.get("aria-label").split(",")[0]: svg.get("aria-label") for svg in sparks}
    assert "failures on 30 days" in labels["Broken News"]
    assert "nothing new for the last 10 days" in labels["Dying News"]
    links = {a.get("href") for a in document.iter("a")}
    assert {"sources/dying", "outputs/middle-east", "outputs/all"} <= links
    assert "http://feeds.test/feeds/middle-east.atom" in links
    assert "http://feeds.test/feeds.opml" in links


@pytest.mark.parametrize(
    ("query", "order"),
    [
        ("?sort=health", ["broken", "dying", "flooding", "marxist", "steady"]),
        ("?sort=entries&order=desc", ["flooding", "steady", "dying", "marxist", "broken"]),
        ("?sort=errors&order=desc", ["broken", "dying", "flooding", "marxist", "steady"]),
        ("?sort=name&order=desc", ["steady", "marxist", "flooding", "dying", "broken"]),
        ("?sort=nonsense", ["broken", "dying", "flooding", "marxist", "steady"]),
    ],
)
def test_sources_sort_on_the_server_by_query_parameter(
    site: tuple[TestClient, Store], query: str, order: list[str]
) -> None:
    client, _ = site
    document = page(client, "/" + query)
    assert source_order(document) == order
    [sorted_by] = document.xpath("//th[@aria-sort]")
    assert sorted_by.get("aria-sort") == ("descending" if "desc" in query else "ascending")


def test_the_front_page_costs_the_same_queries_for_five_sources_or_forty(
    tmp_path: Path,
) -> None:
    counts = []
    for extra in (0, 35):
        folder = tmp_path / str(extra)
        folder.mkdir()
        config = make_config(folder, extra_sources=extra)
        pagedata.seed(config, NOW, days=2)
        store = Store(config.settings.database)
        statements: list[str] = []
        event.listen(
            store._engine, "before_cursor_execute", lambda *a, seen=statements: seen.append(a[2])
        )
        with TestClient(
            create_app(WebState(config=config, store=store, clock=lambda: NOW))
        ) as client:
            assert client.get("/").status_code == 200
        store.close()
        counts.append(len([s for s in statements if s.lstrip().upper().startswith("SELECT")]))
    assert counts[0] == counts[1] == 2


def test_a_source_page_shows_its_last_error_in_full_its_polls_chart_and_entries(
    site: tuple[TestClient, Store],
) -> None:
    client, _ = site
    broken = page(client, "/sources/broken")
    assert broken.xpath("string(//pre[@class='error'])") == pagedata.LONG_ERROR
    assert len(broken.xpath("//h2[@id='polls']/following-sibling::div[1]//tbody/tr")) == 30
    dying = page(client, "/sources/dying")
    rows = dying.xpath("//h2[@id='polls']/following-sibling::div[1]//tbody/tr")
    assert len(rows) == 30
    assert "error (503)" in rows[0].text_content()
    chart = dying.xpath("//svg[@class='chart']")[0]
    assert chart.get("aria-labelledby") == "activity-title activity-desc"
    assert "nothing new for the last 10 days" in dying.xpath("string(//figcaption)")
    entries = dying.xpath("//h2[@id='entries']/following-sibling::div[1]//tbody/tr")
    assert len(entries) == 20
    assert entries[0].xpath("string(.//a/@href)") == "https://dying.example/articles/20"
    day_rows = dying.xpath("//details//tbody/tr")
    assert len(day_rows) == 30
    facts = dying.xpath("string(//dl[@class='facts'])")
    assert "https://dying.example/atom.xml" in facts and "labour" in facts


def test_an_output_page_shows_what_it_publishes_and_how_to_subscribe(
    site: tuple[TestClient, Store],
) -> None:
    client, _ = site
    document = page(client, "/outputs/middle-east")
    subscribe = [a.get("href") for a in document.xpath("//ul[@class='subscribe']//a")]
    assert subscribe == [
        "http://feeds.test/feeds/middle-east.atom",
        "http://feeds.test/feeds/middle-east.rss",
        "http://feeds.test/feeds/middle-east.json",
    ]
    published = document.xpath("//h2[@id='stories']/following-sibling::div[1]//tbody/tr")
    assert published, "the samples carry stories about Israel and Gaza"
    assert all("admitted by include" in row.text_content() for row in published)
    rejected = document.xpath("//details//tbody/tr")
    assert rejected and all("rejected" in row.text_content() for row in rejected)
    assert "Israel" in document.xpath("string(//dl[@class='facts'])")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/sources/nope", "no source named 'nope'"),
        ("/outputs/nope", "no output feed named 'nope'"),
    ],
)
def test_unknown_pages_are_404_with_a_way_back(
    site: tuple[TestClient, Store], path: str, message: str
) -> None:
    client, _ = site
    response = client.get(path)
    assert response.status_code == 404
    assert message in html_text.unescape(response.text)
    assert re.search(r'href="\.\./\./"', response.text)
