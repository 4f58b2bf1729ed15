"""The collector: publishes each cluster's watched state to the Store.

One target per cluster. The first run starts the cluster's watcher (list +
watch, see ``watch.py``) and waits for its first full list; every run then
turns the current state into readings, so the Store is as fresh as the
watches (plus at most one ``interval``). A watcher that lost the API raises
here: the poller records the failure and the panes show it stale.

Per inventory node (``console.workloads`` conventions, plus what the card shows):
``kubernetes.allocation`` ready / cordoned / drained / not-ready / unknown,
``kubernetes.workloads``, ``kubernetes.drained``, ``kubernetes.reason``,
``kubernetes.reason_by``, ``kubernetes.reason_since``, and the node's GPUs.
Per cluster (target ``k8s:<name>``): GPUs total / allocated / idle /
unavailable, pending pods by reason, the longest waits, GPU Operator health.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from console.plugin import CollectContext, CollectorSpec, Reading, Target, Value
from plugins.kubernetes import progress
from plugins.kubernetes.config import (
    clusters_of,
    config_of,
    inventory_name,
    member_nodes,
    reads_prometheus,
)
from plugins.kubernetes.state import (
    ClusterState,
    gpu_totals,
    mig_text,
    mig_totals,
    node_view,
    operator_problems,
    pending_pods,
)
from plugins.kubernetes.watch import watcher_for

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory

FIRST_SYNC_S = 10.0
MAX_WAITS = 5


def cluster_target(name: str) -> str:
    return f"k8s:{name}"


def cluster_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    cfg = config_of(config)
    return [
        Target("cluster", name, attrs={"interval": cfg.interval})
        for name in clusters_of(inventory)
        if not reads_prometheus(inventory, config, name)  # then plugins.kubernetes.prom reads it
    ]


def _fmt_wait(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def node_readings(
    state: ClusterState, cluster: str, inventory: Inventory, now: float
) -> list[Reading]:
    out: list[Reading] = []
    seen: set[str] = set()

    def put(target: str, metric: str, value: Value, detail: str = "") -> None:
        out.append(
            Reading(
                target,
                f"kubernetes.{metric}",
                value,
                ts=now,
                source="kubernetes",
                detail=detail,
                node=target,
            )
        )

    for k8s_name, node in sorted(state.nodes.items()):
        name = inventory_name(k8s_name, inventory.nodes)
        if name is None:
            continue
        seen.add(name)
        pods = state.pods_on(k8s_name)
        view = node_view(node, pods)
        put(name, "allocation", view.allocation, view.reason or "")
        put(name, "workloads", view.workloads)
        put(name, "drained", view.drained)
        put(name, "reason", view.reason or "")
        put(name, "reason_by", view.reason_by)
        put(name, "reason_since", view.reason_since)
        put(name, "cluster", cluster)
        put(name, "node_name", k8s_name)
        put(name, "ready", node.ready)
        put(name, "cordoned", node.unschedulable)
        put(
            name,
            "conditions",
            ", ".join(f"{c.type}={c.status}" for c in node.bad_conditions if c.type != "Ready"),
        )
        put(name, "taints", ", ".join(str(t) for t in node.taints))
        put(name, "gpu_capacity", node.gpu_capacity)
        put(name, "gpu_allocatable", node.gpu_allocatable)
        put(name, "gpu_allocated", view.gpu_allocated if node.gpu_capacity is not None else None)
        put(name, "gpu_product", node.gpu_product)
        put(
            name,
            "mig",
            mig_text(node, view.mig_allocated),
            f"strategy {node.mig_strategy}, config {node.mig_config} ({node.mig_config_state})"
            if node.mig_strategy
            else "",
        )
        put(name, "pods", view.pods)
        put(
            name,
            "pod_list",
            "\n".join(
                f"{p.key}\t{p.status_text}\t{sum(p.gpus.values())}\t{'ds' if p.daemonset else ''}"
                for p in pods
                if not p.terminated
            ),
        )
        drain = progress.running(name)
        put(name, "drain", drain.text() if drain else "")
    for name in member_nodes(inventory, cluster):
        if name not in seen:
            put(name, "allocation", "unknown", f"not a node of cluster {cluster}")
            put(name, "workloads", None)
            put(name, "drained", None)
            put(name, "reason", f"not registered in cluster {cluster}")
            put(name, "reason_by", None)
            put(name, "reason_since", None)
    return out


def cluster_readings(
    state: ClusterState, cluster: str, operator_ns: str, now: float, watcher: Any = None
) -> list[Reading]:
    target = cluster_target(cluster)
    out: list[Reading] = []

    def put(metric: str, value: Value, detail: str = "") -> None:
        out.append(
            Reading(
                target, f"kubernetes.{metric}", value, ts=now, source="kubernetes", detail=detail
            )
        )

    gpus = gpu_totals(state)
    put("gpus_total", gpus.total)
    put("gpus_allocated", gpus.allocated)
    put("gpus_idle", gpus.idle)
    put("gpus_unavailable", gpus.unavailable)
    put("mig_summary", mig_totals(state))
    nodes = list(state.nodes.values())
    put("nodes", len(nodes))
    put("nodes_not_ready", sum(1 for n in nodes if n.ready is not True))
    put("nodes_cordoned", sum(1 for n in nodes if n.unschedulable))
    pending = pending_pods(state, now)
    put("pending", len(pending))
    by_reason: dict[str, int] = {}
    for p in pending:
        by_reason[p.reason] = by_reason.get(p.reason, 0) + 1
    put(
        "pending_reasons",
        "\n".join(f"{n}\t{r}" for r, n in sorted(by_reason.items(), key=lambda x: (-x[1], x[0]))),
    )
    put("longest_wait_s", pending[0].wait_s if pending else 0.0)
    put(
        "longest_waits",
        "\n".join(
            f"{_fmt_wait(p.wait_s)}\t{p.pod.key}\t{sum(p.pod.gpus.values())}\t{p.reason}"
            for p in pending[:MAX_WAITS]
        ),
    )
    bad = operator_problems(state, operator_ns)
    put("operator_unhealthy", len(bad))
    put("operator_pods", "\n".join(f"{p.key}\t{p.node or '-'}\t{p.status_text}" for p in bad))
    if watcher is not None:
        put("watch", "live", f"{watcher.relists} resyncs, {watcher.rewatches} watch restarts")
        put("resyncs", watcher.relists)
    return out


async def collect_cluster(ctx: CollectContext, target: Target) -> Sequence[Reading]:
    ref = clusters_of(ctx.inventory).get(target.name)
    if ref is None:
        raise LookupError(f"no Kubernetes cluster {target.name!r} in the inventory")
    cfg = config_of(ctx.config)
    watcher = watcher_for(ref, cfg)
    if not watcher.synced.is_set():
        try:
            async with asyncio.timeout(FIRST_SYNC_S):
                while not watcher.synced.is_set():
                    if watcher.error is not None:
                        raise RuntimeError(watcher.error)
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise RuntimeError(
                watcher.error or f"{ref.name}: no full list within {FIRST_SYNC_S:g}s"
            ) from None
    if watcher.error is not None:
        raise RuntimeError(watcher.error)
    now = time.time()
    return [
        *node_readings(watcher.state, ref.name, ctx.inventory, now),
        *cluster_readings(watcher.state, ref.name, cfg.gpu_operator_namespace, now, watcher),
    ]


COLLECTORS = (
    CollectorSpec(
        id="kubernetes.cluster",
        targets=cluster_targets,
        collect=collect_cluster,
        interval=2.0,
        timeout=FIRST_SYNC_S + 5.0,
        label="Kubernetes nodes, pods and events (watches)",
    ),
)
