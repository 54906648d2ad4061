"""Drive the real Poller, claim by claim, on a fake clock against a real feed server.

    harness = PollHarness(tmp_path, {"a": server.url("/a")}, interval="1h")
    harness.run_for(timedelta(days=1))   # a simulated day in well under a second per poll
    harness.state("a"), harness.results

Time jumps from one due source to the next, so a day of hourly polls takes 24
real requests and no sleeping. Used by tests/test_poll.py and bench/polite_day.py.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.config import Config, parse_config
from aggregator.model import SourceState
from aggregator.poll import Poller, SourceResult, lease_for, new_fetcher
from aggregator.schedule import due_at
from aggregator.store import Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_config(folder: Path, sources: Mapping[str, str], **settings: str | int) -> Config:
    values = {
        "database": f"sqlite:///{folder / 'poll.db'}",
        "interval": "1h",
        "min_interval": "1m",
        "max_interval": "1d",
        "timeout": "5s",
        **settings,
    }
    text = "[aggregator]\n" + "".join(
        f"{key} = {value}\n" if isinstance(value, int) else f'{key} = "{value}"\n'
        for key, value in values.items()
    )
    text += "".join(f'\n[sources.{name}]\nurl = "{url}"\n' for name, url in sources.items())
    path = folder / "aggregator.toml"
    path.write_text(text, encoding="utf-8")
    return parse_config(text, path)


class PollHarness:
    def __init__(
        self, folder: Path, sources: Mapping[str, str], *, seed: int = 1, **settings: str | int
    ) -> None:
        self.folder = folder
        self.settings = settings
        self.config = make_config(folder, sources, **settings)
        self.store = Store(self.config.settings.database)
        self.store.upgrade()
        self.store.sync_sources(self.config.sources.values())
        self.clock = FakeClock()
        self.rng = random.Random(seed)
        self.results: list[SourceResult] = []
        self.pass_times: list[datetime] = []

    def reconfigure(self, sources: Mapping[str, str]) -> None:
        """What a reload does: new sources, same settings."""
        self.config = make_config(self.folder, sources, **self.settings)
        self.store.sync_sources(self.config.sources.values())

    def close(self) -> None:
        self.store.close()

    def state(self, name: str) -> SourceState:
        found = self.store.source_state(name)
        assert found is not None
        return found

    def poll_due(self) -> list[SourceResult]:
        """One claim of every due source and a poll of each, at the clock's time."""
        return asyncio.run(self._poll_due())

    async def _poll_due(self) -> list[SourceResult]:
        async with new_fetcher(self.config) as fetcher:
            poller = Poller(
                self.config, self.store, fetcher, clock=self.clock, owner="harness", rng=self.rng
            )
            states = self.store.claim_due(
                self.clock.now,
                owner="harness",
                lease=lease_for(self.config, 100),
                limit=100,
            )
            summary = await poller.poll_pass(states)
        self.pass_times.append(self.clock.now)
        self.results.extend(summary.results)
        return summary.results

    def next_due(self) -> datetime | None:
        times = [due_at(s) for s in self.store.source_states()]
        real = [t for t in times if t is not None]
        return min(real) if real else None

    def run_for(self, span: timedelta) -> None:
        """Poll whatever is due, jump to the next due time, until `span` has passed."""
        end = self.clock.now + span
        while self.clock.now < end:
            self.poll_due()
            upcoming = self.next_due()
            if upcoming is None or upcoming >= end:
                self.clock.now = end
                return
            self.clock.now = max(upcoming, self.clock.now)

    def advance(self, delta: timedelta) -> None:
        self.clock.now += delta
