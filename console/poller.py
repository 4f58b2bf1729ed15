"""The poller: runs every collector for each of its targets, on its interval.

Each (collector, target) pair is one job with its own loop, so a slow BMC only
delays itself. Rules (see DESIGN.md): interval with jitter; a timeout around
every run; never two runs of one job at once (the loop is sequential);
exponential backoff after failures, capped; one global concurrency cap so a
1,000-host fleet does not open 1,000 connections at once.

A fleet-scoped collector (``CollectorSpec.fleet``, a Prometheus source) is one
job for all its targets: one run per interval reads every target at once, and
its outcome is recorded per target, so panes read the same collector states
and Store keys whatever the source. What such a run expected and did not find
(``Absent``) becomes unknown readings dated at their last sample, never 0.
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
from console.plugin import Absent, CollectorSpec, FleetResult, Plugin, Reading, Target
from console.store import Store
from console.transports import Transports

log = logging.getLogger(__name__)

FIRST_RUNS_PER_S = 200.0
"""A collector with more targets than this spreads its first runs over more than 2 s."""


@dataclass(frozen=True, slots=True)
class _Context:
    """The CollectContext a collector receives."""

    inventory: Inventory
    transports: Transports
    config: Any
    memory: dict[str, Any]
    """The plugin's, for this poller's life (``CollectContext.memory``)."""


@dataclass(frozen=True, slots=True)
class Job:
    plugin: Plugin
    spec: CollectorSpec
    target: Target
    context: _Context
    targets: tuple[Target, ...] = ()
    """A fleet job's targets (``target`` is then ``Target("fleet", "*")``)."""

    @property
    def fleet(self) -> bool:
        return self.spec.fleet is not None

    @property
    def interval(self) -> float:
        """The collector's interval, unless the target asks for its own (``attrs["interval"]``)."""
        if self.targets:
            wanted = [_positive(t.attrs.get("interval"), 0.0) for t in self.targets]
            return min((w for w in wanted if w > 0), default=self.spec.interval)
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


def age_text(seconds: float) -> str:
    """``42s``, ``3m``, ``2h``, ``4d``: how old a last sample is."""
    s = max(0.0, seconds)
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    if s < 172800:
        return f"{s / 3600:.0f}h"
    return f"{s / 86400:.0f}d"


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
        self._fleet_running: set[str] = set()
        self._fleet_failures: dict[str, int] = {}
        self.jobs: list[Job] = self._plan(collectors)
        self._jobs_per_spec: dict[str, int] = {}
        for job in self.jobs:
            self._jobs_per_spec[job.spec.id] = self._jobs_per_spec.get(job.spec.id, 0) + 1

    def _plan(self, collectors: Sequence[tuple[Plugin, CollectorSpec]]) -> list[Job]:
        jobs: list[Job] = []
        memories: dict[str, dict[str, Any]] = {}
        for plugin, spec in collectors:
            config = self.inventory.plugin_configs.get(plugin.name)
            memory = memories.setdefault(plugin.name, {})
            ctx = _Context(self.inventory, self.transports, config, memory)
            try:
                targets = list(spec.targets(self.inventory, config))
            except Exception as exc:  # a plugin bug must not stop the others
                log.exception("collector %s could not list its targets", spec.id)
                self.store.record_attempt(spec.id, "*", spec.interval, f"targets: {exc}")
                continue
            if spec.fleet is not None:
                if targets:
                    job = Job(plugin, spec, Target("fleet", "*"), ctx, tuple(targets))
                    jobs.append(job)
                    interval = job.interval  # walks every target: once
                    for target in targets:
                        self.store.status(spec.id, target.name, interval)
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
        if job.fleet:
            return await self._run_fleet(job)
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

    async def _run_fleet(self, job: Job) -> bool:
        """One run of a fleet collector for all its targets; outcomes recorded per target."""
        spec = job.spec
        assert spec.fleet is not None
        if spec.id in self._fleet_running:
            return False
        self._fleet_running.add(spec.id)
        interval = job.interval  # a walk over every target: once, not once per target
        statuses = [self.store.status(spec.id, t.name, interval) for t in job.targets]
        for st in statuses:
            st.running = True
        error: str | None = None
        result = FleetResult()
        deadline: asyncio.Timeout | None = None
        try:
            async with self._sem:
                deadline = asyncio.timeout(job.timeout)
                async with deadline:
                    result = await spec.fleet(job.context, job.targets)
            if not isinstance(result, FleetResult):
                raise TypeError(f"fleet collector returned {type(result).__name__}")
            bad = [r for r in result.readings if not isinstance(r, Reading)]
            if bad:
                raise TypeError(f"collector returned {type(bad[0]).__name__}, not Reading")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            expired = deadline is not None and deadline.expired()
            error = _error_text(exc, job.timeout, expired=expired)
            log.debug("%s (fleet of %d) failed: %s", spec.id, len(job.targets), error)
            result = FleetResult()
        finally:
            for st in statuses:
                st.running = False
            self._fleet_running.discard(spec.id)
        if result.readings:
            self.store.put(result.readings)
        # After the readings: a backfilled history dates what has gone absent since.
        absent = self._absent_readings(result.absent)
        if absent:
            self.store.put(absent)
        errors = {t.name: error or result.errors.get(t.name) for t in job.targets}
        self.store.record_attempts(spec.id, errors, interval)
        self._fleet_failures[spec.id] = (
            0 if error is None else self._fleet_failures.get(spec.id, 0) + 1
        )
        return error is None

    def _absent_readings(self, absent: Sequence[Absent]) -> list[Reading]:
        """Unknown (None) readings for what a fleet run did not find, dated at its last sample."""
        now = time.time()
        out: list[Reading] = []
        for a in absent:
            last = a.last_seen
            if last is None:
                known = (self.store.latest(a.target, m) for m in a.metrics)
                seen = [r.ts for r in known if r is not None]
                last = max(seen) if seen else None
            detail = a.why if last is None else f"{a.why} (last sample {age_text(now - last)} ago)"
            ts = now if last is None else last
            out += [
                Reading(a.target, m, None, ts=ts, source=a.source, detail=detail, node=a.node)
                for m in a.metrics
            ]
        return out

    def next_delay(self, interval: float, failures: int) -> float:
        """Seconds until the next run: the interval, backed off after failures, jittered."""
        base = interval
        if failures:
            base = min(interval * (2 ** min(failures, 16)), max(self._max_backoff, interval))
        return max(0.05, base * (1 + self._rng.uniform(-self._jitter, self._jitter)))

    def first_run_spread(self, job: Job) -> float:
        """Seconds over which a collector's first runs are spread: 2 s, or longer for a
        fleet (``FIRST_RUNS_PER_S``), never more than one interval."""
        jobs = self._jobs_per_spec.get(job.spec.id, 1)
        return min(job.interval, max(2.0, jobs / FIRST_RUNS_PER_S))

    async def _loop(self, job: Job) -> None:
        # Spread the first runs so 1,000 hosts do not start at once: a fleet's first
        # connections and reads in one burst would hold the event loop for seconds.
        await asyncio.sleep(self._rng.uniform(0, self.first_run_spread(job)))
        while True:
            started = self._clock()
            try:
                await self.run_job_once(job)
            except Exception:  # the Store or a bug of ours: log it, keep polling
                log.exception("poll of %s on %s failed", job.spec.id, job.target.name)
            failures = (
                self._fleet_failures.get(job.spec.id, 0)
                if job.fleet
                else self.store.status(job.spec.id, job.target.name, job.interval).failures
            )
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
