"""`aggregator run`: the scheduler, the pollers and the HTTP server in one event loop.

Roles (`run --role`): `all` (the default) polls and serves; `poller` polls and serves
only /healthz and /metrics; `web` polls nothing and serves everything. Several
processes of any roles may share one PostgreSQL database. Web processes see other
processes' polls through the store's data version, a row every write transaction
bumps (web.VERSION_RECHECK). Jobs that must run in one process at a time (the daily
retention, the spread of first polls at start) take `Store.once_every`, a PostgreSQL
advisory lock plus the time of the last run. A poll that runs long has its lease
renewed by each tick, so no other poller takes a source this process still polls.

One APScheduler job ticks every `tick` seconds. Each tick claims from the database
as many due sources as there are free polling slots (`Store.claim_due`: a lease,
and `FOR UPDATE SKIP LOCKED` on PostgreSQL) and starts a poll for each. When a claim
got every source it asked for, more may be due, and the polls that end claim again
as soon as half the slots are free, without waiting for the tick. There is
no job per source, so timers live in the database and survive restarts and
reloads. Sources due at once (new ones, or all of them after downtime) are first
spread over a short window, each at its own fixed offset. Before claiming, a tick
gives back the claims that polls ending in a database error had to keep, and
takes back those of pollers that died holding them (`owners.is_dead`), so after
an outage, a full disk or a kill -9 no source waits for its lease to run out.

Signals: SIGTERM/SIGINT stop claiming, give in-flight polls `grace` seconds to
finish (the rest are cancelled: a poll writes in one transaction, so a cancelled
one leaves nothing behind), release this process's claims and exit 0. SIGHUP
reloads the configuration; a bad file is logged line by line and the running
configuration kept. Under systemd (Type=notify) it reports READY, RELOADING,
STOPPING and STATUS, and sends WATCHDOG only while the scheduler is healthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.exc import SQLAlchemyError

from aggregator.config import Config, ConfigError, Settings, load_config
from aggregator.fetch import Fetcher
from aggregator.metrics import Metrics
from aggregator.model import SourceState
from aggregator.outputs import output_feeds
from aggregator.owners import new_owner, retire
from aggregator.pidfile import PidFile, PidFileError
from aggregator.poll import (
    Poller,
    SourceResult,
    fetch_places,
    lease_for,
    new_fetcher,
    parser_pool,
    policy_for,
    release_dead_claims,
)
from aggregator.publish import build_all
from aggregator.schedule import first_poll, spread_window
from aggregator.store import PruneReport, Store, describe_error, display_url
from aggregator.systemd import notify, watchdog_period
from aggregator.web import WebState, create_app

log = logging.getLogger("aggregator.daemon")

# How often the scheduler looks for due sources; each source still keeps its own
# interval. Tests shorten it with $AGGREGATOR_TICK (seconds).
TICK = timedelta(seconds=15)
# In-flight polls get this long to finish on shutdown before they are cancelled;
# systemd's TimeoutStopSec (30 s in the shipped unit) must be longer.
# Tests shorten it with $AGGREGATOR_SHUTDOWN_GRACE (seconds).
SHUTDOWN_GRACE = 20.0
# Failing ticks are logged at most this often, so a database outage is one line a minute.
TICK_ERROR_LOG_EVERY = 60.0
# Retention runs daily, the first time this long after the start: the first polls come
# first, and a daemon restarted in a loop does not prune each time.
# Tests shorten the delay with $AGGREGATOR_PRUNE_AFTER (seconds).
PRUNE_EVERY = timedelta(days=1)
PRUNE_AFTER = 300.0
# Every poller asks this often whether the daily prune is due: the first to ask after a
# day since the last prune (by any process) runs it, so one that died is replaced
# within the hour. A few seconds short of a day, so the same process keeps its slot.
PRUNE_CHECK = timedelta(hours=1)
PRUNE_SLACK = timedelta(minutes=5)
ROLES = ("all", "poller", "web")


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        log.warning("ignoring $%s=%r: not a number of seconds", name, raw)
        return default
    return value if value > 0 else default


class Daemon:
    def __init__(
        self,
        config: Config,
        config_path: Path,
        *,
        tick: float | None = None,
        grace: float | None = None,
        role: str = "all",
    ) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")
        self.role = role
        self.polls = role in ("all", "poller")
        self.serves = role in ("all", "web")
        self.config = config
        self.config_path = config_path
        self.tick = tick or _env_seconds("AGGREGATOR_TICK", TICK.total_seconds())
        self.grace = grace or _env_seconds("AGGREGATOR_SHUTDOWN_GRACE", SHUTDOWN_GRACE)
        # Tests and benchmarks shorten leases with $AGGREGATOR_LEASE (seconds); otherwise
        # poll.lease_for sizes each claim's lease from the timeout.
        lease = _env_seconds("AGGREGATOR_LEASE", 0.0)
        self.lease_override = timedelta(seconds=lease) if lease else None
        # In-flight sources and when their lease ends, for the renewal on each tick.
        self.leases: dict[str, datetime] = {}
        # Claims name their owner: `run:…` for a daemon of every role, `poller:…` for one
        # that only polls (a web process claims nothing).
        self.owner = new_owner("run" if role == "all" else role)
        self.store = Store(config.settings.database)
        self.metrics = Metrics()
        self.web = WebState(
            config=config,
            store=self.store,
            scheduler_alive=self.scheduler_alive,
            metrics=self.metrics,
        )
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.executor: Executor | None = None
        self.fetcher: Fetcher | None = None
        self.poller: Poller | None = None
        self.in_flight: set[asyncio.Task[SourceResult]] = set()
        # Sources of in-flight polls that only wait for the writer now: they fetch and
        # parse no more, so they leave their place to another claim.
        self.writing: set[str] = set()
        self.last_claim_ok = time.monotonic()
        self.stopping = asyncio.Event()
        self.server: uvicorn.Server | None = None
        self._ticking = False
        # The last claim got all it asked for: more sources may be due (`_claim_more`).
        self._more_due = False
        self._tick_started = 0.0
        self._stall_logged = False
        self._tick_errors = 0
        self._tick_error_logged = 0.0
        self._static_version: int | None = None
        self._static_dirty = True
        self._background: set[asyncio.Task[Any]] = set()
        self.pid_file = PidFile(config.settings.pid_file)

    # -- health ----------------------------------------------------------------

    @property
    def stall_after(self) -> float:
        return 3 * self.tick + 5

    def scheduler_alive(self) -> bool:
        """False once no tick has claimed successfully for three tick periods (and then
        some): the scheduler is stuck, or the database refuses its claims. A web process
        claims nothing: its ticks read the data version, and count the same way."""
        if not self.scheduler.running or self.stopping.is_set():
            return False
        return time.monotonic() - self.last_claim_ok < self.stall_after

    @property
    def capacity(self) -> int:
        return fetch_places(self.config)

    def lease(self, batch: int) -> timedelta:
        return self.lease_override or lease_for(self.config, batch)

    # -- the tick ------------------------------------------------------------

    async def on_tick(self) -> None:
        """The APScheduler job (a coroutine, so it runs on the event loop): it returns at
        once, and a slow claim never makes APScheduler skip or stack ticks."""
        if self.stopping.is_set():
            return
        if self._ticking:
            # The same measure as scheduler_alive, so the log and /healthz agree.
            if time.monotonic() - self.last_claim_ok >= self.stall_after and not self._stall_logged:
                self._stall_logged = True
                log.warning(
                    "scheduler stalled: a claim has waited %.0fs on the database %s",
                    time.monotonic() - self._tick_started,
                    display_url(self.config.settings.database),
                )
            return
        self._ticking = True
        self._tick_started = time.monotonic()
        self._spawn(self._tick())

    async def _tick(self) -> None:
        try:
            if self.polls:
                await self._claim()
            else:
                # A web process: the version read is its sign of life (and of the
                # database's), and tells write_static whether the outputs changed.
                version = await asyncio.to_thread(self.store.data_version)
                if version != self._static_version:
                    self._static_dirty = True
            self.last_claim_ok = time.monotonic()
            self.metrics.last_tick.set(time.time())
            if self._tick_errors or self._stall_logged:
                log.info("scheduler claims again (after %d failed ticks)", self._tick_errors)
                self._tick_errors = 0
                self._stall_logged = False
            if self._static_dirty:
                await self.write_static()
        except Exception as error:  # the database is down or locked: retry next tick
            self._tick_errors += 1
            if time.monotonic() - self._tick_error_logged >= TICK_ERROR_LOG_EVERY:
                self._tick_error_logged = time.monotonic()
                cause = (
                    describe_error(error)
                    if isinstance(error, SQLAlchemyError)
                    else f"{type(error).__name__}: {error}"
                )
                log.error(
                    "scheduler cannot claim due sources from %s (%d failed ticks): %s",
                    display_url(self.config.settings.database),
                    self._tick_errors,
                    cause,
                )
        finally:
            self._ticking = False

    async def _claim(self) -> None:
        assert self.poller is not None
        # Claims a failed database write left held, and those of pollers that died
        # holding them, are given back first: their sources are due now.
        await self.poller.release_unreleased()
        await asyncio.to_thread(release_dead_claims, self.store, datetime.now(UTC))
        await self._renew_leases()
        free = self._free_places()
        if free > 0:
            now = datetime.now(UTC)
            states = await asyncio.to_thread(
                self.store.claim_due,
                now,
                owner=self.owner,
                lease=self.lease(free),
                limit=free,
            )
            if self.stopping.is_set():
                # Shutdown began while the claim ran, and waits only for the polls it
                # found in flight: these are given back, not polled.
                names = [state.name for state in states]
                await asyncio.to_thread(self.store.release_claims, self.owner, names)
                return
            self._more_due = len(states) == free
            lags = [(now - s.next_poll_at).total_seconds() for s in states if s.next_poll_at]
            self.metrics.scheduler_lag.set(max([0.0, *lags]))
            for state in states:
                self._start_poll(state)

    def _free_places(self) -> int:
        """Polling places not taken by a poll that still fetches or parses."""
        return self.capacity - (len(self.in_flight) - len(self.writing))

    def _claim_more(self) -> None:
        """Claim between ticks when the last claim got every source it asked for and half
        the places are free again. With claims on ticks alone, a poller started at most
        `capacity` polls a tick, 40 every 15 s by default, and fell behind for good past
        4,800 sources at a 30-minute interval, however idle its cores."""
        if not self._more_due or self._ticking or self.stopping.is_set():
            return
        if self._free_places() < max(1, self.capacity // 2):
            return
        self._ticking = True
        self._spawn(self._claim_between_ticks())

    async def _claim_between_ticks(self) -> None:
        # The claim alone, not `_tick`: a tick also rewrites output_dir when the stories
        # changed, a whole build, which every claim through a backlog must not repeat.
        try:
            await self._claim()
            self.last_claim_ok = time.monotonic()
        except Exception as error:
            # The next tick claims again, and says what is wrong with the database.
            self._more_due = False
            log.debug("claim between ticks failed: %s", error)
        finally:
            self._ticking = False

    async def _renew_leases(self) -> None:
        """Extend the leases of in-flight polls past half their length: a poll may outlast
        its lease (a host that trickles bytes up to the timeout, a parser pool behind a
        large batch), and another poller would then take its source and poll it twice.
        A renewal only ever writes the claims whose lease is half gone, so a tick of a
        poller with nothing slow costs no write."""
        if not self.leases:
            return
        now = datetime.now(UTC)
        lease = self.lease(len(self.in_flight))
        due = {name for name, until in self.leases.items() if until - now < lease / 2}
        if not due:
            return
        until = now + lease
        renewed = await asyncio.to_thread(self.store.renew_claims, self.owner, due, until)
        for name in due:
            if name not in self.leases:
                continue  # its poll ended meanwhile
            if name in renewed:
                self.leases[name] = until
            else:
                log.warning(
                    "lease of source %s ran out while it was polled here, and another "
                    "poller holds it now; this poll's result is still stored",
                    name,
                )
                del self.leases[name]

    def _start_poll(self, state: SourceState) -> None:
        assert self.poller is not None
        name = state.name
        task = asyncio.create_task(
            self.poller.poll_one(state, on_queued=lambda: self._waits_for_writer(name)),
            name=f"poll {name}",
        )
        if state.lease_until is not None:
            self.leases[state.name] = state.lease_until
        self.in_flight.add(task)
        self.metrics.in_flight.set(len(self.in_flight))
        task.add_done_callback(self._poll_done)

    def _waits_for_writer(self, name: str) -> None:
        # Its place is free for another claim: it fetches and parses no more.
        self.writing.add(name)
        self._claim_more()

    def _poll_done(self, task: asyncio.Task[SourceResult]) -> None:
        self.in_flight.discard(task)
        name = task.get_name().removeprefix("poll ")
        self.leases.pop(name, None)
        self.writing.discard(name)
        self.metrics.in_flight.set(len(self.in_flight))
        if task.cancelled():
            return
        result = task.result()  # poll_one never raises
        self.metrics.observe_poll(result)
        self.web.data_changed()
        if result.counts.new or result.counts.updated or result.moved_to:
            self._static_dirty = True
        self._claim_more()

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- retention -----------------------------------------------------------

    async def prune(self) -> None:
        """The hourly APScheduler job: apply `retention` if no process did for a day, a
        batch per transaction, in a thread so polls and readers go on meanwhile. Of the
        pollers sharing a database, one prunes at a time (`Store.once_every`)."""
        if self.stopping.is_set():
            return
        retention = self.config.settings.retention

        def prune_if_due() -> PruneReport | None:
            now = datetime.now(UTC)
            with self.store.once_every("prune", PRUNE_EVERY - PRUNE_SLACK, now) as mine:
                return self.store.prune(now, retention) if mine else None

        try:
            report = await asyncio.to_thread(prune_if_due)
        except Exception as error:  # the database is away: the next check will do
            log.error(
                "retention: cannot prune %s: %s: %s",
                self.config.settings.database,
                type(error).__name__,
                error,
            )
            return
        if report is None:
            log.debug("retention: pruned lately, or being pruned, by another process")
            return
        if report.stories:
            self.web.data_changed()
            self._static_dirty = True
        log.info(
            "retention: pruned %d stories (%d entries) sorted before %s in %d batches; "
            "%d tombstones kept, %d expired",
            report.stories,
            report.entries,
            report.cutoff.isoformat(timespec="seconds"),
            report.batches,
            report.tombstones,
            report.tombstones_expired,
        )

    # -- first polls ---------------------------------------------------------

    def spread_first_polls(self) -> int:
        """Put off every source that is due at once (new, or overdue after downtime) by
        its own fixed offset, so a start does not send every request in one second."""
        now = datetime.now(UTC)
        # Pollers starting together would each spread the same sources; one is enough.
        with self.store.once_every("spread", timedelta(0), now) as mine:
            return self._spread(now) if mine else 0

    def _spread(self, now: datetime) -> int:
        times = {}
        for state in self.store.overdue_sources(now):
            source = self.config.sources.get(state.name)
            if source is None:
                continue
            window = spread_window(policy_for(self.config, source), remote=bool(state.url))
            if window:
                times[state.name] = first_poll(state.name, now, window)
        return self.store.reschedule(times, now)

    # -- static files --------------------------------------------------------

    async def write_static(self) -> None:
        """Rewrite output_dir (atomically, changed files only) if the stories changed."""
        self._static_dirty = False
        out_dir = self.config.settings.output_dir
        if out_dir is None or not self.serves:
            return  # static files are outputs: written where outputs are served
        try:
            version = await asyncio.to_thread(self.store.data_version)
            if version == self._static_version:
                return
            changed = await asyncio.to_thread(
                build_all,
                self.store,
                output_feeds(self.config),
                out_dir,
                base_url=self.config.settings.base_url,
                now=datetime.now(UTC),
            )
            self._static_version = version
            if changed:
                log.info("wrote %d static output files to %s", len(changed), out_dir)
        except OSError as error:
            self._static_dirty = True
            log.error("cannot write static outputs to %s: %s", out_dir, error)
        except SQLAlchemyError as error:  # tried again after the next tick that claims
            self._static_dirty = True
            log.error(
                "cannot write static outputs to %s, database unavailable: %s",
                out_dir,
                describe_error(error),
            )

    # -- reload --------------------------------------------------------------

    def on_sighup(self) -> None:
        if not self.stopping.is_set():
            self._spawn(self.reload())

    async def reload(self) -> bool:
        """Load the configuration file again; keep the running one if it is invalid."""
        notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            config = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as error:
            log.error(
                "reload refused: %s has %d error(s); keeping the running configuration",
                self.config_path,
                len(error.errors),
            )
            for line in error.errors:
                log.error("  %s", line)
            notify("READY=1", "STATUS=reload refused: configuration invalid, old one kept")
            return False
        old = self.config
        if config.settings.database != old.settings.database:
            log.warning("database changed in %s: restart the daemon to use it", self.config_path)
        if config.settings.pid_file != old.settings.pid_file:
            log.warning("pid_file changed in %s: restart the daemon to use it", self.config_path)
        added = sorted(set(config.sources) - set(old.sources))
        removed = sorted(set(old.sources) - set(config.sources))
        changed = sorted(
            name
            for name in set(config.sources) & set(old.sources)
            if config.sources[name] != old.sources[name]
        )
        try:
            await asyncio.to_thread(self.store.sync_sources, config.sources.values())
        except SQLAlchemyError as error:
            # Nothing applied yet: the running configuration stays whole.
            log.error(
                "reload failed: database %s unavailable: %s; keeping the running "
                "configuration (send SIGHUP again once it is back)",
                display_url(config.settings.database),
                describe_error(error),
            )
            notify("READY=1", "STATUS=reload failed: database unavailable, old one kept")
            return False
        self.config = config
        if self.poller is not None:
            if _fetch_settings(config.settings) != _fetch_settings(old.settings):
                self._replace_fetcher(config)
            self.poller.config = config
        self.web.reconfigure(config)
        self.web.data_changed()
        try:
            if self.polls:
                await asyncio.to_thread(self.spread_first_polls)
            self.metrics.track_sources(await asyncio.to_thread(self.store.source_states))
        except SQLAlchemyError as error:
            # Applied all the same; added sources are simply not spread.
            log.error("after reload, database unavailable: %s", describe_error(error))
        self._static_version = None
        await self.write_static()
        log.info(
            "configuration reloaded from %s: %d sources (added %s; removed %s; changed %s), "
            "%d output feeds",
            self.config_path,
            len(config.sources),
            ", ".join(added) or "none",
            ", ".join(removed) or "none",
            ", ".join(changed) or "none",
            len(self.web.feeds),
        )
        notify("READY=1", self._status_line())
        return True

    def _replace_fetcher(self, config: Config) -> None:
        retired = self.fetcher
        self.fetcher = new_fetcher(config)
        assert self.poller is not None
        self.poller.fetcher = self.fetcher
        if retired is not None:
            # Polls already under way finish on the old client; close it after they can have.
            delay = retired.timeout * 2 + 1

            async def close_later() -> None:
                await asyncio.sleep(delay)
                await retired.aclose()

            self._spawn(close_later())

    # -- start and stop ------------------------------------------------------

    def request_stop(self, signame: str) -> None:
        if self.stopping.is_set():
            return
        log.info("%s received: stopping", signame)
        self.stopping.set()

    def _status_line(self) -> str:
        polling = f"polling {len(self.config.sources)} sources" if self.polls else "polling nothing"
        serving = f"serving {len(self.web.feeds)} output feeds" if self.serves else "serving health"
        return f"STATUS={polling}, {serving}"

    def _take_pid_file(self) -> bool:
        """False when another daemon runs with this pid file; a file that cannot be
        written only costs `aggregator sources …` the automatic reload."""
        try:
            self.pid_file.acquire()
        except PidFileError as error:
            log.error("cannot start: %s", error)
            return False
        except OSError as error:
            log.warning(
                "cannot write the pid file %s (%s): `aggregator sources` edits will not "
                "reload this daemon by themselves; set pid_file to a writable place",
                self.pid_file.path,
                error.strerror or error,
            )
        return True

    async def serve(self) -> int:
        if not self._take_pid_file():
            self.store.close()
            retire(self.owner)
            return 1
        try:
            spread = await asyncio.to_thread(self._prepare_database)
        except SQLAlchemyError as error:
            # Exit 1: systemd's Restart=on-failure tries again, and the log says why.
            log.error(
                "cannot start: database %s: %s",
                display_url(self.config.settings.database),
                describe_error(error),
            )
            self.store.close()
            retire(self.owner)
            self.pid_file.release()
            return 1
        if self.polls:
            self.executor = parser_pool(len(self.config.sources))
            self.fetcher = new_fetcher(self.config)
            self.poller = Poller(
                self.config, self.store, self.fetcher, executor=self.executor, owner=self.owner
            )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop, signal.Signals(signum).name)
        loop.add_signal_handler(signal.SIGHUP, self.on_sighup)

        settings = self.config.settings
        self.scheduler.add_job(
            self.on_tick,
            "interval",
            seconds=self.tick,
            id="claim-due",
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
        )
        if self.polls:
            self.scheduler.add_job(
                self.prune,
                "interval",
                seconds=PRUNE_CHECK.total_seconds(),
                id="prune",
                next_run_time=datetime.now(UTC)
                + timedelta(seconds=_env_seconds("AGGREGATOR_PRUNE_AFTER", PRUNE_AFTER)),
                max_instances=1,
                coalesce=True,
            )
        self.scheduler.start()
        uv_config = uvicorn.Config(
            create_app(self.web, outputs=self.serves),
            host=settings.listen_host,
            port=settings.listen_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self.server = _Server(uv_config)
        server_task = asyncio.create_task(self.server.serve())
        while not self.server.started and not server_task.done():
            await asyncio.sleep(0.02)
        if server_task.done():
            await self._close()
            log.error("cannot serve http://%s:%d/", settings.listen_host, settings.listen_port)
            return 1
        log.info(
            "role %s: serving http://%s:%d/%s with %d sources (%d first polls spread), "
            "%d output feeds; tick %.3gs, %s",
            self.role,
            settings.listen_host,
            settings.listen_port,
            "" if self.serves else " (healthz and metrics only)",
            len(self.config.sources),
            spread,
            len(self.web.feeds),
            self.tick,
            f"poller {self.owner}" if self.polls else "polling nothing",
        )
        notify("READY=1", self._status_line(), f"MAINPID={os.getpid()}")
        watchdog = watchdog_period()
        if watchdog is not None:
            self._spawn(self._watchdog(watchdog))
        stop_task = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({server_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        stop_task.cancel()
        await self.shutdown(server_task)
        return 0

    def _prepare_database(self) -> int:
        """Schema, sources, claims left by the dead, first polls spread; returns how many."""
        self.store.upgrade()
        self.store.sync_sources(self.config.sources.values())
        spread = 0
        if self.polls:
            # Before the spread, so that the sources of a poller that died (this daemon's
            # previous run, killed or crashed) start within the window like the others.
            release_dead_claims(self.store, datetime.now(UTC))
            spread = self.spread_first_polls()
        self.metrics.track_sources(self.store.source_states())
        return spread

    async def _watchdog(self, period: float) -> None:
        """Keep systemd's watchdog fed while the scheduler is healthy; a stalled scheduler
        stops feeding it, and systemd restarts the service."""
        while not self.stopping.is_set():
            if self.scheduler_alive():
                notify("WATCHDOG=1")
            await asyncio.sleep(period)

    async def shutdown(self, server_task: asyncio.Task[None]) -> None:
        self.stopping.set()
        notify("STOPPING=1", "STATUS=stopping")
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.in_flight:
            log.info("waiting up to %.3gs for %d in-flight polls", self.grace, len(self.in_flight))
            _, pending = await asyncio.wait(set(self.in_flight), timeout=self.grace)
            if pending:
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                log.warning(
                    "%d in-flight polls cancelled (%s); nothing of them was stored",
                    len(pending),
                    ", ".join(sorted(task.get_name().removeprefix("poll ") for task in pending)),
                )
        with contextlib.suppress(Exception):
            released = await asyncio.to_thread(self.store.release_claims, self.owner)
            if released:
                log.info("released %d claims", released)
        if self.server is not None:
            self.server.should_exit = True
        await server_task
        await self._close()
        log.info("stopped")

    async def _close(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self.fetcher is not None:
            await self.fetcher.aclose()
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
        self.store.close()
        retire(self.owner)
        self.pid_file.release()


def _fetch_settings(settings: Settings) -> tuple[object, ...]:
    return (
        settings.user_agent,
        settings.timeout,
        settings.max_bytes,
        settings.concurrency,
        settings.per_host,
    )


class _Server(uvicorn.Server):
    """uvicorn, minus its signal handling: it would take SIGINT/SIGTERM for itself and
    re-raise them once it stops, while the daemon needs them (and SIGHUP) for its own
    graceful stop and reload."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def run(config_path: Path, role: str = "all") -> int:
    """Run the daemon in `role` until SIGTERM/SIGINT; returns the process exit status."""
    # Their INFO lines say "Running job" every tick and "HTTP Request" per fetch; our own
    # log says what each tick claimed and has one line per poll.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    config = load_config(config_path)
    daemon = Daemon(config, config_path, role=role)
    return asyncio.run(daemon.serve())
