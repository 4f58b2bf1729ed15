"""Port health: counter totals to rates (resets, wraps, saturation), and judging.

Pure: no I/O and no Store. The collector uses ``CounterTracker`` to turn the
totals it reads into errors per minute, and ``judge`` to say what is wrong
with a port; checks and alerts call ``judge`` again on what the Store holds,
so the pane, the card and the alerts always agree.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from console.plugin import Severity, Value
from plugins.infiniband.config import InfinibandConfig
from plugins.infiniband.parse import COUNTER_BITS, ERROR_COUNTERS, SHORT_NAMES

GLYPH = {
    Severity.OK: "●",
    Severity.UNKNOWN: "?",
    Severity.WARNING: "▲",
    Severity.CRITICAL: "✖",
}
SEVERITY_WORD = {
    Severity.OK: "ok",
    Severity.UNKNOWN: "unknown",
    Severity.WARNING: "warning",
    Severity.CRITICAL: "critical",
}
WORD_SEVERITY = {v: k for k, v in SEVERITY_WORD.items()}

# --------------------------------------------------------------------------- rates


@dataclass(frozen=True, slots=True)
class CounterStep:
    """What one new total meant."""

    rate_per_min: float | None
    """Errors (or units) per minute over the window; None until two samples."""
    event: str | None = None
    """``reset`` (went down: cleared), ``wrap`` (a 32-bit counter rolled over),
    ``saturated`` (an error counter stuck at its maximum: the rate is a lower bound)."""


class CounterTracker:
    """Totals per (target, counter) -> a monotonic sum -> rate over a window.

    A total lower than the previous one is a reset (``perfquery -R``, a driver
    reload): the new total is what accrued since, so it is the delta. A 32-bit
    data counter near its top that comes back small wrapped instead. IB error
    counters saturate rather than wrap (IBA 16.1.3.5), so at their maximum the
    rate is only a lower bound and the step says ``saturated``.
    """

    def __init__(self, window_s: float = 300.0) -> None:
        self.window_s = window_s
        self._last: dict[tuple[str, str], int] = {}
        self._sums: dict[tuple[str, str], deque[tuple[float, int]]] = {}

    def forget(self, target: str) -> None:
        for key in [k for k in self._last if k[0] == target]:
            self._last.pop(key, None)
            self._sums.pop(key, None)

    def update(self, target: str, counter: str, total: int | None, now: float) -> CounterStep:
        key = (target, counter)
        if total is None:
            return CounterStep(None)
        prev = self._last.get(key)
        self._last[key] = total
        samples = self._sums.setdefault(key, deque())
        event: str | None = None
        if prev is None:
            delta = 0
        elif total >= prev:
            delta = total - prev
        elif counter not in COUNTER_BITS and 2**31 <= prev < 2**32:
            delta, event = total + 2**32 - prev, "wrap"
        else:
            delta, event = total, "reset"
        cum = (samples[-1][1] if samples else 0) + delta
        samples.append((now, cum))
        # Keep one sample at or before the window's start as the baseline.
        while len(samples) > 2 and samples[1][0] <= now - self.window_s:
            samples.popleft()
        bits = COUNTER_BITS.get(counter)
        if bits is not None and counter in ERROR_COUNTERS and total >= 2**bits - 1:
            event = event or "saturated"
        if len(samples) < 2:
            return CounterStep(None, event)
        base_ts, base_cum = samples[0]
        span = now - base_ts
        if span <= 0:
            return CounterStep(None, event)
        # Errors in the window, per minute: a startup span shorter than the window
        # is divided by the whole window, so one early event does not look like a storm.
        return CounterStep((cum - base_cum) * 60.0 / max(span, self.window_s), event)

    def throughput_gbps(
        self, target: str, counter: str, total: int | None, now: float
    ) -> float | None:
        """Data counters (octets/4) to Gb/s over the last interval only."""
        key = (target, "tp:" + counter)
        if total is None:
            return None
        prev = self._sums.get(key)
        self._sums[key] = deque([(now, total)])
        if not prev:
            return None
        ts, last = prev[-1]
        if total < last or now <= ts:
            return None
        return (total - last) * 4 * 8 / (now - ts) / 1e9


# --------------------------------------------------------------------------- judging


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str
    """``down``, ``phys``, ``degraded``, ``flapping``, ``errors``."""
    severity: Severity
    text: str


BAD_PHYS = {
    "Polling": Severity.CRITICAL,
    "Disabled": Severity.WARNING,
    "LinkErrorRecovery": Severity.CRITICAL,
    "Sleep": Severity.CRITICAL,
    "PortConfigurationTraining": Severity.WARNING,
    "Phy Test": Severity.WARNING,
}


def _num(v: Value) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def judge(
    values: Mapping[str, Value],
    config: InfinibandConfig,
    expected_gbps: float | None,
) -> list[Problem]:
    """What is wrong with one port, from its metric values (``infiniband.*`` names).

    ``expected_gbps`` is the node's ``hardware.ib_rate_gbps`` (InfiniBand ports only;
    RoCE ports are not held to an IB rate).
    """
    out: list[Problem] = []
    state = values.get("infiniband.state")
    phys = values.get("infiniband.phys_state")
    layer = values.get("infiniband.link_layer")
    if isinstance(phys, str) and phys in BAD_PHYS:
        sev = BAD_PHYS[phys]
        what = "administratively disabled" if phys == "Disabled" else f"physical state {phys}"
        out.append(Problem("phys", sev, what))
    elif isinstance(state, str) and state != "ACTIVE":
        out.append(Problem("down", Severity.CRITICAL, f"port {state.lower()}"))
    active = state == "ACTIVE"
    rate = _num(values.get("infiniband.rate_gbps"))
    width = _num(values.get("infiniband.width"))
    if active and layer != "Ethernet":
        if expected_gbps is not None and rate is not None and rate < expected_gbps:
            speed = values.get("infiniband.speed")
            word = f" ({speed})" if isinstance(speed, str) else ""
            out.append(
                Problem(
                    "degraded",
                    Severity.WARNING,
                    f"running {rate:g}{word} < expected {expected_gbps:g} Gb/s",
                )
            )
        if width is not None and width < config.expected_width:
            out.append(
                Problem(
                    "degraded",
                    Severity.WARNING,
                    f"width {width:g}X < expected {config.expected_width}X",
                )
            )
    for counter in ERROR_COUNTERS:
        r = _num(values.get(f"infiniband.rate.{counter}"))
        if r is None or r <= 0:
            continue
        t = config.threshold(counter)
        level: Severity | None = (
            Severity.CRITICAL
            if t.crit is not None and r >= t.crit
            else Severity.WARNING
            if t.warn is not None and r >= t.warn
            else None
        )
        if level is None:
            continue
        if counter == "link_downed":
            word = "flapping" if level is Severity.CRITICAL else "went down"
            out.append(Problem("flapping", level, f"link {word}: {r:.2g} downs/min"))
        else:
            out.append(Problem("errors", level, f"{SHORT_NAMES[counter]} errors {r:.3g}/min"))
    return out


def worst(problems: list[Problem]) -> Severity:
    return max((p.severity for p in problems), default=Severity.OK)
