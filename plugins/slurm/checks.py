"""Alerts and checks over the Store: nodes out of service, GPU jobs waiting too long."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from console.plugin import CheckSpec, Finding, Severity, Target
from console.store import StoreView
from console.workloads import service_reason
from plugins.slurm.config import clusters, config_of
from plugins.slurm.status import duration, node_severity, queue_status

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory


def node_key(node: str) -> str:
    """One key per node whatever its state, so the alert keeps its age across drain -> down."""
    return f"slurm.node:{node}"


def alerts(store: StoreView, inventory: Inventory) -> Sequence[Finding]:
    findings: list[Finding] = []
    now = time.time()
    for node, reading in sorted(store.by_metric("slurm.allocation").items()):
        alloc = reading.value if isinstance(reading.value, str) else None
        sev = node_severity(alloc)
        if sev < Severity.WARNING:
            continue
        why = service_reason(store, node, "slurm")
        text = f"{node} {alloc} in Slurm"
        if why.reason:
            text += f": {why.reason}"
        if why.by:
            text += f" (by {why.by}"
            text += f", {duration(now - why.since)} ago)" if why.since else ")"
        findings.append(Finding(sev, node, text, key=node_key(node), node=node))
    long_wait = config_of(inventory).long_wait_h * 3600
    for name, cfg in clusters(inventory).items():
        q = queue_status(store, name)
        old = [
            w for w in q.waits if (w.get("gpus") or 0) > 0 and (w.get("wait_s") or 0) > long_wait
        ]
        if old:
            w = old[0]
            findings.append(
                Finding(
                    Severity.WARNING,
                    f"slurm:{name}",
                    f"{name}: {len(old)} GPU job(s) pending over {duration(long_wait)}; "
                    f"job {w.get('job')} ({w.get('user')}) {duration(w.get('wait_s'))}: "
                    f"{w.get('reason')}",
                    key=f"slurm.long_wait:{name}",
                    node=cfg.controller,
                )
            )
    return findings


def check_in_service(store: StoreView, target: Target) -> Finding:
    """OK when Slurm may place jobs on the node."""
    alloc = store.value(target.name, "slurm.allocation")
    sev = node_severity(alloc if isinstance(alloc, str) else None)
    why = service_reason(store, target.name, "slurm")
    text = f"{target.name} {alloc or 'not seen'} in Slurm" + (
        f": {why.reason}" if why.reason else ""
    )
    return Finding(sev, target.name, text, key=node_key(target.name), node=target.name)


def check_drained(store: StoreView, target: Target) -> Finding:
    """OK when no Slurm job runs on the node and none will start (before a GPU reset)."""
    drained = store.value(target.name, "slurm.drained")
    alloc = store.value(target.name, "slurm.allocation")
    if drained is None:
        return Finding(Severity.UNKNOWN, target.name, f"{target.name}: Slurm drain state unknown",
                       key=f"slurm.drained:{target.name}", node=target.name)  # fmt: skip
    sev = Severity.OK if drained else Severity.WARNING
    return Finding(sev, target.name, f"{target.name} {alloc} in Slurm",
                   key=f"slurm.drained:{target.name}", node=target.name)  # fmt: skip


def check_responding(store: StoreView, target: Target) -> Finding:
    """OK when Slurm hears from the node (not DOWN / not responding); drained is fine."""
    alloc = store.value(target.name, "slurm.allocation")
    why = service_reason(store, target.name, "slurm")
    text = f"{target.name} {alloc or 'not seen'} in Slurm" + (
        f": {why.reason}" if why.reason else ""
    )
    if not isinstance(alloc, str) or alloc == "unknown":
        sev = Severity.UNKNOWN
    else:
        sev = Severity.CRITICAL if alloc == "down" else Severity.OK
    return Finding(sev, target.name, text, key=f"slurm.responding:{target.name}", node=target.name)


def check_controller(store: StoreView, target: Target) -> Finding:
    """OK when the cluster's controller answered the last read (primary or backup)."""
    name = target.name.removeprefix("slurm:")
    status = next(
        (
            st
            for st in store.collector_statuses()
            if st.collector in ("slurm.cluster", "slurm.prom") and st.target == name
        ),
        None,
    )
    key = f"slurm.controller:{name}"
    if status is None or status.last_attempt is None:
        return Finding(Severity.UNKNOWN, f"slurm:{name}", f"{name}: controller not read yet",
                       key=key)  # fmt: skip
    if status.last_error is not None:
        return Finding(Severity.CRITICAL, f"slurm:{name}",
                       f"{name}: no controller answers: {status.last_error}", key=key)  # fmt: skip
    via = queue_status(store, name).via
    return Finding(Severity.OK, f"slurm:{name}", f"{name}: controller answers"
                   + (f" (via {via})" if via else ""), key=key)  # fmt: skip


CHECKS = (
    CheckSpec("slurm.in_service", "Slurm may place jobs on the node", "node", check_in_service),
    CheckSpec(
        "slurm.controller",
        "The cluster's controller (primary or backup) answers",
        "cluster",
        check_controller,
    ),
    CheckSpec("slurm.drained", "No Slurm job runs or starts on the node", "node", check_drained),
    CheckSpec(
        "slurm.responding",
        "Slurm hears from the node (drained is fine)",
        "node",
        check_responding,
        metrics=("slurm.allocation", "slurm.reason"),
        pane="slurm.queue",
    ),
)
