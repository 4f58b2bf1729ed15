"""The poller: runs every collector for each of its targets, on its interval.

Each (collector, target) pair is one job with its own loop, so a slow BMC only
delays itself. Rules (see DESIGN.md): interval with jitter; a timeout around
every run; never two runs of one job at once (the loop is sequential);
exponential backoff after failures, capped; one global concurrency cap so a
1,000-host fleet does not open 1,000 connections at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from console.inventory.model import Inventory
from console.plugin import CollectorSpec, Plugin, Reading, Target
from console.store import Store
from console.transports import Transports

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Context:
    """The CollectContext a collector receives."""

    inventory: Inventory
    transports: Transports
    config: Any


@dataclass(frozen=True, slots=True)
class Job:
    plugin: Plugin
    spec: CollectorSpec
    target: Target
    context: _Context

    @property
    def interval(self) -> float:
        """The collector's interval, unless the target asks for its own (``attrs["interval"]``)."""
        return _positive(self.target.attrs.get("interval"), self.spec.interval)

    @property
    def timeout(self) -> float:
        """The collector's timeout, unless the target asks for its own (``attrs["timeout"]``)."""
        return _positive(self.target.attrs.get("timeout"), self.spec.timeout)


def _positive(wanted: object, default: float) -> float:
    if isinstance(wanted, int | float) and not isinstance(wanted, bool) and wanted > 0:
        return float(wanted)
    return default


def _error_text(exc: BaseException, timeout: float, *, expired: bool) -> str:
    # Only our own deadline is "timed out after <timeout>"; a TimeoutError raised
    # inside the collector (aiohttp, a connect timeout) has its own limit and message.
    if expired:
        return f"timed out after {timeout:g}s"
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


class Poller:
    """Schedules collectors and writes their readings and statuses to the Store."""

    def __init__(
        self,
        store: Store,
        inventory: Inventory,
        transports: Transports,
        collectors: Sequence[tuple[Plugin, CollectorSpec]],
        *,
        max_concurrency: int = 64,
        jitter: float = 0.1,
        max_backoff: float = 300.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.inventory = inventory
        self.transports = transports
        self._jitter = jitter
        self._max_backoff = max_backoff
        self._rng = rng or random.Random()
        self._clock = clock
        self._sem = asyncio.Semaphore(max_concurrency)
        self._tasks: list[asyncio.Task[None]] = []
        self.jobs: list[Job] = self._plan(collectors)

    def _plan(self, collectors: Sequence[tuple[Plugin, CollectorSpec]]) -> list[Job]:
        jobs: list[Job] = []
        for plugin, spec in collectors:
            config = self.inventory.plugin_configs.get(plugin.name)
            ctx = _Context(self.inventory, self.transports, config)
            try:
                targets = list(spec.targets(self.inventory, config))
            except Exception as exc:  # a plugin bug must not stop the others
                log.exception("collector %s could not list its targets", spec.id)
                self.store.record_attempt(spec.id, "*", spec.interval, f"targets: {exc}")
                continue
            for target in targets:
                job = Job(plugin, spec, target, ctx)
                jobs.append(job)
                # Registered now so panes show "loading" rather than "empty".
                self.store.status(spec.id, target.name, job.interval)
        return jobs

    # ------------------------------------------------------------------ running

    async def run_job_once(self, job: Job) -> bool:
        """Run one collection (respecting the cap and the timeout); True when it worked."""
        spec, target = job.spec, job.target
        status = self.store.status(spec.id, target.name, job.interval)
        if status.running:  # never overlap; a poll_once during the loop just skips
            return False
        status.running = True
        error: str | None = None
        readings: Sequence[Reading] = ()
        deadline: asyncio.Timeout | None = None
        try:
            async with self._sem:
                # Created inside the cap: waiting for a slot does not count against the run.
                deadline = asyncio.timeout(job.timeout)
                async with deadline:
                    readings = await spec.collect(job.context, target)
            bad = [r for r in readings if not isinstance(r, Reading)]
            if bad:
                raise TypeError(f"collector returned {type(bad[0]).__name__}, not Reading")
        except asyncio.CancelledError:
            status.running = False
            raise
        except Exception as exc:
            expired = deadline is not None and deadline.expired()
            error = _error_text(exc, job.timeout, expired=expired)
            log.debug("%s on %s failed: %s", spec.id, target.name, error)
            readings = ()
        finally:
            status.running = False
        if readings:
            self.store.put(readings)
        self.store.record_attempt(spec.id, target.name, job.interval, error)
        return error is None

    def next_delay(self, interval: float, failures: int) -> float:
        """Seconds until the next run: the interval, backed off after failures, jittered."""
        base = interval
        if failures:
            base = min(interval * (2 ** min(failures, 16)), max(self._max_backoff, interval))
        return max(0.05, base * (1 + self._rng.uniform(-self._jitter, self._jitter)))

    async def _loop(self, job: Job) -> None:
        # Spread the first runs over one interval so 1,000 hosts do not start at once.
        await asyncio.sleep(self._rng.uniform(0, min(job.interval, 2.0)))
        while True:
            started = self._clock()
            try:
                await self.run_job_once(job)
            except Exception:  # the Store or a bug of ours: log it, keep polling
                log.exception("poll of %s on %s failed", job.spec.id, job.target.name)
            failures = self.store.status(job.spec.id, job.target.name, job.interval).failures
            delay = self.next_delay(job.interval, failures)
            await asyncio.sleep(max(0.0, started + delay - self._clock()))

    def start(self) -> None:
        """Start every job's loop in the running event loop."""
        if self._tasks:
            return
        for job in self.jobs:
            name = f"poll:{job.spec.id}:{job.target.name}"
            self._tasks.append(asyncio.create_task(self._loop(job), name=name))

    async def poll_once(self, predicate: Callable[[Job], bool] | None = None) -> int:
        """Run every (matching) job once, concurrently; returns how many succeeded."""
        jobs = [j for j in self.jobs if predicate is None or predicate(j)]
        results = await asyncio.gather(*(self.run_job_once(j) for j in jobs))
        return sum(results)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
