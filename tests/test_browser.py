"""The status pages in a real headless browser (Debian's chromium driven by Playwright),
served by a real `aggregator run` over a database with 30 days of history.

Checks what a person would notice: console errors, broken links, sideways scrolling on
a phone, missing text alternatives, low contrast, pages that need JavaScript. The
screenshots of the main pages land in test-artifacts/screenshots/ (git ignores it).

The browser is the system's: if /usr/bin/chromium is missing, the fixture tries
`apt-get install chromium` (CI machines of this kind allow it) and skips, saying why,
where that is impossible. Playwright never downloads a browser of its own here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx2
import pagedata
import pytest
from daemonproc import DaemonProcess, free_port, running_daemon
from feedserver import FeedServer, Reply

from aggregator.config import load_config

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "config" / "samples"
ARTIFACTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
# What works on this kind of machine (as root, in a container, with no network).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}
MAIN_PAGES = {
    "front": "/",
    "source": "/sources/dying",
    "output": "/outputs/middle-east",
}

pytestmark = pytest.mark.slow


def _install_chromium() -> str | None:
    """None once /usr/bin/chromium exists, else why it cannot be had."""
    if CHROMIUM.exists():
        return None
    apt = shutil.which("apt-get")
    if apt is None:
        return "no apt-get on this machine"
    if os.geteuid() != 0:
        return "not root, so apt-get cannot install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in ([apt, "install", "-y", "-q", "chromium"], None):
        if attempt is None:
            subprocess.run([apt, "update", "-q"], env=env, capture_output=True, timeout=600)
            attempt = [apt, "install", "-y", "-q", "chromium"]
        done = subprocess.run(attempt, env=env, capture_output=True, text=True, timeout=900)
        if CHROMIUM.exists():
            return None
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
    return f"apt-get install chromium failed: {last[0]}"


# Module-scoped: Playwright's sync API runs an event loop of its own on this thread, and
# the tests after this module call asyncio.run, which refuses to run inside another loop.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:  # pragma: no cover - the dev extra installs it
        pytest.skip(f"playwright is not installed ({error}); run `make venv`")
    reason = _install_chromium()
    if reason is not None:
        pytest.skip(f"no chromium for the browser tests: {reason}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    folder = tmp_path_factory.mktemp("browser")
    port = free_port()
    with FeedServer() as failing:
        failing.handler(
            "/feed.xml",
            lambda _request: Reply(500, b"oops", {"Content-Type": "text/plain"}),
        )
        config = folder / "aggregator.toml"
        config.write_text(
            f'[aggregator]\ndatabase = "sqlite:///{folder / "b.db"}"\n'
            f'listen = "127.0.0.1:{port}"\nbase_url = "http://127.0.0.1:{port}"\n'
            'retention = "3650d"\n'
            f'\n[sources.marxist]\npath = "{SAMPLES / "marxist.xml"}"\n'
            'title = "In Defence of Marxism"\ncategories = ["world", "theory"]\n'
            f'\n[sources.fightback]\npath = "{SAMPLES / "fightback.json"}"\n'
            'categories = ["world"]\n'
            # A short interval: its first poll comes within a second, not a minute.
            f'\n[sources.local-broken]\nurl = "{failing.url("/feed.xml")}"\ninterval = "1s"\n'
            + pagedata.sources_toml()
            + '\n[feeds.middle-east]\ntitle = "Middle East"\n'
            'description = "Israel, Palestine and Iran, from every source"\n'
            'include = ["Israel", "Gaza", "Palestin*", "title:Iran"]\n'
            'exclude = ["title:\\"Help Wanted\\""]\n',
            encoding="utf-8",
        )
        pagedata.seed(load_config(config), datetime.now(UTC))
        polled = ("source=marxist", "source=fightback", "source=local-broken")
        with running_daemon(
            config,
            port=port,
            env={"AGGREGATOR_TICK": "0.2"},
            ready=lambda daemon: all(word in daemon.text() for word in polled),
            timeout=60,
        ) as daemon:
            yield daemon


def open_page(
    browser: object, viewport: dict[str, int], **options: object
) -> tuple[object, list[str]]:
    context = browser.new_context(viewport=viewport, **options)  # type: ignore[attr-defined]
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "requestfailed",
        lambda request: problems.append(f"request failed: {request.url} {request.failure}"),
    )
    return page, problems


def test_pages_load_without_console_errors_and_every_link_works(
    browser: object, served: DaemonProcess
) -> None:
    page, problems = open_page(browser, DESKTOP)
    internal = {served.base + "/"}
    checked: dict[str, int] = {}
    external: set[str] = set()
    queue = [served.base + "/"]
    while queue:
        url = queue.pop(0)
        response = page.goto(url)  # type: ignore[attr-defined]
        assert response is not None and response.status == 200, url
        hrefs = page.eval_on_selector_all(  # type: ignore[attr-defined]
            "a[href]", "links => links.map(a => a.getAttribute('href'))"
        )
        for href in hrefs:
            target = urljoin(url, href).split("#")[0]
            if urlsplit(target).netloc != urlsplit(served.base).netloc:
                external.add(target)
                continue
            if target in checked:
                continue
            answer = httpx2.get(target, timeout=10)
            checked[target] = answer.status_code
            kind = answer.headers.get("content-type", "")
            if kind.startswith("text/html") and target not in internal and len(internal) < 80:
                internal.add(target)
                queue.append(target)
    broken = {url: status for url, status in checked.items() if status != 200}
    assert broken == {}
    assert problems == []
    # Every page of the site was reached by following links from the front page.
    paths = {urlsplit(url).path for url in internal}
    assert {
        "/sources/dying",
        "/sources/local-broken",
        "/outputs/middle-east",
        "/outputs/all",
    } <= paths
    assert any(url.endswith("/feeds/all.atom") for url in checked)
    assert any(url.endswith("/feeds.opml") for url in checked)
    # Links that leave the site are real web addresses (not fetched: no network here).
    assert external and all(url.startswith(("http://", "https://")) for url in external)


@pytest.mark.parametrize("name", sorted(MAIN_PAGES))
def test_a_phone_never_scrolls_sideways(browser: object, served: DaemonProcess, name: str) -> None:
    page, problems = open_page(browser, PHONE, is_mobile=True, device_scale_factor=2)
    page.goto(served.base + MAIN_PAGES[name])  # type: ignore[attr-defined]
    width = page.evaluate("document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    assert width <= PHONE["width"], f"{name} is {width}px wide on a 360px screen"
    assert problems == []


CONTRAST_SCRIPT = """
() => {
  const luminance = ([r, g, b]) => {
    const c = [r, g, b].map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const rgb = text => text.match(/[\\d.]+/g).slice(0, 4).map(Number);
  const background = element => {
    for (let e = element; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.textContent.trim()) continue;
    const element = node.parentElement;
    if (element.closest('svg, .visually-hidden, .skip')) continue;
    const style = getComputedStyle(element);
    if (style.visibility === 'hidden' || style.display === 'none') continue;
    const fg = luminance(rgb(style.color)), bg = luminance(background(element));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    if (ratio < 4.5) low.push(`${ratio.toFixed(2)}: ${node.textContent.trim().slice(0, 40)}`);
  }
  return low;
}
"""


@pytest.mark.parametrize("name", sorted(MAIN_PAGES))
def test_pages_are_accessible(browser: object, served: DaemonProcess, name: str) -> None:
    page, problems = open_page(browser, DESKTOP)
    page.goto(served.base + MAIN_PAGES[name])  # type: ignore[attr-defined]
    evaluate = page.evaluate  # type: ignore[attr-defined]
    assert evaluate("document.documentElement.lang") == "en"
    assert evaluate("document.querySelectorAll('h1').length") == 1
    for landmark in ("header", "nav", "main", "footer"):
        assert evaluate(f"document.querySelectorAll('{landmark}').length") == 1, landmark
    unnamed = evaluate(
        "[...document.querySelectorAll('svg[role=img]')]"
        ".filter(s => !s.getAttribute('aria-label') && !s.getAttribute('aria-labelledby')).length"
    )
    assert unnamed == 0
    assert evaluate("document.querySelectorAll('svg[role=img]').length") > 0 or name == "output"
    assert evaluate("document.querySelectorAll('th:not([scope])').length") == 0
    nameless_links = (
        "[...document.querySelectorAll('a')]"
        ".filter(a => !a.textContent.trim() && !a.getAttribute('aria-label')).length"
    )
    assert evaluate(nameless_links) == 0
    assert evaluate(CONTRAST_SCRIPT) == []
    assert problems == []


def test_sorting_and_navigation_work_with_javascript_off(
    browser: object, served: DaemonProcess
) -> None:
    page, problems = open_page(browser, DESKTOP, java_script_enabled=False)
    page.goto(served.base + "/")  # type: ignore[attr-defined]
    page.click("text=health (worst first)")  # type: ignore[attr-defined]
    assert page.url.endswith("/?sort=health")  # type: ignore[attr-defined]
    first = page.locator("tbody tr").first.get_attribute("id")  # type: ignore[attr-defined]
    assert first == "source-broken"
    page.click("#source-dying th a")  # type: ignore[attr-defined]
    assert page.url.endswith("/sources/dying")  # type: ignore[attr-defined]
    assert page.locator("h1").inner_text() == "Dying News"  # type: ignore[attr-defined]
    page.click("text=middle-east")  # type: ignore[attr-defined]
    assert page.url.endswith("/outputs/middle-east")  # type: ignore[attr-defined]
    assert problems == []


def test_screenshots_of_the_main_pages(browser: object, served: DaemonProcess) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page, problems = open_page(browser, viewport)
        for name, path in MAIN_PAGES.items():
            page.goto(served.base + path)  # type: ignore[attr-defined]
            target = ARTIFACTS / f"{name}-{label}.png"
            page.screenshot(path=str(target), full_page=True)  # type: ignore[attr-defined]
            assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert problems == []
