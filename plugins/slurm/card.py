"""The node card's "Slurm" section: state, reason (who, since when), GPUs, the jobs there."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from console.plugin import CardLine, Severity
from console.store import StoreView
from plugins.slurm.status import GLYPH, duration, node_severity

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Node

CARD_TITLE = "Slurm"


def card(store: StoreView, node: Node) -> Sequence[CardLine]:
    readings = store.readings_for(node.name)
    alloc_r = readings.get("slurm.allocation")
    if alloc_r is None:
        if node.clusters.slurm:
            return [CardLine("state", f"? not seen in {node.clusters.slurm} yet", Severity.UNKNOWN)]
        return []
    alloc = alloc_r.value if isinstance(alloc_r.value, str) else None
    sev = node_severity(alloc)
    state = readings.get("slurm.state")
    cluster = readings.get("slurm.cluster")
    text = f"{GLYPH[sev]} {alloc or 'unknown'}"
    if alloc is None and alloc_r.detail:  # e.g. no series in Prometheus, with its age
        text += f" ({alloc_r.detail})"
    if state is not None and isinstance(state.value, str):
        text += f" ({state.value})"
    if cluster is not None and isinstance(cluster.value, str):
        text += f" · cluster {cluster.value}"
    lines = [CardLine("state", text, sev)]
    reason = readings.get("slurm.reason")
    if reason is not None and isinstance(reason.value, str) and reason.value:
        by = readings.get("slurm.reason_by")
        since = readings.get("slurm.reason_since")
        extra = []
        if by is not None and by.value:
            extra.append(f"by {by.value}")
        if since is not None and isinstance(since.value, int | float):
            extra.append(f"{duration(time.time() - float(since.value))} ago")
        lines.append(CardLine("reason", reason.value + (f" ({', '.join(extra)})" if extra else ""),
                              sev))  # fmt: skip
    reboot = readings.get("slurm.reboot")
    nxt = readings.get("slurm.next_state")
    if reboot is not None and reboot.value == "timed out":
        lines.append(CardLine("reboot", "timed out (not back within ResumeTimeout): DOWN",
                              Severity.CRITICAL))  # fmt: skip
    elif nxt is not None and nxt.value:
        when = reboot.value if reboot is not None and reboot.value else "requested"
        lines.append(CardLine("reboot", f"{when}, then {nxt.value}", Severity.WARNING))
    total, used = readings.get("slurm.gpus_total"), readings.get("slurm.gpus_used")
    if total is not None and total.value:
        u = used.value if used is not None and used.value is not None else "?"
        lines.append(CardLine("GPUs", f"{u} of {total.value} allocated"))
    work = readings.get("slurm.workloads")
    if work is None or work.value is None:
        lines.append(CardLine("jobs", "unknown", Severity.UNKNOWN))
    elif not work.value:
        lines.append(CardLine("jobs", "none running"))
    else:
        for i, job in enumerate(str(work.value).split("; ")):
            lines.append(CardLine("jobs" if i == 0 else "", job))
    return lines
