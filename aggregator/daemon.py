"""`aggregator run`: the scheduler and the HTTP server in one event loop.

One APScheduler job ticks every few seconds and polls whichever sources the
database says are due; there is no job per source, so timers survive restarts
and reloads. SIGTERM/SIGINT stop gracefully, SIGHUP reloads the configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Iterator
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.exc import SQLAlchemyError

from aggregator.config import Config, ConfigError, load_config
from aggregator.outputs import output_feeds
from aggregator.poll import PollSummary, parser_pool, run_pass
from aggregator.publish import build_all
from aggregator.store import Store, describe_error
from aggregator.web import WebState, create_app

log = logging.getLogger("aggregator.daemon")

# How often the scheduler looks for due sources; polls still honour each source's interval.
TICK = timedelta(seconds=15)
# In-flight polls get this long to finish on shutdown before they are abandoned
# (abandoned polls roll back: validators and entries are written in one transaction).
SHUTDOWN_GRACE = 20.0


class Daemon:
    def __init__(self, config: Config, config_path: Path, *, tick: timedelta = TICK) -> None:
        self.config = config
        self.config_path = config_path
        self.tick = tick
        self.store = Store(config.settings.database)
        self.web = WebState(config=config, store=self.store, scheduler_alive=self.scheduler_alive)
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.executor: Executor | None = None
        self.last_tick = time.monotonic()
        self.current_pass: asyncio.Task[PollSummary] | None = None
        self.stopping = asyncio.Event()
        self.server: uvicorn.Server | None = None

    def scheduler_alive(self) -> bool:
        """False when no tick has started for three tick periods: the scheduler is stuck."""
        if not self.scheduler.running:
            return False
        return time.monotonic() - self.last_tick < 3 * self.tick.total_seconds() + 5

    async def poll_due(self) -> None:
        self.last_tick = time.monotonic()
        if self.stopping.is_set() or (self.current_pass and not self.current_pass.done()):
            return
        self.current_pass = asyncio.create_task(
            run_pass(self.config, self.store, executor=self.executor)
        )
        try:
            summary = await self.current_pass
        except asyncio.CancelledError:
            return
        except SQLAlchemyError as error:
            log.error(
                "polling pass failed, database unavailable: %s; retrying on the next tick",
                describe_error(error),
            )
            return
        except Exception:
            log.exception("polling pass failed; retrying on the next tick")
            return
        if summary.results:
            counts = summary.counts
            log.info(
                "pass done: %d sources, ok=%d not_modified=%d unchanged=%d failed=%d "
                "new=%d updated=%d duplicates=%d",
                len(summary.results),
                summary.count("ok"),
                summary.count("not_modified"),
                summary.count("unchanged"),
                len(summary.failed),
                counts.new,
                counts.updated,
                counts.duplicates,
            )
            if counts.new or counts.updated:
                await self.write_static()

    async def write_static(self) -> None:
        out_dir = self.config.settings.output_dir
        if out_dir is None:
            return
        try:
            changed = await asyncio.to_thread(
                build_all,
                self.store,
                output_feeds(self.config),
                out_dir,
                base_url=self.config.settings.base_url,
                now=datetime.now(UTC),
            )
            if changed:
                log.info("wrote %d static output files to %s", len(changed), out_dir)
        except OSError as error:
            log.error("cannot write static outputs to %s: %s", out_dir, error)

    def reload(self) -> None:
        try:
            config = load_config(self.config_path)
        except ConfigError as error:
            log.error("reload refused, keeping the running configuration:\n%s", error)
            return
        if config.settings.database != self.config.settings.database:
            log.warning("database changed in %s: restart the daemon to use it", self.config_path)
        self.store.sync_sources(config.sources.values())
        self.config = config
        self.web.reconfigure(config)
        log.info(
            "configuration reloaded from %s: %d sources", self.config_path, len(config.sources)
        )

    def request_stop(self, signame: str) -> None:
        if self.stopping.is_set():
            return
        log.info("%s received: stopping", signame)
        self.stopping.set()
        if self.server is not None:
            self.server.should_exit = True

    async def serve(self) -> None:
        self.store.upgrade()
        self.store.sync_sources(self.config.sources.values())
        self.executor = parser_pool(len(self.config.sources))
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop, signal.Signals(signum).name)
        loop.add_signal_handler(signal.SIGHUP, self.reload)

        settings = self.config.settings
        self.scheduler.add_job(
            self.poll_due,
            "interval",
            seconds=self.tick.total_seconds(),
            id="poll-due",
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
        )
        self.scheduler.start()
        uv_config = uvicorn.Config(
            create_app(self.web),
            host=settings.listen_host,
            port=settings.listen_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self.server = _Server(uv_config)
        log.info(
            "serving http://%s:%d/ with %d sources, %d output feeds",
            settings.listen_host,
            settings.listen_port,
            len(self.config.sources),
            len(self.web.feeds),
        )
        server_task = asyncio.create_task(self.server.serve())
        stop_task = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({server_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        await self.shutdown(server_task)

    async def shutdown(self, server_task: asyncio.Task[None]) -> None:
        self.stopping.set()
        self.scheduler.shutdown(wait=False)
        if self.current_pass is not None and not self.current_pass.done():
            log.info("waiting up to %.0fs for in-flight polls", SHUTDOWN_GRACE)
            try:
                await asyncio.wait_for(asyncio.shield(self.current_pass), SHUTDOWN_GRACE)
            except (TimeoutError, asyncio.CancelledError):
                self.current_pass.cancel()
                log.warning("in-flight polls abandoned; their transactions roll back")
            except Exception:
                log.exception("in-flight polling pass failed during shutdown")
        if self.server is not None:
            self.server.should_exit = True
        await server_task
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
        self.store.close()
        log.info("stopped")


class _Server(uvicorn.Server):
    """uvicorn, minus its signal handling: it would take SIGINT/SIGTERM for itself and
    re-raise them once it stops, while the daemon needs them (and SIGHUP) for its own
    graceful stop and reload."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def run(config_path: Path) -> int:
    """Run the daemon until SIGTERM/SIGINT; returns the process exit status."""
    config = load_config(config_path)
    daemon = Daemon(config, config_path)
    asyncio.run(daemon.serve())
    return 0
