"""The Store: latest readings, short history, collector state and alerts.

Collectors write here (through the poller); panes and checks only read. The
Store is plain Python touched only from the event loop, so it needs no locks.
History is kept in float32 rings (``array('f')``): 8x smaller than a deque of
floats, which matters at fleet size (see DESIGN.md).
"""

from __future__ import annotations

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


def _as_float(value: int | float) -> float:
    """``value`` as a float; an int too large for a float (a hostile or broken
    tool's counter) becomes +/-inf instead of raising OverflowError."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


class Ring:
    """A fixed-size float32 ring buffer; unknown values are stored as NaN."""

    __slots__ = ("_buf", "_count", "_pos")

    def __init__(self, size: int) -> None:
        self._buf = array("f", [math.nan]) * size
        self._pos = 0
        self._count = 0

    def append(self, value: float | None) -> None:
        self._buf[self._pos] = math.nan if value is None else value
        self._pos = (self._pos + 1) % len(self._buf)
        self._count = min(self._count + 1, len(self._buf))

    def values(self) -> list[float]:
        """Oldest first; NaN where the value was unknown."""
        size = len(self._buf)
        start = (self._pos - self._count) % size
        return [self._buf[(start + i) % size] for i in range(self._count)]

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

    def latest(self, target: str, metric: str) -> Reading | None: ...

    def value(self, target: str, metric: str) -> Value: ...

    def readings_for(self, target: str) -> dict[str, Reading]: ...

    def by_metric(self, metric: str) -> dict[str, Reading]: ...

    def targets_with_prefix(self, prefix: str) -> list[str]: ...

    def history(self, target: str, metric: str) -> list[float]: ...

    def pane_status(
        self, collectors: Iterable[str], targets: Iterable[str] | None = None
    ) -> PaneStatus: ...

    def alerts(self) -> list[Alert]: ...

    def collector_statuses(self) -> list[CollectorStatus]: ...


class Store:
    """Latest readings with history, collector statuses and the current alerts."""

    def __init__(self, history_len: int = 150, clock: Callable[[], float] = time.time) -> None:
        self._history_len = history_len
        self._clock = clock
        self._latest: dict[tuple[str, str], Reading] = {}
        self._by_target: dict[str, dict[str, Reading]] = {}
        self._history: dict[tuple[str, str], Ring] = {}
        self._status: dict[tuple[str, str], CollectorStatus] = {}
        self._alerts: dict[str, Alert] = {}
        self._listeners: list[Callable[[], None]] = []
        self.version = 0
        """Bumped on every change; the UI redraws when it moved."""

    # ------------------------------------------------------------------ writing

    def put(self, readings: Sequence[Reading]) -> None:
        for r in readings:
            key = (r.target, r.metric)
            self._latest[key] = r
            self._by_target.setdefault(r.target, {})[r.metric] = r
            if isinstance(r.value, int | float) and not isinstance(r.value, bool):
                ring = self._history.get(key)
                if ring is None:
                    ring = self._history[key] = Ring(self._history_len)
                ring.append(_as_float(r.value))
            elif r.value is None and key in self._history:
                self._history[key].append(None)
        if readings:
            self._changed()

    def status(self, collector: str, target: str, interval: float) -> CollectorStatus:
        """The (mutable) status record of a collector for a target, created on first use."""
        key = (collector, target)
        st = self._status.get(key)
        if st is None:
            st = self._status[key] = CollectorStatus(collector, target, interval)
        return st

    def record_attempt(
        self, collector: str, target: str, interval: float, error: str | None
    ) -> None:
        st = self.status(collector, target, interval)
        now = self._clock()
        st.last_attempt = now
        if error is None:
            st.last_ok = now
            st.last_error = None
            st.failures = 0
        else:
            st.last_error = error
            st.failures += 1
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

    def latest(self, target: str, metric: str) -> Reading | None:
        return self._latest.get((target, metric))

    def value(self, target: str, metric: str) -> Value:
        r = self._latest.get((target, metric))
        return None if r is None else r.value

    def readings_for(self, target: str) -> dict[str, Reading]:
        return dict(self._by_target.get(target, {}))

    def by_metric(self, metric: str) -> dict[str, Reading]:
        return {t: r for (t, m), r in self._latest.items() if m == metric}

    def targets_with_prefix(self, prefix: str) -> list[str]:
        return [t for t in self._by_target if t.startswith(prefix)]

    def history(self, target: str, metric: str) -> list[float]:
        ring = self._history.get((target, metric))
        return [] if ring is None else ring.values()

    def collector_statuses(self) -> list[CollectorStatus]:
        return list(self._status.values())

    def pane_status(
        self, collectors: Iterable[str], targets: Iterable[str] | None = None
    ) -> PaneStatus:
        """Loading, ok, stale (with age) or failed (with the error) for these collectors."""
        wanted = set(collectors)
        only = None if targets is None else set(targets)
        statuses = [
            s
            for s in self._status.values()
            if s.collector in wanted and (only is None or s.target in only)
        ]
        if not statuses or all(s.last_attempt is None for s in statuses):
            return PaneStatus("loading")
        now = self._clock()
        failing = [s for s in statuses if s.last_error is not None]
        if len(failing) == len(statuses):
            return PaneStatus("failed", error=failing[0].last_error)
        stale = [
            s
            for s in statuses
            if s.last_ok is not None and now - s.last_ok > STALE_AFTER_INTERVALS * s.interval
        ]
        fresh = len(statuses) - len(stale) - sum(1 for s in failing if s.last_ok is None)
        if stale and fresh <= 0:
            # Nothing on this pane is current: say how old the newest good data is.
            age = min(now - s.last_ok for s in stale if s.last_ok is not None)
            return PaneStatus("stale", age=age, error=stale[0].last_error)
        if failing or stale:
            # Some targets fail or lag: the pane is usable; they show as alerts and in
            # the rows' own ages, and the pane says how many.
            lagging = len({id(s) for s in (*failing, *stale)})
            what = "failing or late" if stale else "failing"
            return PaneStatus("ok", error=f"{lagging} of {len(statuses)} {what}")
        return PaneStatus("ok")

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
