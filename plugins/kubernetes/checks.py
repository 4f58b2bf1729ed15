"""Alerts and health checks from what the Kubernetes collector published."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from console.plugin import CheckSpec, Finding, Severity, Target
from console.store import StoreView
from plugins.kubernetes.config import config_of

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory


def alerts(store: StoreView, inventory: Inventory) -> Sequence[Finding]:
    """Stable keys: ``kubernetes.not_ready:<node>``, ``kubernetes.gpus_unhealthy:<node>``,
    ``kubernetes.operator:<cluster>``, ``kubernetes.pending:<cluster>``."""
    cfg = config_of(inventory.plugin_configs.get("kubernetes"))
    out: list[Finding] = []
    for node, reading in store.by_metric("kubernetes.allocation").items():
        if reading.value == "not-ready":
            out.append(
                Finding(
                    Severity.CRITICAL,
                    node,
                    f"Kubernetes node {reading.detail}",
                    key=f"kubernetes.not_ready:{node}",
                    node=node,
                )
            )
    for node, reading in store.by_metric("kubernetes.gpu_allocatable").items():
        cap = store.value(node, "kubernetes.gpu_capacity")
        if isinstance(cap, int) and isinstance(reading.value, int) and reading.value < cap:
            out.append(
                Finding(
                    Severity.WARNING,
                    node,
                    f"{cap - reading.value} of {cap} GPUs not allocatable "
                    f"(device plugin or GPU unhealthy)",
                    key=f"kubernetes.gpus_unhealthy:{node}",
                    node=node,
                )
            )
    for target, reading in store.by_metric("kubernetes.operator_unhealthy").items():
        if isinstance(reading.value, int) and reading.value > 0:
            pods = store.value(target, "kubernetes.operator_pods")
            first = str(pods).splitlines()[0].replace("\t", " ") if pods else ""
            out.append(
                Finding(
                    Severity.WARNING,
                    target,
                    f"{reading.value} GPU Operator pods not running ({first})",
                    key=f"kubernetes.operator:{target}",
                )
            )
    for target, reading in store.by_metric("kubernetes.longest_wait_s").items():
        wait = reading.value
        if isinstance(wait, int | float) and wait > cfg.pending_warn_s:
            n = store.value(target, "kubernetes.pending")
            out.append(
                Finding(
                    Severity.WARNING,
                    target,
                    f"{n} pods pending, the longest for {int(wait) // 60} min",
                    key=f"kubernetes.pending:{target}",
                )
            )
    return out


def check_node_ready(store: StoreView, target: Target) -> Finding:
    alloc = store.value(target.name, "kubernetes.allocation")
    if alloc is None or alloc == "unknown":
        return Finding(Severity.UNKNOWN, target.name, "Kubernetes state unknown", node=target.name)
    if alloc == "not-ready":
        return Finding(
            Severity.CRITICAL, target.name, "Kubernetes node not Ready", node=target.name
        )
    return Finding(Severity.OK, target.name, f"Kubernetes node {alloc}", node=target.name)


def check_node_drained(store: StoreView, target: Target) -> Finding:
    drained = store.value(target.name, "kubernetes.drained")
    if drained is None:
        return Finding(
            Severity.UNKNOWN, target.name, "Kubernetes drain state unknown", node=target.name
        )
    if drained is True:
        return Finding(Severity.OK, target.name, "drained in Kubernetes", node=target.name)
    work = store.value(target.name, "kubernetes.workloads") or "cordon it first"
    return Finding(
        Severity.WARNING, target.name, f"not drained in Kubernetes: {work}", node=target.name
    )


def check_operator(store: StoreView, target: Target) -> Finding:
    key = target.name if target.name.startswith("k8s:") else f"k8s:{target.name}"
    bad = store.value(key, "kubernetes.operator_unhealthy")
    if bad is None:
        return Finding(Severity.UNKNOWN, key, "GPU Operator state unknown")
    if bad:
        return Finding(Severity.WARNING, key, f"{bad} GPU Operator pods not running")
    return Finding(Severity.OK, key, "GPU Operator pods running")


CHECKS = (
    CheckSpec("kubernetes.node_ready", "Kubernetes node Ready", "node", check_node_ready),
    CheckSpec("kubernetes.node_drained", "Kubernetes node drained", "node", check_node_drained),
    CheckSpec("kubernetes.operator", "GPU Operator healthy", "cluster", check_operator),
)
