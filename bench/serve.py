"""Serve the benchmark corpus over HTTP with the validators a well-run publisher sends.

    python bench/serve.py DIR [--hosts 300] [--port 8765] [--gzip]

Every file of DIR/feeds is held in memory and served at /feeds/NAME with a strong ETag (a hash
of the body) and Last-Modified (the file's mtime); If-None-Match and If-Modified-Since get a
304. Prints one line starting with "ready" once the sockets listen, so a caller can wait for it;
SIGHUP reloads the files and prints "reloaded". With --hosts N it listens on N loopback
addresses (127.0.1.1, 127.0.1.2, …), one port each.
A bare ASGI callable under uvicorn keeps the server from being the benchmark's bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any

import uvicorn
from gencorpus import host_address

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class Document:
    body: bytes
    gzipped: bytes | None
    content_type: bytes
    etag: bytes
    last_modified: bytes
    mtime: int


def content_type(name: str, body: bytes) -> str:
    if name.endswith(".json"):
        return "application/feed+json"
    head = body[:500]
    if b"<feed" in head:
        return "application/atom+xml; charset=utf-8"
    return "application/rss+xml; charset=utf-8"


def load(feeds_dir: Path, compress: bool) -> dict[str, Document]:
    documents = {}
    for path in sorted(feeds_dir.iterdir()):
        body = path.read_bytes()
        mtime = int(path.stat().st_mtime)
        documents[f"/feeds/{path.name}"] = Document(
            body=body,
            gzipped=gzip.compress(body, compresslevel=6) if compress else None,
            content_type=content_type(path.name, body).encode(),
            etag=b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"',
            last_modified=formatdate(mtime, usegmt=True).encode(),
            mtime=mtime,
        )
    return documents


def not_modified(document: Document, headers: dict[bytes, bytes]) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present; else If-Modified-Since."""
    if_none_match = headers.get(b"if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix(b"W/") for tag in if_none_match.split(b",")}
        return b"*" in tags or document.etag in tags
    if_modified_since = headers.get(b"if-modified-since")
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since.decode("latin-1"))
    except (TypeError, ValueError):
        return False
    return document.mtime <= since.timestamp()


def make_app(documents: dict[str, Document]) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        document = documents.get(scope["path"])
        if document is None or scope["method"] not in ("GET", "HEAD"):
            status = 404 if document is None else 405
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        request_headers = dict(scope["headers"])
        headers = [
            (b"etag", document.etag),
            (b"last-modified", document.last_modified),
            (b"cache-control", b"no-cache"),
        ]
        if not_modified(document, request_headers):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        body = document.body
        accept = request_headers.get(b"accept-encoding", b"")
        if document.gzipped is not None and b"gzip" in accept:
            body = document.gzipped
            headers += [(b"content-encoding", b"gzip"), (b"vary", b"accept-encoding")]
        headers += [
            (b"content-type", document.content_type),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if scope["method"] == "HEAD":
            body = b""
        await send({"type": "http.response.body", "body": body})

    return app


def listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="a corpus written by bench/gencorpus.py")
    parser.add_argument("--host", default=None, help="one address to listen on")
    parser.add_argument(
        "--hosts", type=int, default=1, help="listen on this many loopback addresses (127.0.1.1…)"
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--gzip", action="store_true", help="gzip bodies for clients that ask")
    args = parser.parse_args()

    documents = load(args.dir / "feeds", args.gzip)
    # Bind before announcing: connections made after the ready line queue in the backlog
    # until uvicorn accepts them, so the caller never races the server's start.
    hosts = [args.host] if args.host else [host_address(i) for i in range(args.hosts)]
    sockets = [listen(host, args.port) for host in hosts]
    config = uvicorn.Config(
        make_app(documents),
        log_level="warning",
        access_log=False,
        lifespan="off",
        backlog=2048,
        timeout_keep_alive=30,
    )

    def reload() -> None:
        # SIGHUP: the corpus changed on disk; swap the documents in place, then say so.
        documents.clear()
        documents.update(load(args.dir / "feeds", args.gzip))
        print(f"reloaded: {len(documents)} feeds", flush=True)

    async def serve() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
        print(
            f"ready: {len(documents)} feeds on {len(hosts)} addresses "
            f"({hosts[0]}…{hosts[-1]}) port {args.port}",
            flush=True,
        )
        await uvicorn.Server(config).serve(sockets=sockets)

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
