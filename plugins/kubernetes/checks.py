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


def check_gpus_allocatable(store: StoreView, target: Target) -> Finding:
    """OK when the node is Ready and the device plugin offers all its GPUs to the scheduler.

    The GPUs expected are ``attrs["gpus"]`` (a scorecard's parameter) or the inventory's
    ``hardware.gpu_count`` (``attrs["gpu_count"]``); a node expecting none passes when
    Ready, and a node with MIG devices is held to its capacity only. Fewer allocatable
    than the capacity (a GPU the device plugin marked unhealthy) fails too.
    """
    ready = check_node_ready(store, target)
    if ready.severity != Severity.OK:
        return ready
    n = target.name
    raw = target.attrs.get("gpus", target.attrs.get("gpu_count"))
    expected = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    cap = store.value(n, "kubernetes.gpu_capacity")
    alloc = store.value(n, "kubernetes.gpu_allocatable")
    cap_n = cap if isinstance(cap, int) and not isinstance(cap, bool) else None
    alloc_n = alloc if isinstance(alloc, int) and not isinstance(alloc, bool) else None
    if alloc_n is None:
        if not expected:
            return Finding(Severity.OK, n, f"{n}: Ready, no GPUs (none expected)", node=n)
        return Finding(
            Severity.CRITICAL,
            n,
            f"{n}: Ready but no nvidia.com/gpu allocatable ({expected} expected): "
            "device plugin not running?",
            node=n,
        )
    mig = store.value(n, "kubernetes.mig")
    if isinstance(mig, str) and mig:
        # MIG (mixed strategy): partitioned GPUs are offered as MIG devices, not as
        # nvidia.com/gpu, so the inventory's count of whole GPUs cannot be compared.
        expected = None
    short = [
        f"{want} {what}"
        for want, what in ((cap_n, "in capacity"), (expected, "expected"))
        if want is not None and alloc_n < want
    ]
    mig_text = f" + MIG {mig}" if isinstance(mig, str) and mig else ""
    if short:
        return Finding(
            Severity.WARNING,
            n,
            f"{n}: only {alloc_n} GPUs allocatable, " + ", ".join(short),
            node=n,
        )
    return Finding(Severity.OK, n, f"{n}: Ready, {alloc_n} GPUs allocatable{mig_text}", node=n)


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


def check_api(store: StoreView, target: Target) -> Finding:
    """OK when the cluster's API answered the last read (lists and watches live)."""
    name = target.name.removeprefix("k8s:")
    status = next(
        (
            st
            for st in store.collector_statuses()
            if st.collector in ("kubernetes.cluster", "kubernetes.prom") and st.target == name
        ),
        None,
    )
    key = f"kubernetes.api:{name}"
    if status is None or status.last_attempt is None:
        return Finding(Severity.UNKNOWN, f"k8s:{name}", f"{name}: API not read yet", key=key)
    if status.last_error is not None:
        what = "no data from Prometheus" if status.collector == "kubernetes.prom" else (
            "the API does not answer"
        )  # fmt: skip
        text = f"{name}: {what}: {status.last_error}"
        return Finding(Severity.CRITICAL, f"k8s:{name}", text, key=key)
    if status.collector == "kubernetes.prom":  # actions still need the API itself
        text = f"{name}: kube-state-metrics reports it through Prometheus"
        return Finding(Severity.OK, f"k8s:{name}", text, key=key)
    return Finding(Severity.OK, f"k8s:{name}", f"{name}: the API answers", key=key)


CHECKS = (
    CheckSpec("kubernetes.node_ready", "Kubernetes node Ready", "node", check_node_ready),
    CheckSpec("kubernetes.api", "The cluster's API answers", "cluster", check_api),
    CheckSpec(
        "kubernetes.gpus_allocatable",
        "Kubernetes node Ready with every GPU allocatable",
        "node",
        check_gpus_allocatable,
    ),
    CheckSpec("kubernetes.node_drained", "Kubernetes node drained", "node", check_node_drained),
    CheckSpec("kubernetes.operator", "GPU Operator healthy", "cluster", check_operator),
)
