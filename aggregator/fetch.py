"""Every HTTP client behaviour: headers, validators, redirects, limits, per-host
concurrency, and the address guard.

One `Fetcher` serves a whole polling pass, so connections to a host are reused
across its sources. Local `path` sources are read here too, so the refresh
sequence treats both kinds of source alike.

The address guard decides where a connection may go *after* DNS, per connection,
like Miniflux's dialer: `_GuardedBackend` resolves the host itself, checks every
address against the source's `AddressPolicy`, and connects to an allowed address
by number, so a name that resolves differently between check and connect (DNS
rebinding) cannot slip through. Each policy has its own connection pool, so a
connection opened for a source allowed to reach private space is never reused by
one that is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import mimetypes
import os
import socket
import ssl
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from http.cookiejar import CookieJar
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Protocol

import brotli  # type: ignore[import-untyped]
import httpcore2
import httpx2

from aggregator.model import Validators
from aggregator.schedule import parse_retry_after

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/feed+json, application/json;q=0.8, application/xml;q=0.7, "
    "text/xml;q=0.7, */*;q=0.1"
)
# Exactly the codings `_decoder` can inflate under the size cap.
ACCEPT_ENCODING = "gzip, deflate, br"
# Response headers the scheduler and the status page read.
KEPT_HEADERS = (
    "age",
    "cache-control",
    "content-type",
    "date",
    "etag",
    "expires",
    "last-modified",
    "retry-after",
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECT_STATUSES = frozenset({301, 308})
# The most of an unwanted body (a 304 has none, a redirect's page is small) read only to
# keep its connection open for the host's next request (`_drain`), and the longest time
# spent reading it: a page that trickles must not hold up the redirect it comes with.
DRAIN_LIMIT = 64 * 1024
DRAIN_SECONDS = 0.5
# Largest piece a decoder may produce in one step: what bounds memory on a
# decompression bomb, whose every network chunk may inflate a thousandfold or more.
_PIECE = 64 * 1024
NO_VALIDATORS = Validators()

# Host names that only mean something inside the operator's own network: a source
# configured with one of these is "configured with a private address" (SPEC.md).
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".intranet")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) → the addresses to try, in order. The default asks the system resolver;
# tests map public-looking names to 127.0.0.1 with their own.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


class FetchError(Exception):
    """A source could not be fetched; `str()` is "SOURCE: URL: cause"."""

    def __init__(
        self,
        source: str,
        url: str,
        cause: str,
        *,
        status: int | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(f"{source}: {url}: {cause}")
        self.source = source
        self.url = url
        self.cause = cause
        self.status = status
        self.retry_after = retry_after


class HostHeld(FetchError):
    """Not fetched: the host answered 429/503 with Retry-After moments ago and that pause
    has `remaining` seconds to run. Not the source's fault, so not a failure."""

    def __init__(self, source: str, url: str, host: str, remaining: float) -> None:
        super().__init__(
            source,
            url,
            f"not fetched: {host} asked for a pause (Retry-After), {remaining:.0f}s to go",
        )
        self.host = host
        self.remaining = remaining


class AddressPolicy(enum.Enum):
    """Which addresses a source's connections may reach (SPEC.md, "Address guard")."""

    PUBLIC = "public"  # its URL names a public host: global unicast addresses only
    LOCAL = "local"  # configured with a private or loopback address: all but link-local
    ANY = "any"  # `allow_private = true`: everything, link-local (cloud metadata) included


def address_policy(url: str, *, allow_private: bool = False) -> AddressPolicy:
    """The policy for a source fetched from `url`, decided from its host alone."""
    if allow_private:
        return AddressPolicy.ANY
    try:
        host = httpx2.URL(url).host
    except httpx2.InvalidURL:
        return AddressPolicy.PUBLIC
    return _host_policy(host)


def _host_policy(host: str) -> AddressPolicy:
    host = host.lower().rstrip(".")
    address = _ip(host)
    if address is not None:
        return AddressPolicy.PUBLIC if _is_public(address) else AddressPolicy.LOCAL
    return AddressPolicy.LOCAL if _is_local_name(host) else AddressPolicy.PUBLIC


def _is_local_name(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "localhost" or "." not in host or host.endswith(_LOCAL_SUFFIXES)


def address_refusal(policy: AddressPolicy, address: str) -> str | None:
    """Why `policy` refuses a connection to `address`, or None when it may go there."""
    if policy is AddressPolicy.ANY:
        return None
    ip = _ip(address)
    if ip is None:
        if policy is AddressPolicy.PUBLIC and _is_local_name(address):
            return (
                f"{address} is a local host name, and a source whose URL names a public host "
                "may not reach loopback, private, link-local or reserved addresses "
                "(set allow_private on the source to allow it)"
            )
        return None
    kind = _address_kind(ip)
    if kind == "link-local":
        return f"{address} is a link-local address, refused unless the source sets allow_private"
    if policy is AddressPolicy.PUBLIC and kind != "public":
        article = "an" if kind[0] in "aeiou" else "a"
        return (
            f"{address} is {article} {kind} address, and a source whose URL names a public host "
            "may not reach loopback, private, link-local or reserved addresses "
            "(set allow_private on the source to allow it)"
        )
    return None


def _ip(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address dressed as IPv6 goes where the IPv4 address goes.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return embedded
    return address


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _address_kind(ip: IPAddress) -> str:
    if ip.is_link_local:
        return "link-local"
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if _is_public(ip):
        return "public"
    if ip.is_private:
        return "private"
    return "reserved"


def _is_public(ip: IPAddress) -> bool:
    return ip.is_global and not ip.is_multicast


class AddressRefused(httpcore2.ConnectError):
    """The address guard refused every address a host name resolved to.

    A ConnectError itself, since httpcore2's pool drops the cause of what it re-raises."""


class _GuardedBackend(httpcore2.AsyncNetworkBackend):
    """httpcore2's network backend with the address guard in front of every connect."""

    def __init__(self, policy: AddressPolicy, resolver: Resolver | None) -> None:
        self._policy = policy
        self._resolver = resolver or _system_resolver
        self._backend = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            addresses = [host] if _ip(host) is not None else await self._resolver(host, port)
        except OSError as error:
            raise httpcore2.ConnectError(str(error)) from error
        refusals = []
        allowed = []
        for address in addresses:
            reason = address_refusal(self._policy, address)
            if reason is None:
                allowed.append(address)
            else:
                refusals.append(reason)
        if not allowed:
            reason = refusals[0] if refusals else "no address"
            named = "" if host in addresses else f"{host} resolves only to refused addresses: "
            raise AddressRefused(f"address guard: {named}{reason}")
        for address in allowed[:-1]:
            # Connecting by number: what was checked is what is reached.
            with contextlib.suppress(httpcore2.ConnectError, httpcore2.ConnectTimeout):
                return await self._backend.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
        return await self._backend.connect_tcp(
            allowed[-1], port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def _drain(response: httpx2.Response) -> None:
    """Read what is left of a body nobody wants (a 304's is empty, a redirect's small):
    httpcore2 gives a connection back to the pool only once its response was read to the
    end, and a connection closed instead costs the host a new one, TLS handshake and all,
    for the next request. A body past DRAIN_LIMIT, or not read in DRAIN_SECONDS, is
    left, and its connection closed."""
    read = 0
    try:
        # Only this timeout's own expiry is caught: the fetch's deadline, around it,
        # still ends the fetch.
        async with asyncio.timeout(DRAIN_SECONDS):
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read > DRAIN_LIMIT:
                    return
    except TimeoutError:
        return


def _guarded_transport(
    policy: AddressPolicy,
    resolver: Resolver | None,
    limits: httpx2.Limits,
    ssl_context: ssl.SSLContext,
) -> httpx2.AsyncHTTPTransport:
    transport = httpx2.AsyncHTTPTransport(
        verify=ssl_context, http1=True, http2=False, limits=limits, trust_env=False
    )
    # httpx2 takes no network backend; its pool is replaced by an identical one that
    # has ours. (Checked by the address guard tests against real servers.)
    transport._pool = httpcore2.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        network_backend=_GuardedBackend(policy, resolver),
    )
    return transport


@dataclass(frozen=True)
class FetchResponse:
    source: str
    url: str  # as requested
    final_url: str  # after redirects
    permanent_url: str | None  # where the chain's leading 301/308 hops lead: use it from now on
    status: int  # 200, 304; 0 for local files
    not_modified: bool
    body: bytes  # decompressed; b"" on 304
    validators: Validators  # as received, byte for byte
    content_type: str | None
    headers: Mapping[str, str] = field(default_factory=dict)  # KEPT_HEADERS, lower-case keys
    elapsed: float = 0.0  # seconds


class _NoCookies(CookieJar):
    """A jar that keeps no cookie and sends none: a Set-Cookie is never sent back.

    Not a policy that refuses each cookie: the jar would still parse every response's
    headers for them, a tenth of the CPU of a conditional GET."""

    def extract_cookies(self, response: object, request: object) -> None:
        return None

    def add_cookie_header(self, request: object) -> None:
        return None


class _BodyTooLarge(Exception):
    pass


class Fetcher:
    """Fetches sources politely: at most `concurrency` requests at once, at most
    `per_host` to any one host name, each within `timeout` seconds from connect to
    last byte, bodies capped at `max_bytes` after decompression, every connection
    checked by the address guard (`resolver` replaces the system resolver)."""

    def __init__(
        self,
        *,
        user_agent: str,
        timeout: float,
        max_bytes: int,
        concurrency: int = 20,
        per_host: int = 2,
        max_redirects: int = 5,
        resolver: Resolver | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self._user_agent = user_agent
        self._concurrency = concurrency
        self._resolver = resolver
        self._per_host = per_host
        self._all = asyncio.Semaphore(concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        # Host -> monotonic time before which it is not asked again (its Retry-After).
        self._holds: dict[str, float] = {}
        self._clients: dict[AddressPolicy, httpx2.AsyncClient] = {}
        # One for every pool: loading the trusted roots costs 15 ms each time.
        self._ssl_context: ssl.SSLContext | None = None

    def _client(self, policy: AddressPolicy) -> httpx2.AsyncClient:
        """The client (and connection pool) of one address policy, made on first use."""
        client = self._clients.get(policy)
        if client is not None:
            return client
        timeout = self.timeout
        limits = httpx2.Limits(
            max_connections=self._concurrency,
            max_keepalive_connections=self._concurrency,
            keepalive_expiry=5.0,
        )
        if self._ssl_context is None:
            self._ssl_context = httpx2.create_ssl_context(trust_env=False)
        client = self._clients[policy] = httpx2.AsyncClient(
            headers={
                "User-Agent": self._user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            # The whole-fetch deadline in `fetch` is the real limit; these stop any
            # single phase from outliving it.
            timeout=httpx2.Timeout(connect=timeout, read=timeout, write=timeout, pool=timeout),
            transport=_guarded_transport(policy, self._resolver, limits, self._ssl_context),
            follow_redirects=False,
            cookies=_NoCookies(),
            # Behaviour comes from the configuration, not from proxy or netrc
            # variables in whatever environment the daemon was started from.
            trust_env=False,
        )
        return client

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def fetch(
        self,
        source: str,
        url: str,
        validators: Validators = NO_VALIDATORS,
        *,
        allow_private: bool = False,
    ) -> FetchResponse:
        """GET `url` for `source`; raises FetchError naming the source, URL and cause.

        `allow_private` is the source's setting of that name: without it a URL that
        names a public host reaches public addresses only, and no URL reaches
        link-local ones."""
        try:
            current = httpx2.URL(url)
        except httpx2.InvalidURL as error:
            raise FetchError(source, url, f"invalid URL: {error}") from None
        # address_policy(url), without parsing the URL a second time.
        policy = AddressPolicy.ANY if allow_private else _host_policy(current.host)
        async with self._all:
            try:
                return await self._follow(source, url, current, validators, policy)
            except (TimeoutError, httpx2.TimeoutException):
                raise FetchError(source, url, f"timed out after {self.timeout:g}s") from None
            except httpx2.HTTPError as error:
                raise FetchError(source, url, _transport_cause(error)) from error

    async def _follow(
        self,
        source: str,
        url: str,
        current: httpx2.URL,
        validators: Validators,
        policy: AddressPolicy,
    ) -> FetchResponse:
        if current.scheme not in ("http", "https"):
            raise FetchError(source, url, f"unsupported URL scheme {current.scheme!r}")
        client = self._client(policy)
        conditional = _conditional_headers(validators)
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        started = time.monotonic()
        permanent_url: str | None = None
        leading_permanent = True
        redirects = 0
        while True:
            refusal = address_refusal(policy, current.host)
            if refusal is not None:
                # An address written in the URL is refused before any connection.
                hop = "" if str(current) == url else f"redirect to {current} refused: "
                raise FetchError(source, url, f"{hop}address guard: {refusal}")
            body = b""
            target: httpx2.URL | None = None
            async with self._host_slot(current.host):
                # Checked inside the slot: a source that queued behind the request that got
                # the 429 must not be sent the moment that request is answered.
                self._check_hold(source, url, current.host)
                if deadline is None:
                    # The deadline runs from the first connect; queueing for a slot is not
                    # the source's fault.
                    deadline = loop.time() + self.timeout
                    started = time.monotonic()
                async with asyncio.timeout_at(deadline):
                    request = client.build_request("GET", current, headers=conditional)
                    response = await client.send(request, stream=True)
                    try:
                        status = response.status_code
                        if status in REDIRECT_STATUSES:
                            target = _redirect_target(source, url, current, response)
                            await _drain(response)
                        elif status in (200, 203):
                            body = await self._read_body(source, url, response)
                        elif status == 304:
                            await _drain(response)
                        else:
                            # Not drained: a failing source's next poll is far off, and
                            # a trickling error page must not turn its status into a timeout.
                            self._hold_host(current.host, response)
                            raise _status_error(source, url, current, response)
                    finally:
                        await response.aclose()
            if target is not None:
                if redirects == self.max_redirects:
                    raise FetchError(
                        source, url, f"too many redirects (more than {self.max_redirects})"
                    )
                redirects += 1
                leading_permanent = leading_permanent and status in PERMANENT_REDIRECT_STATUSES
                if leading_permanent:
                    permanent_url = str(target)
                current = target
                continue
            not_modified = status == 304
            return FetchResponse(
                source=source,
                url=url,
                final_url=str(current),
                permanent_url=permanent_url,
                status=status,
                not_modified=not_modified,
                body=b"" if not_modified else body,
                validators=_received_validators(response, validators if not_modified else None),
                content_type=response.headers.get("content-type"),
                headers=MappingProxyType(
                    {k: response.headers[k] for k in KEPT_HEADERS if k in response.headers}
                ),
                elapsed=time.monotonic() - started,
            )

    def _check_hold(self, source: str, url: str, host: str) -> None:
        until = self._holds.get(host)
        if until is None:
            return
        remaining = until - time.monotonic()
        if remaining > 0:
            raise HostHeld(source, url, host, remaining)
        del self._holds[host]

    def _hold_host(self, host: str, response: httpx2.Response) -> None:
        """Remember a 429/503's Retry-After for the host at once, in this process: the store
        learns it only when the poll is recorded, and other sources of the host may be
        claimed or queued already."""
        if response.status_code not in (429, 503):
            return
        delay = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
        if delay is not None and delay > timedelta(0):
            self._holds[host] = time.monotonic() + delay.total_seconds()

    def _host_slot(self, host: str) -> asyncio.Semaphore:
        slot = self._hosts.get(host)
        if slot is None:
            slot = self._hosts[host] = asyncio.Semaphore(self._per_host)
        return slot

    async def _read_body(self, source: str, url: str, response: httpx2.Response) -> bytes:
        """The decompressed body, abandoned as soon as it passes `max_bytes`."""
        too_large = FetchError(source, url, f"body larger than {self.max_bytes} bytes")
        codings = _content_codings(response)
        declared = response.headers.get("content-length", "")
        if not codings and declared.isdigit() and int(declared) > self.max_bytes:
            raise too_large
        try:
            decoders = [_decoder(coding) for coding in reversed(codings)]
        except ValueError as error:
            raise FetchError(source, url, str(error)) from None
        parts: list[bytes] = []
        size = 0
        try:
            async for raw in response.aiter_raw():
                for piece in _decode(decoders, raw):
                    size += len(piece)
                    if size > self.max_bytes:
                        raise _BodyTooLarge
                    parts.append(piece)
            for piece in _flush(decoders):
                size += len(piece)
                if size > self.max_bytes:
                    raise _BodyTooLarge
                parts.append(piece)
        except _BodyTooLarge:
            raise too_large from None
        except (zlib.error, brotli.error) as error:
            coding = ", ".join(codings)
            raise FetchError(source, url, f"cannot decode {coding} body: {error}") from None
        return b"".join(parts)

    async def read_file(self, source: str, path: Path) -> FetchResponse:
        """A local `path` source, read in a thread under the same size cap.

        Its validators come from the file's mtime and size, like a web server's."""
        started = time.monotonic()
        location = str(path)
        try:
            body, stat = await asyncio.to_thread(_read_capped, path, self.max_bytes)
        except FileNotFoundError:
            raise FetchError(source, location, "file not found") from None
        except _BodyTooLarge:
            raise FetchError(source, location, f"body larger than {self.max_bytes} bytes") from None
        except OSError as error:
            raise FetchError(source, location, f"cannot read file: {error.strerror}") from None
        return FetchResponse(
            source=source,
            url=location,
            final_url=location,
            permanent_url=None,
            status=0,
            not_modified=False,
            body=body,
            validators=Validators(
                etag=f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"',
                last_modified=formatdate(stat.st_mtime, usegmt=True),
            ),
            content_type=mimetypes.guess_type(path.name)[0],
            headers=MappingProxyType({}),
            elapsed=time.monotonic() - started,
        )


def _read_capped(path: Path, max_bytes: int) -> tuple[bytes, os.stat_result]:
    with path.open("rb") as file:
        stat = os.fstat(file.fileno())
        body = file.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise _BodyTooLarge
    return body, stat


def _conditional_headers(validators: Validators) -> list[tuple[bytes, bytes]]:
    headers = []
    if validators.etag:
        headers.append((b"If-None-Match", _header_bytes(validators.etag)))
    if validators.last_modified:
        headers.append((b"If-Modified-Since", _header_bytes(validators.last_modified)))
    return headers


def _header_bytes(value: str) -> bytes:
    # Validators are kept as Latin-1 text (one character per received byte), so this
    # gives back exactly the bytes the server sent.
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _raw_header(response: httpx2.Response, name: bytes) -> str | None:
    for key, value in response.headers.raw:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _received_validators(response: httpx2.Response, sent: Validators | None) -> Validators:
    """The response's validators; on a 304 (`sent` given) each one missing keeps the sent one."""
    etag = _raw_header(response, b"etag")
    last_modified = _raw_header(response, b"last-modified")
    if sent is None:
        return Validators(etag=etag, last_modified=last_modified)
    return Validators(
        etag=etag if etag is not None else sent.etag,
        last_modified=last_modified if last_modified is not None else sent.last_modified,
    )


def _redirect_target(
    source: str, url: str, current: httpx2.URL, response: httpx2.Response
) -> httpx2.URL:
    location = response.headers.get("location")
    if not location:
        raise FetchError(
            source, url, f"HTTP {response.status_code} redirect without a Location header"
        )
    try:
        target = current.join(location.strip())
    except httpx2.InvalidURL as error:
        raise FetchError(source, url, f"redirect to an invalid URL {location!r}: {error}") from None
    if target.scheme not in ("http", "https"):
        raise FetchError(source, url, f"redirect to a non-HTTP URL refused: {location}")
    return target


def _status_error(
    source: str, url: str, current: httpx2.URL, response: httpx2.Response
) -> FetchError:
    status = response.status_code
    reason = response.reason_phrase or httpx2.codes.get_reason_phrase(status)
    cause = f"HTTP {status} {_shown(reason)}".rstrip()
    retry_after = response.headers.get("retry-after")
    if retry_after:
        cause += f" (Retry-After: {_shown(retry_after)})"
    if str(current) != url:
        cause += f" at {current}"
    return FetchError(source, url, cause, status=status, retry_after=retry_after)


def _shown(text: str, limit: int = 100) -> str:
    """A server-chosen string as it may appear in an error message: short, one line."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _transport_cause(error: httpx2.HTTPError) -> str:
    """What went wrong below HTTP, in words an admin can act on."""
    reason: BaseException | None = error
    seen = 0
    while reason is not None and seen < 10:
        if isinstance(reason, AddressRefused):
            return str(reason)
        if isinstance(reason, ConnectionRefusedError):
            return "connection refused"
        if isinstance(reason, ConnectionResetError):
            return "connection reset by the server"
        if isinstance(reason, socket.gaierror):
            return f"cannot resolve host name: {reason.strerror}"
        if isinstance(reason, ssl.SSLCertVerificationError):
            return f"TLS certificate not accepted: {reason.verify_message}"
        if isinstance(reason, ssl.SSLError):
            return f"TLS error: {reason.reason or reason}"
        reason = reason.__cause__ or reason.__context__
        seen += 1
    detail = _shown(str(error) or type(error).__name__, 300)
    if isinstance(error, httpx2.ConnectError):
        return f"cannot connect: {detail}"
    if isinstance(error, httpx2.RemoteProtocolError):
        return f"bad HTTP response: {detail}"
    if isinstance(error, httpx2.ReadError):
        return f"connection lost while reading: {detail}"
    return detail


class _Decoder(Protocol):
    def decode(self, data: bytes) -> Iterator[bytes]: ...
    def flush(self) -> Iterator[bytes]: ...


def _content_codings(response: httpx2.Response) -> list[str]:
    header = response.headers.get("content-encoding", "")
    codings = [c.strip().lower() for c in header.split(",")]
    return [c for c in codings if c and c != "identity"]


def _decoder(coding: str) -> _Decoder:
    # httpx2's own decoders inflate each network chunk whole, which a bomb turns into
    # gigabytes; these yield bounded pieces so the size cap bites first.
    if coding in ("gzip", "x-gzip"):
        return _Inflater(zlib.MAX_WBITS | 16)
    if coding == "deflate":
        return _Inflater(None)
    if coding == "br":
        return _Unbrotli()
    raise ValueError(f"unsupported Content-Encoding {coding!r}")


def _decode(decoders: Sequence[_Decoder], data: bytes) -> Iterator[bytes]:
    if not decoders:
        if data:
            yield data
        return
    for piece in decoders[0].decode(data):
        yield from _decode(decoders[1:], piece)


def _flush(decoders: Sequence[_Decoder]) -> Iterator[bytes]:
    for index, decoder in enumerate(decoders):
        for piece in decoder.flush():
            yield from _decode(decoders[index + 1 :], piece)


class _Inflater:
    """gzip or deflate; `wbits` None picks zlib-wrapped or raw deflate from the first
    bytes, since servers send both as "deflate"."""

    def __init__(self, wbits: int | None) -> None:
        self._inflater = zlib.decompressobj(wbits) if wbits is not None else None
        self._head = b""

    def decode(self, data: bytes) -> Iterator[bytes]:
        if self._inflater is None:
            self._head += data
            if len(self._head) < 2:
                return
            first, second = self._head[0], self._head[1]
            wrapped = first & 0x0F == 8 and (first << 8 | second) % 31 == 0
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
            data, self._head = self._head, b""
        yield from self._drain(self._inflater, data)

    def flush(self) -> Iterator[bytes]:
        if self._inflater is None:
            if self._head:
                raise zlib.error("deflate body shorter than its header")
            return
        yield from self._drain(self._inflater, b"")

    @staticmethod
    def _drain(inflater: zlib._Decompress, data: bytes) -> Iterator[bytes]:
        while True:
            piece = inflater.decompress(data, _PIECE)
            if piece:
                yield piece
            data = inflater.unconsumed_tail
            if not data and len(piece) < _PIECE:
                return


class _Unbrotli:
    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()

    def decode(self, data: bytes) -> Iterator[bytes]:
        yield self._decompressor.process(data, output_buffer_limit=_PIECE)
        while not self._decompressor.can_accept_more_data():
            yield self._decompressor.process(b"", output_buffer_limit=_PIECE)

    def flush(self) -> Iterator[bytes]:
        return iter(())
