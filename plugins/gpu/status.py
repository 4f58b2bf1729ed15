"""What the Store knows about GPUs, as views for panes, the card, checks and actions."""

from __future__ import annotations

import json
import time
import weakref
from dataclasses import dataclass
from typing import Any

from console.plugin import Severity
from console.store import StoreView
from console.workloads import scheduler_views
from plugins.gpu.model import BAD_THROTTLE, CRITICAL_XIDS

GLYPH = {Severity.OK: "●", Severity.UNKNOWN: "?", Severity.WARNING: "▲", Severity.CRITICAL: "✖"}


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


@dataclass(frozen=True, slots=True)
class GpuView:
    node: str
    index: int
    state: str | None
    util: float | None
    mem_pct: float | None
    temp: float | None
    power: float | None
    processes: int | None
    problems: tuple[tuple[Severity, str], ...]
    mig: bool | None
    mig_pending: bool | None

    @property
    def severity(self) -> Severity:
        return max((s for s, _ in self.problems), default=Severity.OK)


def gpu_indexes(store: StoreView, node: str) -> list[int]:
    out = []
    for t in store.targets_with_prefix(node + "/"):
        tail = t[len(node) + 1 :]
        if tail.isdigit():
            out.append(int(tail))
    return sorted(out)


def problems_of(r: dict[str, Any], hot_c: float = 85.0) -> list[tuple[Severity, str]]:
    out: list[tuple[Severity, str]] = []
    state = r.get("gpu.state")
    if state == "lost":
        out.append((Severity.CRITICAL, "lost (fallen off the bus)"))
    elif state == "error":
        out.append((Severity.WARNING, "nvidia-smi printed ERR!"))
    xid = r.get("gpu.xid_last")
    if isinstance(xid, int) and xid in CRITICAL_XIDS:
        out.append((Severity.CRITICAL, f"XID {xid} {CRITICAL_XIDS[xid]}"))
    ecc = _num(r.get("gpu.ecc_unc_volatile"))
    if ecc:
        out.append((Severity.CRITICAL, f"{ecc:.0f} uncorrectable ECC errors"))
    if r.get("gpu.remap_pending") is True:
        out.append((Severity.WARNING, "row remap pending (reset needed)"))
    if r.get("gpu.remap_failure") is True:
        out.append((Severity.CRITICAL, "row remap failed"))
    throttle = r.get("gpu.throttle")
    if isinstance(throttle, str) and throttle:
        bad = sorted(set(throttle.split(",")) & BAD_THROTTLE)
        if bad:
            out.append((Severity.WARNING, "throttled: " + ",".join(bad)))
    temp = _num(r.get("gpu.temp_c"))
    if temp is not None and temp >= hot_c and not any("throttled" in t for _, t in out):
        out.append((Severity.WARNING, f"hot {temp:.0f}°C"))
    down = r.get("gpu.nvlink_down")
    if isinstance(down, int) and down > 0:
        out.append((Severity.WARNING, f"{down} NVLink links inactive"))
    return out


def gpu_view(store: StoreView, node: str, index: int, hot_c: float = 85.0) -> GpuView:
    readings = store.readings_for(f"{node}/{index}")
    r = {m: x.value for m, x in readings.items()}
    procs = r.get("gpu.processes")
    state = r.get("gpu.state")
    return GpuView(
        node=node,
        index=index,
        state=state if isinstance(state, str) else None,
        util=_num(r.get("gpu.util_pct")),
        mem_pct=_num(r.get("gpu.mem_pct")),
        temp=_num(r.get("gpu.temp_c")),
        power=_num(r.get("gpu.power_w")),
        processes=procs if isinstance(procs, int) and not isinstance(procs, bool) else None,
        problems=tuple(problems_of(r, hot_c)),
        mig=_flag(r.get("gpu.mig_current")),
        mig_pending=_flag(r.get("gpu.mig_pending")),
    )


_VIEWS: weakref.WeakKeyDictionary[Any, dict[str, tuple[int, float, list[GpuView]]]] = (
    weakref.WeakKeyDictionary()
)


def node_views(store: StoreView, node: str, hot_c: float = 85.0) -> list[GpuView]:
    """Every GPU of ``node`` as views, remembered until the node's readings change.

    The grid, the unhealthy and idle panes and the alert rules all look at the same
    GPUs on the same refresh; at fleet size computing them once matters.
    """
    try:
        memo = _VIEWS.setdefault(store, {})
    except TypeError:  # a StoreView that cannot be weakly referenced: no memory
        return [gpu_view(store, node, i, hot_c) for i in gpu_indexes(store, node)]
    version = store.node_version(node)
    hit = memo.get(node)
    if hit is not None and hit[0] == version and hit[1] == hot_c:
        return hit[2]
    views = [gpu_view(store, node, i, hot_c) for i in gpu_indexes(store, node)]
    memo[node] = (version, hot_c, views)
    return views


def _flag(v: Any) -> bool | None:
    return v if isinstance(v, bool) else None


def allocation(store: StoreView, node: str) -> str | None:
    """The node's allocation in its scheduler(s): the busiest state wins."""
    states = [v.allocation for v in scheduler_views(store, node) if v.allocation]
    for s in ("alloc", "mixed", "drain", "drained", "idle", "down"):
        if s in states:
            return s
    return states[0] if states else None


def mig_layout(store: StoreView, node: str, index: int) -> list[dict[str, Any]]:
    raw = store.value(f"{node}/{index}", "gpu.mig")
    if not isinstance(raw, str) or not raw:
        return []
    try:
        data = json.loads(raw)
    except ValueError:
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def drift(
    store: StoreView, node: str, expected_driver: str | None, expected_cuda: str | None
) -> str | None:
    """``driver 535.161.08 (expected 550.90.07)``, or None when as expected or unknown."""
    parts = []
    driver = store.value(node, "gpu.driver")
    cuda = store.value(node, "gpu.cuda")
    if expected_driver and isinstance(driver, str) and driver != expected_driver:
        parts.append(f"driver {driver} (expected {expected_driver})")
    if expected_cuda and isinstance(cuda, str) and cuda != expected_cuda:
        parts.append(f"CUDA {cuda} (expected {expected_cuda})")
    return "; ".join(parts) or None


def low_since(store: StoreView, node: str, index: int, limit: float) -> float | None:
    """Seconds the GPU's utilisation has stayed at or below ``limit`` (from its history)."""
    reading = store.latest(f"{node}/{index}", "gpu.util_pct")
    if reading is None or not isinstance(reading.value, int | float) or reading.value > limit:
        return None
    history = store.history(f"{node}/{index}", "gpu.util_pct")
    run = 0
    for v in reversed(history):
        if v != v or v > limit:  # NaN (unknown) or busy ends the idle run
            break
        run += 1
    return float(run)


def idle_seconds(
    store: StoreView, node: str, index: int, limit: float, interval: float
) -> float | None:
    samples = low_since(store, node, index, limit)
    return None if samples is None else samples * interval


def now() -> float:
    return time.time()
