"""The address guard against a source whose host really is public, in a network
namespace of its own.

A public host name mapped to 127.0.0.1 is refused at once, so the refusal of a
*redirect* out of public space needs a public host that answers. Run as
`unshare -n python tests/netns_guard.py`: in the fresh namespace this gives the
loopback device the global address 11.22.33.44, serves a fault server on it, and
fetches through the real Fetcher with a resolver that maps the test names there.
Nothing outside the namespace is touched. Prints one JSON object: case → outcome,
plus how often the internal routes were asked for.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from faultserver import FaultServer, redirect, respond
from hostile import GOOD, INTERNAL_SECRET, RSS_TYPE

from aggregator.fetch import Fetcher, FetchError

PUBLIC_ADDRESS = "11.22.33.44"
NAMES = {"feeds.example.com": PUBLIC_ADDRESS, "cdn.example.net": PUBLIC_ADDRESS}

# (case, path on feeds.example.com, redirect target or None, allow_private)
CASES = [
    ("public_source_is_fetched", "/feed", None, False),
    ("redirect_to_loopback", "/to-loopback", "http://127.0.0.1:PORT/internal/feed", False),
    ("redirect_to_localhost_name", "/to-localhost", "http://localhost:PORT/internal/feed", False),
    ("redirect_to_private", "/to-private", "http://10.0.0.1/internal/feed", False),
    ("redirect_to_shared_space", "/to-cgnat", "http://100.64.0.1/internal/feed", False),
    ("redirect_to_metadata", "/to-metadata", "http://169.254.169.254/latest/meta-data/", False),
    (
        "redirect_to_ipv4_mapped_ipv6_loopback",
        "/to-mapped",
        "http://[::ffff:127.0.0.1]:PORT/internal/feed",
        False,
    ),
    ("redirect_to_ipv6_loopback", "/to-v6", "http://[::1]:PORT/internal/feed", False),
    ("redirect_to_zero_address", "/to-zero", "http://0.0.0.0:PORT/internal/feed", False),
    ("redirect_to_other_public_host", "/to-cdn", "http://cdn.example.net:PORT/feed", False),
    (
        "rebinding_name_answers_loopback_on_the_second_connection",
        "/to-rebind",
        "http://rebind.example.org:PORT/internal/feed",
        False,
    ),
    (
        "redirect_to_loopback_with_allow_private",
        "/to-loopback-allowed",
        "http://127.0.0.1:PORT/internal/feed",
        True,
    ),
]


def up() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{PUBLIC_ADDRESS}/32", "dev", "lo"], check=True)


async def fetch_all(server: FaultServer) -> dict[str, str]:
    answers: dict[str, int] = {}

    async def resolver(host: str, port: int) -> list[str]:
        if host == "rebind.example.org":
            # Public on the first look, loopback on every look after: DNS rebinding.
            answers[host] = answers.get(host, 0) + 1
            return [PUBLIC_ADDRESS] if answers[host] == 1 else ["127.0.0.1"]
        if host in NAMES:
            return [NAMES[host]]
        raise OSError(f"no address for {host} in this test")

    results: dict[str, str] = {}
    async with Fetcher(
        user_agent="aggregator-netns/1", timeout=2.0, max_bytes=1_000_000, resolver=resolver
    ) as fetcher:
        for name, path, _target, allow_private in CASES:
            url = server.url(path, host="feeds.example.com")
            if name.startswith("rebinding"):
                # First connection: the name is checked and public; the redirect to the
                # same name opens a second connection, and the name now says loopback.
                await fetcher.fetch("warm", server.url("/feed", host="rebind.example.org"))
            try:
                response = await fetcher.fetch(name, url, allow_private=allow_private)
                results[name] = f"ok {response.final_url} {len(response.body)} bytes"
            except FetchError as error:
                results[name] = str(error)
    return results


def main() -> None:
    up()
    with FaultServer(host="0.0.0.0") as server:
        server.route("/feed", respond(200, GOOD, RSS_TYPE))
        server.route("/internal/feed", respond(200, GOOD + INTERNAL_SECRET.encode(), RSS_TYPE))
        for _name, path, target, _allow in CASES:
            if target is not None:
                server.route(path, redirect(target.replace("PORT", str(server.port))))
        results = asyncio.run(fetch_all(server))
        results["internal_hits"] = str(server.hits("/internal/feed"))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
