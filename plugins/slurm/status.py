"""What the Store says about Slurm: one node's state and one cluster's queue, typed.

Shared by the pane, the node card, the alerts and the checks (no Textual here).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from console.plugin import Severity
from console.store import StoreView
from plugins.slurm.collect import cluster_target

GLYPH = {Severity.OK: "●", Severity.UNKNOWN: "?", Severity.WARNING: "▲", Severity.CRITICAL: "✖"}


def node_severity(allocation: str | None) -> Severity:
    if allocation is None or allocation == "unknown":
        return Severity.UNKNOWN
    if allocation == "down":
        return Severity.CRITICAL
    if allocation in ("drain", "drained"):
        return Severity.WARNING
    return Severity.OK


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """A cluster's queue as the last read found it (None: unknown)."""

    cluster: str
    gpus_total: int | None = None
    gpus_alloc: int | None = None
    gpus_idle: int | None = None
    gpus_unavail: int | None = None
    jobs_running: int | None = None
    jobs_pending: int | None = None
    gpus_pending: int | None = None
    pending_by_reason: dict[str, int] = field(default_factory=dict)
    waits: list[dict[str, Any]] = field(default_factory=list)
    partitions: list[dict[str, Any]] = field(default_factory=list)
    nodes_out: int | None = None
    via: str = ""
    ts: float | None = None


def queue_status(store: StoreView, cluster: str) -> QueueStatus:
    reading = store.latest(cluster_target(cluster), "slurm.queue")
    if reading is None or not isinstance(reading.value, str):
        return QueueStatus(cluster)
    try:
        data = json.loads(reading.value)
    except ValueError:
        return QueueStatus(cluster)
    if not isinstance(data, dict):
        return QueueStatus(cluster)
    reasons = data.get("pending_by_reason")
    return QueueStatus(
        cluster,
        gpus_total=_int(data.get("gpus_total")),
        gpus_alloc=_int(data.get("gpus_alloc")),
        gpus_idle=_int(data.get("gpus_idle")),
        gpus_unavail=_int(data.get("gpus_unavail")),
        jobs_running=_int(data.get("jobs_running")),
        jobs_pending=_int(data.get("jobs_pending")),
        gpus_pending=_int(data.get("gpus_pending")),
        pending_by_reason={
            str(k): v
            for k, v in (reasons if isinstance(reasons, dict) else {}).items()
            if isinstance(v, int)
        },
        waits=[w for w in data.get("waits") or [] if isinstance(w, dict)],
        partitions=[p for p in data.get("partitions") or [] if isinstance(p, dict)],
        nodes_out=_int(data.get("nodes_out")),
        via=reading.detail.removeprefix("via "),
        ts=reading.ts,
    )


def duration(seconds: float | None) -> str:
    """``3d4h``, ``2h05m``, ``7m``: a wait, short."""
    if seconds is None:
        return "—"
    s = int(max(0, seconds))
    if s >= 86400:
        return f"{s // 86400}d{(s % 86400) // 3600}h"
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 60}m"


def gpu_line(q: QueueStatus) -> str:
    def n(v: int | None) -> str:
        return "?" if v is None else str(v)

    return (
        f"{n(q.gpus_total)} total · {n(q.gpus_alloc)} alloc · {n(q.gpus_idle)} idle · "
        f"{n(q.gpus_unavail)} unavail"
    )


def pending_line(q: QueueStatus) -> str:
    if q.jobs_pending is None:
        return "unknown"
    head = f"{q.jobs_pending} jobs"
    if q.gpus_pending:
        head += f" ({q.gpus_pending} GPU)"
    reasons = " · ".join(f"{r} {c}" for r, c in q.pending_by_reason.items())
    return f"{head}: {reasons}" if reasons else head
