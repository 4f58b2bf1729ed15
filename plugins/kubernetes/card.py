"""The node card's "Kubernetes" section: state, why, GPUs, and the pods on the node."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from console.plugin import CardLine, Severity
from console.store import StoreView

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Node

CARD_TITLE = "Kubernetes"
MAX_PODS = 12
GLYPH = {Severity.OK: "●", Severity.WARNING: "▲", Severity.CRITICAL: "✖", Severity.UNKNOWN: "?"}


def _since(ts: object) -> str:
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        return ""
    age = max(0, int(time.time() - ts))
    text = f"{age}s" if age < 120 else f"{age // 60}m" if age < 7200 else f"{age // 3600}h"
    return f" for {text}"


def state_severity(allocation: object) -> Severity:
    if allocation == "not-ready":
        return Severity.CRITICAL
    if allocation in ("cordoned", "drained"):
        return Severity.WARNING
    if allocation == "ready":
        return Severity.OK
    return Severity.UNKNOWN


def card(store: StoreView, node: Node) -> Sequence[CardLine]:
    r = store.readings_for(node.name)
    if "kubernetes.allocation" not in r:
        return []

    def v(metric: str) -> object:
        reading = r.get(f"kubernetes.{metric}")
        return None if reading is None else reading.value

    alloc = v("allocation")
    sev = state_severity(alloc)
    why = r["kubernetes.allocation"].detail if alloc is None else ""  # e.g. no series, its age
    shown = f"{alloc} in {v('cluster') or '?'}" if alloc is not None else "unknown"
    shown += f" ({why})" if why else ""
    lines = [CardLine("state", f"{GLYPH[sev]} {shown}", sev)]
    if v("reason"):
        by = f" by {v('reason_by')}" if v("reason_by") else ""
        lines.append(CardLine("why", f"{v('reason')}{by}{_since(v('reason_since'))}", sev))
    if v("drain"):
        lines.append(CardLine("drain", str(v("drain")), Severity.WARNING))
    if v("conditions"):
        lines.append(CardLine("conditions", str(v("conditions")), Severity.WARNING))
    if v("taints"):
        lines.append(CardLine("taints", str(v("taints"))))
    cap, allocatable, used = v("gpu_capacity"), v("gpu_allocatable"), v("gpu_allocated")
    if cap is not None:
        gsev = Severity.WARNING if allocatable is not None and allocatable != cap else Severity.OK
        lines.append(
            CardLine(
                "GPUs",
                f"{used if used is not None else '?'} of "
                f"{allocatable if allocatable is not None else '?'} "
                f"allocatable allocated (capacity {cap}) "
                f"{v('gpu_product') or ''}".rstrip(),
                gsev,
            )
        )
    if v("mig"):
        lines.append(CardLine("MIG", str(v("mig"))))
    pod_list = v("pod_list")
    if isinstance(pod_list, str) and pod_list:
        rows = [line.split("\t") for line in pod_list.splitlines()]
        rows.sort(key=lambda x: (x[3:4] == ["ds"], x[0]))
        for row in rows[:MAX_PODS]:
            key, status, gpus = row[0], row[1], row[2] if len(row) > 2 else "0"
            psev = Severity.OK if status == "Running" else Severity.WARNING
            extra = f" {gpus} GPU" if gpus not in ("", "0") else ""
            lines.append(CardLine("pod", f"{GLYPH[psev]} {key} {status}{extra}", psev))
        if len(rows) > MAX_PODS:
            lines.append(CardLine("pod", f"+{len(rows) - MAX_PODS} more"))
    return lines
