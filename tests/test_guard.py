"""The address guard: which addresses a source may reach, decided after DNS, per connection.

The rules (SPEC.md, "Polling promises"): a source whose URL names a public host
reaches only public addresses, through redirects and DNS alike; link-local space
(cloud metadata) is refused for every source unless it sets `allow_private`; a
source configured with a private or loopback address works as configured.

Real servers throughout: on 127.0.0.x for loopback sources, behind a resolver
hook that maps a public-looking name to 127.0.0.1, and, for redirects out of a
really public address, in a network namespace of its own (`netns_guard.py`).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultserver import FaultServer, redirect, respond
from feedserver import FeedServer, feed_server_fixture
from hostile import GOOD, RSS_TYPE

from aggregator.config import Config, parse_config
from aggregator.fetch import (
    AddressPolicy,
    Fetcher,
    FetchError,
    FetchResponse,
    address_policy,
    address_refusal,
)
from aggregator.poll import Poller, SourceResult
from aggregator.store import Store

TESTS = Path(__file__).resolve().parent
PUBLIC, LOCAL, ANY = AddressPolicy.PUBLIC, AddressPolicy.LOCAL, AddressPolicy.ANY


@pytest.mark.parametrize(
    "url, allow_private, policy",
    [
        ("https://www.marxist.com/index.rss", False, PUBLIC),
        ("http://93.184.216.34/feed", False, PUBLIC),
        ("http://[2606:4700::1111]/feed", False, PUBLIC),
        ("http://127.0.0.1:8080/feed", False, LOCAL),
        ("http://127.0.0.2/feed", False, LOCAL),
        ("http://10.1.2.3/feed", False, LOCAL),
        ("http://192.168.1.1/feed", False, LOCAL),
        ("http://[::1]:8080/feed", False, LOCAL),
        ("http://[fd00::1]/feed", False, LOCAL),
        ("http://localhost:8080/feed", False, LOCAL),
        ("http://feeds.localhost/feed", False, LOCAL),
        ("http://printer.local/feed", False, LOCAL),
        ("http://wiki.internal/feed", False, LOCAL),
        ("http://intranet/feed", False, LOCAL),
        ("http://169.254.169.254/latest", False, LOCAL),
        ("https://www.marxist.com/index.rss", True, ANY),
        ("http://169.254.169.254/latest", True, ANY),
    ],
)
def test_policy_follows_the_configured_host(
    url: str, allow_private: bool, policy: AddressPolicy
) -> None:
    assert address_policy(url, allow_private=allow_private) is policy


@pytest.mark.parametrize(
    "policy, address, refused",
    [
        (PUBLIC, "93.184.216.34", None),
        (PUBLIC, "2606:4700::1111", None),
        (PUBLIC, "127.0.0.1", "loopback"),
        (PUBLIC, "127.255.0.9", "loopback"),
        (PUBLIC, "::1", "loopback"),
        (PUBLIC, "::ffff:127.0.0.1", "loopback"),
        (PUBLIC, "64:ff9b::7f00:1", "loopback"),
        (PUBLIC, "2002:7f00:1::", "loopback"),
        (PUBLIC, "10.0.0.1", "private"),
        (PUBLIC, "172.16.5.4", "private"),
        (PUBLIC, "192.168.0.1", "private"),
        (PUBLIC, "fd12:3456::1", "private"),
        (PUBLIC, "100.64.0.1", "reserved"),
        (PUBLIC, "192.0.2.1", "private"),
        (PUBLIC, "240.0.0.1", "private"),
        (PUBLIC, "224.0.0.1", "reserved"),
        (PUBLIC, "0.0.0.0", "unspecified"),
        (PUBLIC, "169.254.169.254", "link-local"),
        (PUBLIC, "fe80::1", "link-local"),
        (PUBLIC, "localhost", "local host name"),
        (PUBLIC, "nas", "local host name"),
        (PUBLIC, "www.example.org", None),
        (LOCAL, "127.0.0.1", None),
        (LOCAL, "10.0.0.1", None),
        (LOCAL, "93.184.216.34", None),
        (LOCAL, "localhost", None),
        (LOCAL, "169.254.169.254", "link-local"),
        (LOCAL, "fe80::1%eth0", "link-local"),
        (LOCAL, "::ffff:169.254.169.254", "link-local"),
        (ANY, "169.254.169.254", None),
        (ANY, "127.0.0.1", None),
    ],
)
def test_refusal_names_the_kind_of_address(
    policy: AddressPolicy, address: str, refused: str | None
) -> None:
    reason = address_refusal(policy, address)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None
        assert reason.startswith(f"{address} is ") and refused in reason, reason


# -- against real servers ---------------------------------------------------------------

PUBLIC_NAME = "feeds.example.com"


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    yield from feed_server_fixture()


class CountingResolver:
    """Maps every name to one address and counts the look-ups (one per connection)."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.address = address
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return [self.address]


def fetch_each(
    requests: list[tuple[str, bool]], resolver: CountingResolver | None = None
) -> list[FetchResponse | FetchError]:
    """(url, allow_private) pairs fetched one after another through one Fetcher."""

    async def run() -> list[FetchResponse | FetchError]:
        results: list[FetchResponse | FetchError] = []
        async with Fetcher(
            user_agent="aggregator-test/1", timeout=2.0, max_bytes=10**6, resolver=resolver
        ) as fetcher:
            for url, allow_private in requests:
                try:
                    results.append(await fetcher.fetch("src", url, allow_private=allow_private))
                except FetchError as error:
                    results.append(error)
        return results

    return asyncio.run(run())


def test_source_on_another_loopback_address_works_as_configured() -> None:
    with FaultServer(host="127.0.0.2") as server:
        server.route("/feed", respond(200, GOOD, RSS_TYPE))
        (result,) = fetch_each([(server.url("/feed"), False)])
    assert isinstance(result, FetchResponse), result
    assert result.body == GOOD


def test_loopback_source_may_be_redirected_to_another_loopback_address() -> None:
    with FaultServer(host="127.0.0.3") as target, FaultServer(host="127.0.0.1") as origin:
        target.route("/feed", respond(200, GOOD, RSS_TYPE))
        origin.route("/feed", redirect(target.url("/feed")))
        (result,) = fetch_each([(origin.url("/feed"), False)])
    assert isinstance(result, FetchResponse), result
    assert result.final_url == target.url("/feed")


def test_localhost_source_works_as_configured(feed_server: FeedServer) -> None:
    feed_server.add("/feed", GOOD)
    url = feed_server.url("/feed").replace("127.0.0.1", "localhost")
    (result,) = fetch_each([(url, False)])
    assert isinstance(result, FetchResponse), result


@pytest.mark.parametrize("allow_private", [False, True])
def test_public_name_resolving_to_loopback_needs_allow_private(
    feed_server: FeedServer, allow_private: bool
) -> None:
    feed_server.add("/feed", GOOD)
    url = feed_server.url("/feed").replace("127.0.0.1", PUBLIC_NAME)
    resolver = CountingResolver()
    (result,) = fetch_each([(url, allow_private)], resolver)
    assert resolver.calls == [PUBLIC_NAME]
    if allow_private:
        assert isinstance(result, FetchResponse), result
        assert feed_server.hits("/feed") == 1
    else:
        assert isinstance(result, FetchError)
        assert str(result) == (
            f"src: {url}: address guard: {PUBLIC_NAME} resolves only to refused addresses: "
            "127.0.0.1 is a loopback address, and a source whose URL names a public host may "
            "not reach loopback, private, link-local or reserved addresses "
            "(set allow_private on the source to allow it)"
        )
        assert feed_server.hits("/feed") == 0


def test_allow_private_changed_by_a_reload_reaches_the_daemons_one_fetcher(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """The daemon keeps one Fetcher for its whole life and swaps only the Poller's
    configuration on SIGHUP: the source's setting must reach each fetch as it is now."""
    feed_server.add("/feed", GOOD)
    url = feed_server.url("/feed").replace("127.0.0.1", PUBLIC_NAME)

    def config(allow: bool) -> Config:
        text = (
            f'[aggregator]\ndatabase = "sqlite:///{tmp_path / "g.db"}"\n'
            f'[sources.a]\nurl = "{url}"\nallow_private = {str(allow).lower()}\n'
        )
        return parse_config(text, tmp_path / "aggregator.toml")

    async def run() -> list[SourceResult]:
        results = []
        async with Fetcher(
            user_agent="aggregator-test/1", timeout=2.0, max_bytes=10**6, resolver=resolver
        ) as fetcher:
            poller = Poller(config(False), store, fetcher)
            for allow in (False, True, False):
                poller.config = config(allow)  # what Daemon.reload does
                state = store.source_state("a")
                assert state is not None
                results.append(await poller.poll_one(state))
        return results

    resolver = CountingResolver()
    store = Store(config(False).settings.database)
    try:
        store.upgrade()
        store.sync_sources(config(False).sources.values())
        refused, allowed, refused_again = asyncio.run(run())
    finally:
        store.close()
    assert (refused.status, allowed.status, refused_again.status) == ("error", "ok", "error")
    for result in (refused, refused_again):
        assert result.error is not None and "(set allow_private on the source" in result.error
    assert feed_server.hits("/feed") == 1  # a kept-alive connection carried no permission


def test_connection_opened_for_an_allowed_source_is_not_reused_by_a_refused_one(
    feed_server: FeedServer,
) -> None:
    """The pools are per policy: a kept-alive connection carries no permission over."""
    feed_server.add("/feed", GOOD)
    url = feed_server.url("/feed").replace("127.0.0.1", PUBLIC_NAME)
    resolver = CountingResolver()
    allowed, again, refused = fetch_each([(url, True), (url, True), (url, False)], resolver)
    assert isinstance(allowed, FetchResponse) and isinstance(again, FetchResponse)
    assert isinstance(refused, FetchError) and "address guard" in str(refused)
    # The second allowed fetch reused the first one's connection; the refused one
    # looked the name up afresh, in its own pool, and was stopped there.
    assert resolver.calls == [PUBLIC_NAME, PUBLIC_NAME]
    assert feed_server.hits("/feed") == 2


@pytest.mark.parametrize("allow_private", [False, True])
def test_link_local_source_is_refused_unless_it_allows_private(allow_private: bool) -> None:
    url = "http://169.254.169.254/latest/meta-data/"
    (result,) = fetch_each([(url, allow_private)])
    assert isinstance(result, FetchError)
    if allow_private:
        # Allowed through: what happens next is up to the network (nothing listens here).
        assert "address guard" not in str(result)
    else:
        assert str(result) == (
            f"src: {url}: address guard: 169.254.169.254 is a link-local address, "
            "refused unless the source sets allow_private"
        )


def test_loopback_source_redirected_to_link_local_is_refused_before_connecting() -> None:
    with FaultServer() as server:
        server.route("/feed", redirect("http://[fe80::1]/metadata"))
        (result,) = fetch_each([(server.url("/feed"), False)])
    assert isinstance(result, FetchError)
    refusal = "redirect to http://[fe80::1]/metadata refused: address guard: fe80::1 is a link-"
    assert refusal in str(result)


def netns_results() -> dict[str, str]:
    unshare = shutil.which("unshare")
    if unshare is None or shutil.which("ip") is None:
        pytest.skip("needs unshare(1) and ip(8) to give a network namespace a public address")
    probe = subprocess.run(
        [unshare, "-n", "true"], capture_output=True, text=True, timeout=30, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {probe.stderr.strip()}")
    done = subprocess.run(
        [unshare, "-n", sys.executable, str(TESTS / "netns_guard.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results: dict[str, str] = json.loads(done.stdout)
    return results


REDIRECT_REFUSALS = {
    "redirect_to_loopback": "127.0.0.1 is a loopback address",
    "redirect_to_localhost_name": "localhost is a local host name",
    "redirect_to_private": "10.0.0.1 is a private address",
    "redirect_to_shared_space": "100.64.0.1 is a reserved address",
    "redirect_to_metadata": "169.254.169.254 is a link-local address",
    "redirect_to_ipv4_mapped_ipv6_loopback": "::ffff:127.0.0.1 is a loopback address",
    "redirect_to_ipv6_loopback": "::1 is a loopback address",
    "redirect_to_zero_address": "0.0.0.0 is an unspecified address",
    "rebinding_name_answers_loopback_on_the_second_connection": (
        "rebind.example.org resolves only to refused addresses: 127.0.0.1 is a loopback"
    ),
}


def test_public_source_may_not_be_redirected_or_rebound_into_private_space() -> None:
    results = netns_results()
    assert results.pop("public_source_is_fetched").startswith("ok ")
    assert results.pop("redirect_to_other_public_host").startswith("ok http://cdn.example.net")
    assert results.pop("redirect_to_loopback_with_allow_private").startswith("ok ")
    # Only the allow_private case ever reached the internal route.
    assert results.pop("internal_hits") == "1"
    assert set(results) == set(REDIRECT_REFUSALS)
    for case, reason in REDIRECT_REFUSALS.items():
        assert results[case].startswith(f"{case}: http://feeds.example.com:"), results[case]
        assert f"address guard: {reason}" in results[case], results[case]
