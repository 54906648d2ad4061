"""Every HTTP client behaviour: headers, validators, redirects, limits, per-host concurrency.

One `Fetcher` owns one `httpx.AsyncClient` for a whole polling pass, so connections
to a host are reused across its sources. Local `path` sources are read here too, so
the refresh sequence treats both kinds of source alike.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import socket
import ssl
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Protocol

import brotli  # type: ignore[import-untyped]
import httpx

from aggregator.model import Validators

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
# Largest piece a decoder may produce in one step: what bounds memory on a
# decompression bomb, whose every network chunk may inflate a thousandfold or more.
_PIECE = 64 * 1024
NO_VALIDATORS = Validators()


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


class _BodyTooLarge(Exception):
    pass


class Fetcher:
    """Fetches sources politely: at most `concurrency` requests at once, at most
    `per_host` to any one host name, each within `timeout` seconds from connect to
    last byte, bodies capped at `max_bytes` after decompression."""

    def __init__(
        self,
        *,
        user_agent: str,
        timeout: float,
        max_bytes: int,
        concurrency: int = 20,
        per_host: int = 2,
        max_redirects: int = 5,
    ) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self._per_host = per_host
        self._all = asyncio.Semaphore(concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._client = httpx.AsyncClient(
            http1=True,
            http2=False,
            headers={
                "User-Agent": user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            # The whole-fetch deadline in `fetch` is the real limit; these stop any
            # single phase from outliving it.
            timeout=httpx.Timeout(connect=timeout, read=timeout, write=timeout, pool=timeout),
            limits=httpx.Limits(
                max_connections=concurrency,
                max_keepalive_connections=concurrency,
                keepalive_expiry=5.0,
            ),
            follow_redirects=False,
            # A jar whose policy accepts no domain: a Set-Cookie is never sent back.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            # Behaviour comes from the configuration, not from proxy or netrc
            # variables in whatever environment the daemon was started from.
            trust_env=False,
        )

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
        await self._client.aclose()

    async def fetch(
        self, source: str, url: str, validators: Validators = NO_VALIDATORS
    ) -> FetchResponse:
        async with self._all:
            try:
                return await self._follow(source, url, validators)
            except (TimeoutError, httpx.TimeoutException):
                raise FetchError(source, url, f"timed out after {self.timeout:g}s") from None
            except httpx.HTTPError as error:
                raise FetchError(source, url, _transport_cause(error)) from error
            except httpx.InvalidURL as error:
                raise FetchError(source, url, f"invalid URL: {error}") from None

    async def _follow(self, source: str, url: str, validators: Validators) -> FetchResponse:
        current = httpx.URL(url)
        if current.scheme not in ("http", "https"):
            raise FetchError(source, url, f"unsupported URL scheme {current.scheme!r}")
        conditional = _conditional_headers(validators)
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        started = time.monotonic()
        permanent_url: str | None = None
        leading_permanent = True
        redirects = 0
        while True:
            body = b""
            target: httpx.URL | None = None
            async with self._host_slot(current.host):
                if deadline is None:
                    # The deadline runs from the first connect; queueing for a slot is not
                    # the source's fault.
                    deadline = loop.time() + self.timeout
                    started = time.monotonic()
                async with asyncio.timeout_at(deadline):
                    request = self._client.build_request("GET", current, headers=conditional)
                    response = await self._client.send(request, stream=True)
                    try:
                        status = response.status_code
                        if status in REDIRECT_STATUSES:
                            target = _redirect_target(source, url, current, response)
                        elif status in (200, 203):
                            body = await self._read_body(source, url, response)
                        elif status != 304:
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

    def _host_slot(self, host: str) -> asyncio.Semaphore:
        slot = self._hosts.get(host)
        if slot is None:
            slot = self._hosts[host] = asyncio.Semaphore(self._per_host)
        return slot

    async def _read_body(self, source: str, url: str, response: httpx.Response) -> bytes:
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


def _raw_header(response: httpx.Response, name: bytes) -> str | None:
    for key, value in response.headers.raw:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _received_validators(response: httpx.Response, sent: Validators | None) -> Validators:
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
    source: str, url: str, current: httpx.URL, response: httpx.Response
) -> httpx.URL:
    location = response.headers.get("location")
    if not location:
        raise FetchError(
            source, url, f"HTTP {response.status_code} redirect without a Location header"
        )
    try:
        target = current.join(location.strip())
    except httpx.InvalidURL as error:
        raise FetchError(source, url, f"redirect to an invalid URL {location!r}: {error}") from None
    if target.scheme not in ("http", "https"):
        raise FetchError(source, url, f"redirect to a non-HTTP URL refused: {location}")
    return target


def _status_error(
    source: str, url: str, current: httpx.URL, response: httpx.Response
) -> FetchError:
    status = response.status_code
    reason = response.reason_phrase or httpx.codes.get_reason_phrase(status)
    cause = f"HTTP {status} {reason}".rstrip()
    retry_after = response.headers.get("retry-after")
    if retry_after:
        cause += f" (Retry-After: {retry_after})"
    if str(current) != url:
        cause += f" at {current}"
    return FetchError(source, url, cause, status=status, retry_after=retry_after)


def _transport_cause(error: httpx.HTTPError) -> str:
    """What went wrong below HTTP, in words an admin can act on."""
    reason: BaseException | None = error
    seen = 0
    while reason is not None and seen < 10:
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
    detail = str(error) or type(error).__name__
    if isinstance(error, httpx.ConnectError):
        return f"cannot connect: {detail}"
    if isinstance(error, httpx.RemoteProtocolError):
        return f"bad HTTP response: {detail}"
    if isinstance(error, httpx.ReadError):
        return f"connection lost while reading: {detail}"
    return detail


class _Decoder(Protocol):
    def decode(self, data: bytes) -> Iterator[bytes]: ...
    def flush(self) -> Iterator[bytes]: ...


def _content_codings(response: httpx.Response) -> list[str]:
    header = response.headers.get("content-encoding", "")
    codings = [c.strip().lower() for c in header.split(",")]
    return [c for c in codings if c and c != "identity"]


def _decoder(coding: str) -> _Decoder:
    # httpx's own decoders inflate each network chunk whole, which a bomb turns into
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
