"""The Store: latest readings, short history, collector state and alerts.

Collectors write here (through the poller); panes and checks only read. The
Store is plain Python touched only from the event loop, so it needs no locks.
History is kept in float32 rings (``array('f')``): 8x smaller than a deque of
floats, which matters at fleet size (see DESIGN.md).
"""

from __future__ import annotations

import bisect
import math
import time
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from console.plugin import Finding, Reading, Severity, Value

PaneStateName = Literal["loading", "ok", "stale", "failed", "empty"]

STALE_AFTER_INTERVALS = 3.0
"""A target's data is stale once this many intervals passed without a good read."""
HISTORY_LEN = 150
"""Samples kept of a metric that a plugin names in ``long_history`` (25 minutes at 10 s)."""
SHORT_HISTORY_LEN = 24
"""Samples kept of every other numeric metric: the widest sparkline drawn is 24."""
PANE_STATUS_REUSE_S = 0.2
"""A stale pane's status (its age grows) judged this recently, with no attempt since, is reused."""


def _as_float(value: int | float) -> float:
    """``value`` as a float; an int too large for a float (a hostile or broken
    tool's counter) becomes +/-inf instead of raising OverflowError."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


class Ring:
    """A fixed-size float32 ring buffer; unknown values are stored as NaN.

    Half the series of a fleet never change (memory totals, power limits, error
    counters at 0, link widths): while every value is the same the ring keeps one
    number and a count, and only allocates its array when a different one comes
    (about 60 MB saved at 1,000 hosts).
    """

    __slots__ = ("_buf", "_const", "_count", "_pos", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._buf: array[float] | None = None
        self._const = math.nan
        self._pos = 0
        self._count = 0

    def append(self, value: float | None) -> None:
        v = math.nan if value is None else value
        buf = self._buf
        if buf is None:
            same = v == self._const or (v != v and self._const != self._const)  # NaN too
            if self._count == 0 or same:
                self._const = v
                self._count = min(self._count + 1, self._size)
                return
            # The first different value: the run so far fills the array's first slots.
            buf = self._buf = array("f", [self._const]) * self._size
            self._pos = self._count % self._size
        buf[self._pos] = v
        self._pos = (self._pos + 1) % self._size
        self._count = min(self._count + 1, self._size)

    def values(self) -> list[float]:
        """Oldest first; NaN where the value was unknown."""
        buf = self._buf
        if buf is None:
            return list(array("f", [self._const]) * self._count)  # float32, as stored
        size = self._size
        start = (self._pos - self._count) % size
        return [buf[(start + i) % size] for i in range(self._count)]

    def __len__(self) -> int:
        return self._count


@dataclass(slots=True)
class CollectorStatus:
    """How one collector fares for one target."""

    collector: str
    target: str
    interval: float
    last_attempt: float | None = None
    last_ok: float | None = None
    last_error: str | None = None
    failures: int = 0
    """Consecutive failures (drives the poller's backoff)."""
    running: bool = False


@dataclass(frozen=True, slots=True)
class PaneStatus:
    """What a pane should say about its data, whatever it shows."""

    state: PaneStateName
    age: float | None = None
    """Seconds since the oldest of the last good reads (for ``stale``)."""
    error: str | None = None


@dataclass(slots=True)
class Alert:
    """A finding that is currently true, with when it was first seen."""

    finding: Finding
    since: float
    last_seen: float = field(default=0.0)

    @property
    def key(self) -> str:
        return self.finding.key or f"{self.finding.target}:{self.finding.message}"


class StoreView(Protocol):
    """What panes, checks and actions may read."""

    @property
    def version(self) -> int: ...

    def changed_nodes(self, since: int, plugin: str | None = None) -> set[str]: ...

    def node_version(self, node: str) -> int: ...

    def latest(self, target: str, metric: str) -> Reading | None: ...

    def value(self, target: str, metric: str) -> Value: ...

    def readings_for(self, target: str) -> dict[str, Reading]: ...

    def by_metric(self, metric: str) -> dict[str, Reading]: ...

    def metric_names(self) -> list[str]: ...

    def targets_with_prefix(self, prefix: str) -> list[str]: ...

    def history(self, target: str, metric: str) -> list[float]: ...

    def pane_status(
        self, collectors: Iterable[str], targets: Iterable[str] | None = None
    ) -> PaneStatus: ...

    def alerts(self) -> list[Alert]: ...

    def collector_statuses(self) -> list[CollectorStatus]: ...


class Store:
    """Latest readings with history, collector statuses and the current alerts."""

    def __init__(
        self,
        history_len: int = HISTORY_LEN,
        clock: Callable[[], float] = time.time,
        *,
        short_history_len: int = SHORT_HISTORY_LEN,
        long_history: Iterable[str] = (),
    ) -> None:
        self._history_len = history_len
        self._short_history_len = min(short_history_len, history_len)
        self._long_history = frozenset(long_history)
        """Metrics whose rules read far back (``Plugin.long_history``); the others keep
        a sparkline's worth. At 1,000 hosts the history rings are most of the memory:
        150 samples of each of ~200,000 varying series is 120 MB, 24 is 20 MB."""
        self._clock = clock
        self._by_target: dict[str, dict[str, Reading]] = {}
        # Indexes for fleet-sized reads (see DESIGN.md "Facts"): every pane and rule that
        # scanned all readings per refresh made a refresh cost O(fleet) or worse.
        self._by_metric: dict[str, dict[str, Reading]] = {}
        """Metric -> target -> reading, for the metrics ``by_metric`` was asked about (built
        then, kept up to date after): an index of every metric would cost ~20 MB at 1,000
        hosts for the few that rules read across the fleet."""
        self._sorted_targets: list[str] = []
        """Every target, sorted: a prefix (``gpu001/``) is a bisect away."""
        self._node_version: dict[str, int] = {}
        """Node (``Reading.node`` or its target) -> ``version`` when its readings last changed."""
        self._plugin_node_version: dict[str, dict[str, int]] = {}
        self._metric_plugin: dict[str, str] = {}
        """``gpu.util_pct`` -> ``gpu``, computed once per metric name."""
        """The same, per metric prefix (``gpu`` of ``gpu.util_pct``): a pane of one plugin
        need not redo a node because another plugin's readings of it changed."""
        self._by_collector: dict[str, dict[str, CollectorStatus]] = {}
        self._failing: dict[tuple[str, str], CollectorStatus] = {}
        self._status_version = 0
        """Bumped when an attempt may change a pane's judgement (see ``_attempt``)."""
        self._pane_status_memo: dict[
            tuple[tuple[str, ...], tuple[str, ...] | None], tuple[int, float, float, PaneStatus]
        ] = {}
        """Several panes read the same collectors on one refresh: judged once."""
        """Statuses whose last attempt failed (alert rules look at these alone)."""
        self._history: dict[str, dict[str, Ring]] = {}
        """Target -> metric -> its ring (nested: a (target, metric) key per series costs
        more memory than the series itself at 1,000 hosts)."""
        self._status: dict[tuple[str, str], CollectorStatus] = {}
        self._alerts: dict[str, Alert] = {}
        self._listeners: list[Callable[[], None]] = []
        self.version = 0
        """Bumped on every change; the UI redraws when it moved."""

    # ------------------------------------------------------------------ writing

    def put(self, readings: Sequence[Reading]) -> None:
        if not readings:
            return
        version = self.version + 1  # what _changed() below makes it
        by_target, by_metric, history = self._by_target, self._by_metric, self._history
        touched = self._node_version
        by_plugin = self._plugin_node_version
        prefixes = self._metric_plugin
        last_node: str | None = None
        last_plugin_node: str | None = None
        last_plugin: str | None = None
        for r in readings:
            target, metric, value = r.target, r.metric, r.value
            of_target = by_target.get(target)
            if of_target is None:
                of_target = by_target[target] = {}
                bisect.insort(self._sorted_targets, target)
            of_target[metric] = r
            of_metric = by_metric.get(metric)
            if of_metric is not None:
                of_metric[target] = r
            node = r.node or target
            if node != last_node:  # moved to the end: the dict stays ordered by version
                touched.pop(node, None)
                touched[node] = version
                last_node = node
            plugin = prefixes.get(metric)
            if plugin is None:
                plugin = prefixes[metric] = metric.partition(".")[0]
            if node != last_plugin_node or plugin != last_plugin:
                of_plugin = by_plugin.get(plugin)
                if of_plugin is None:
                    of_plugin = by_plugin[plugin] = {}
                of_plugin.pop(node, None)
                of_plugin[node] = version
                last_plugin_node, last_plugin = node, plugin
            kind = type(value)
            if kind is float or (
                kind is not bool and isinstance(value, int | float) and not isinstance(value, bool)
            ):
                rings = history.get(target)
                if rings is None:
                    rings = history[target] = {}
                ring = rings.get(metric)
                if ring is None:
                    size = (
                        self._history_len
                        if metric in self._long_history
                        else self._short_history_len
                    )
                    ring = rings[metric] = Ring(size)
                ring.append(value if kind is float else _as_float(value))  # type: ignore[arg-type]
            elif value is None:
                rings = history.get(target)
                ring = rings.get(metric) if rings is not None else None
                if ring is not None:
                    ring.append(None)
        self._changed()

    def status(self, collector: str, target: str, interval: float) -> CollectorStatus:
        """The (mutable) status record of a collector for a target, created on first use."""
        key = (collector, target)
        st = self._status.get(key)
        if st is None:
            st = self._status[key] = CollectorStatus(collector, target, interval)
            self._by_collector.setdefault(collector, {})[target] = st
            self._status_version += 1
        return st

    def record_attempt(
        self, collector: str, target: str, interval: float, error: str | None
    ) -> None:
        self._attempt(self.status(collector, target, interval), self._clock(), error)
        self._changed()

    def _attempt(self, st: CollectorStatus, now: float, error: str | None) -> None:
        ok = st.last_ok
        routine = (
            error is None
            and st.last_error is None
            and ok is not None
            and now - ok <= STALE_AFTER_INTERVALS * st.interval
        )
        if not routine:
            # A good read of a target that was already good and current changes no
            # pane's judgement (it only puts off when that target turns stale), so
            # the remembered pane statuses stay: at 1,000 hosts this is nearly every
            # attempt, and a judgement walks every target.
            self._status_version += 1
        st.last_attempt = now
        key = (st.collector, st.target)
        if error is None:
            st.last_ok = now
            st.last_error = None
            st.failures = 0
            self._failing.pop(key, None)
        else:
            st.last_error = error
            st.failures += 1
            self._failing[key] = st

    def record_attempts(
        self, collector: str, errors: Mapping[str, str | None], interval: float
    ) -> None:
        """``record_attempt`` for many targets of one (fleet) run, with one change signal."""
        now = self._clock()
        for target, error in errors.items():
            self._attempt(self.status(collector, target, interval), now, error)
        if errors:
            self._changed()

    def set_findings(self, findings: Iterable[Finding]) -> None:
        """Replace the current alerts; a finding seen before keeps its ``since``."""
        now = self._clock()
        fresh: dict[str, Alert] = {}
        for f in findings:
            if f.severity <= Severity.OK:
                continue
            alert = Alert(f, since=now, last_seen=now)
            old = self._alerts.get(alert.key)
            if old is not None:
                alert.since = old.since
            fresh[alert.key] = alert
        changed = fresh.keys() != self._alerts.keys() or any(
            fresh[k].finding != self._alerts[k].finding for k in fresh
        )
        self._alerts = fresh
        if changed:
            self._changed()

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        self.version += 1
        for listener in self._listeners:
            listener()

    # ------------------------------------------------------------------ reading

    def changed_nodes(self, since: int, plugin: str | None = None) -> set[str]:
        """Nodes whose readings changed after ``version`` was ``since`` (panes and alert
        rules redo only these: a refresh then costs what changed, not the fleet); with
        ``plugin``, only readings of its metrics (``<plugin>.*``) count."""
        versions = (
            self._node_version if plugin is None else self._plugin_node_version.get(plugin, {})
        )
        out = set()
        for node in reversed(versions):  # newest first: O(what changed)
            if versions[node] <= since:
                break
            out.add(node)
        return out

    def node_version(self, node: str) -> int:
        """``version`` when ``node``'s readings last changed (0: never): a key for
        memoising what is computed from them."""
        return self._node_version.get(node, 0)

    @property
    def _latest(self) -> dict[tuple[str, str], Reading]:
        """Every latest reading by (target, metric): built on demand (tests look at it)."""
        return {(t, m): r for t, of in self._by_target.items() for m, r in of.items()}

    def latest(self, target: str, metric: str) -> Reading | None:
        of_target = self._by_target.get(target)
        return None if of_target is None else of_target.get(metric)

    def value(self, target: str, metric: str) -> Value:
        of_target = self._by_target.get(target)
        r = None if of_target is None else of_target.get(metric)
        return None if r is None else r.value

    def readings_for(self, target: str) -> dict[str, Reading]:
        return dict(self._by_target.get(target, {}))

    def by_metric(self, metric: str) -> dict[str, Reading]:
        of_metric = self._by_metric.get(metric)
        if of_metric is None:
            of_metric = self._by_metric[metric] = {
                t: of[metric] for t, of in self._by_target.items() if metric in of
            }
        return dict(of_metric)

    def metric_names(self) -> list[str]:
        """Every metric the Store has a reading of."""
        return list(self._metric_plugin)

    def targets_with_prefix(self, prefix: str) -> list[str]:
        """Targets starting with ``prefix``, in sorted order."""
        if not prefix:
            return list(self._sorted_targets)
        targets = self._sorted_targets
        out = []
        for i in range(bisect.bisect_left(targets, prefix), len(targets)):
            if not targets[i].startswith(prefix):
                break
            out.append(targets[i])
        return out

    def history(self, target: str, metric: str) -> list[float]:
        rings = self._history.get(target)
        ring = None if rings is None else rings.get(metric)
        return [] if ring is None else ring.values()

    def collector_statuses(self) -> list[CollectorStatus]:
        return list(self._status.values())

    def failing_statuses(self) -> list[CollectorStatus]:
        """The statuses whose last attempt failed."""
        return list(self._failing.values())

    def pane_status(
        self, collectors: Iterable[str], targets: Iterable[str] | None = None
    ) -> PaneStatus:
        """Loading, ok, stale (with age) or failed (with the error) for these collectors.

        Judged once and reused until an attempt is recorded or until the first
        target's data turns stale by the clock: at 1,000 hosts a judgement walks
        thousands of statuses, and panes ask on every refresh.
        """
        key = (tuple(collectors), None if targets is None else tuple(targets))
        memo = self._pane_status_memo.get(key)
        now = self._clock()
        if memo is not None and memo[0] == self._status_version and memo[1] <= now < memo[2]:
            return memo[3]
        status, valid_until = self._pane_status(key[0], key[1], now)
        self._pane_status_memo[key] = (self._status_version, now, valid_until, status)
        return status

    def now(self) -> float:
        """The Store's clock (wall time; tests move it)."""
        return self._clock()

    def next_status_change(self) -> float:
        """When a pane status judged since the last attempt changes by the clock alone (a
        target turning stale, a stale age to update); ``inf`` when none will.

        The console redraws when the Store changes; this is when it must redraw although
        nothing changed (the poller stopped: the panes must say stale, not stay "ok").
        """
        version = self._status_version
        return min(
            (m[2] for m in self._pane_status_memo.values() if m[0] == version), default=math.inf
        )

    def _pane_status(
        self, collectors: Iterable[str], targets: Iterable[str] | None, now: float
    ) -> tuple[PaneStatus, float]:
        """The status, and until when it holds if no attempt is recorded meanwhile."""
        only = None if targets is None else set(targets)
        statuses = [
            s
            for c in dict.fromkeys(collectors)
            for s in self._by_collector.get(c, {}).values()
            if only is None or s.target in only
        ]
        if not statuses or all(s.last_attempt is None for s in statuses):
            return PaneStatus("loading"), math.inf
        # One pass (panes ask on every refresh, for up to thousands of targets).
        failing = never_ok = stale = lagging = 0
        first_error: str | None = None
        stale_error: str | None = None
        newest_stale_ok = -math.inf
        turns_stale = math.inf  # when the first fresh target would turn stale
        for st in statuses:
            bad = st.last_error is not None
            if bad:
                failing += 1
                if first_error is None:
                    first_error = st.last_error
                if st.last_ok is None:
                    never_ok += 1
            ok = st.last_ok
            late = False
            if ok is not None:
                deadline = ok + STALE_AFTER_INTERVALS * st.interval
                late = now > deadline
                if late:
                    stale += 1
                    if stale == 1:
                        stale_error = st.last_error
                    newest_stale_ok = max(newest_stale_ok, ok)
                elif deadline < turns_stale:
                    turns_stale = deadline
            if bad or late:
                lagging += 1
        if failing == len(statuses):
            return PaneStatus("failed", error=first_error), turns_stale
        fresh = len(statuses) - stale - never_ok
        if stale and fresh <= 0:
            # Nothing on this pane is current: say how old the newest good data is (an
            # age that grows: judged again soon).
            status = PaneStatus("stale", age=now - newest_stale_ok, error=stale_error)
            return status, now + PANE_STATUS_REUSE_S
        if failing or stale:
            # Some targets fail or lag: the pane is usable; they show as alerts and in
            # the rows' own ages, and the pane says how many.
            what = "failing or late" if stale else "failing"
            status = PaneStatus("ok", error=f"{lagging} of {len(statuses)} {what}")
            return status, turns_stale
        return PaneStatus("ok"), turns_stale

    def alerts(self) -> list[Alert]:
        """Worst first, then oldest first."""
        return sorted(self._alerts.values(), key=lambda a: (-a.finding.severity, a.since))


def threshold_findings(
    store: StoreView, thresholds: Mapping[str, tuple[float | None, float | None, str]]
) -> list[Finding]:
    """Findings from numeric thresholds: metric -> (warn, crit, "above"|"below")."""
    out: list[Finding] = []
    for metric, (warn, crit, direction) in thresholds.items():
        for target, reading in store.by_metric(metric).items():
            raw = reading.value
            if not isinstance(raw, int | float) or isinstance(raw, bool):
                continue
            v = _as_float(raw)
            up = direction == "above"

            def past(level: float | None, v: float = v, up: bool = up) -> bool:
                if level is None:
                    return False
                return v > level if up else v < level

            sev = Severity.CRITICAL if past(crit) else Severity.WARNING if past(warn) else None
            if sev is None:
                continue
            level = crit if sev is Severity.CRITICAL else warn
            sign = ">" if direction == "above" else "<"
            out.append(
                Finding(
                    sev,
                    target,
                    f"{metric.split('.', 1)[-1]} {v:g} {sign} {level:g}",
                    key=f"threshold:{metric}:{target}",
                    node=reading.node or target,
                )
            )
    return out
