"""Alerts and checks: unhealthy GPUs, idle-but-allocated GPUs, version drift, no driver."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from console.plugin import CheckSpec, Finding, Severity, Target
from console.store import StoreView
from plugins.gpu.collect import COLLECTORS
from plugins.gpu.config import config_of, expected_versions, gpu_nodes
from plugins.gpu.status import allocation, drift, gpu_indexes, gpu_view, idle_seconds

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory

FAST_INTERVAL = COLLECTORS[0].interval


@dataclass(frozen=True, slots=True)
class IdleGpu:
    node: str
    index: int
    seconds: float
    allocation: str
    processes: int | None


def idle_allocated(store: StoreView, inventory: Inventory) -> list[IdleGpu]:
    """GPUs allocated to work (scheduler alloc/mixed, or processes) but idle for N minutes."""
    c = config_of(inventory)
    out = []
    for node in gpu_nodes(inventory):
        alloc = allocation(store, node.name)
        for i in gpu_indexes(store, node.name):
            v = gpu_view(store, node.name, i, c.hot_c)
            held = alloc in ("alloc", "mixed") or (alloc is None and (v.processes or 0) > 0)
            if not held or v.state == "lost":
                continue
            secs = idle_seconds(store, node.name, i, c.idle_util_pct, FAST_INTERVAL)
            if secs is not None and secs >= c.idle_minutes * 60:
                out.append(IdleGpu(node.name, i, secs, alloc or "processes", v.processes))
    return out


def alerts(store: StoreView, inventory: Inventory) -> Sequence[Finding]:
    c = config_of(inventory)
    out: list[Finding] = []
    for node in gpu_nodes(inventory):
        smi = store.value(node.name, "gpu.smi")
        if isinstance(smi, str) and smi != "ok":
            out.append(
                Finding(
                    Severity.CRITICAL,
                    node.name,
                    f"{node.name}: {smi}",
                    key=f"gpu.smi:{node.name}",
                    node=node.name,
                )
            )
        d = drift(store, node.name, *expected_versions(node, c))
        if d:
            out.append(
                Finding(
                    Severity.WARNING,
                    node.name,
                    f"{node.name}: {d}",
                    key=f"gpu.drift:{node.name}",
                    node=node.name,
                )
            )
        for i in gpu_indexes(store, node.name):
            v = gpu_view(store, node.name, i, c.hot_c)
            for sev, text in v.problems:
                kind = text.split()[0].lower()
                out.append(
                    Finding(
                        sev,
                        f"{node.name}/{i}",
                        f"{node.name} GPU {i}: {text}",
                        key=f"gpu.health:{node.name}/{i}:{kind}",
                        node=node.name,
                    )
                )
    for idle in idle_allocated(store, inventory):
        out.append(
            Finding(
                Severity.WARNING,
                f"{idle.node}/{idle.index}",
                f"{idle.node} GPU {idle.index}: allocated ({idle.allocation}) but idle "
                f"{idle.seconds / 60:.0f} min",
                key=f"gpu.idle:{idle.node}/{idle.index}",
                node=idle.node,
            )
        )
    return out


def check_healthy(store: StoreView, target: Target) -> Finding:
    """OK when every GPU of the node answers and none has a health problem."""
    node = target.node or target.name
    indexes = gpu_indexes(store, node)
    if not indexes:
        return Finding(
            Severity.UNKNOWN,
            node,
            f"{node}: no GPU reading yet",
            key=f"gpu.healthy:{node}",
            node=node,
        )
    worst = Severity.OK
    texts = []
    for i in indexes:
        v = gpu_view(store, node, i)
        worst = max(worst, v.severity)
        texts += [f"GPU {i} {t}" for _, t in v.problems]
    msg = f"{node}: {len(indexes)} GPUs" + (": " + "; ".join(texts) if texts else " healthy")
    return Finding(worst, node, msg, key=f"gpu.healthy:{node}", node=node)


CHECKS = (
    CheckSpec(
        "gpu.healthy", "Every GPU answers, no XID/ECC/remap/throttle problem", "node", check_healthy
    ),
)
