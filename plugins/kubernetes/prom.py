"""Kubernetes from Prometheus: kube-state-metrics' series -> the readings the watches give.

One instant query per KSM family per refresh for every cluster at once
(nodes: conditions, unschedulable, taints, GPU capacity and allocatable,
allowlisted labels and annotations; pods: info with node and owner, phase,
unschedulable, waiting reason, GPU requests, created and deletion times), each
aggregated on the server to the labels the console keeps. ``prom_state`` turns
them into the ``ClusterState`` the watches build, and ``collect.node_readings`` /
``cluster_readings`` into the same Store keys.

Which cluster: ``console.sources.clusters.ClusterResolver`` (a ``cluster`` label,
the ``instance`` a node declares as ``exporters.kube-state-metrics``, or the
cluster its nodes belong to). A cluster without current series (KSM down, or
not scraped) is failing and its readings unknown with their age; a member node
KSM does not list is unknown with its age (never 0). Actions (cordon, drain,
delete a pod) do not look at the source: they go to the cluster's API.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from console.plugin import Absent, CollectContext, FleetResult, Reading, Target, fleet_collector
from console.sources.clusters import ClusterResolver
from console.sources.config import prom_client
from console.sources.fleet import (
    LIVE,
    Frame,
    NodeMatcher,
    PromPlan,
    by,
    date_absent,
    fetch,
    no_series,
    no_series_error,
    remember,
    selector,
)
from plugins.kubernetes.collect import cluster_readings, cluster_target, node_readings
from plugins.kubernetes.config import (
    clusters_of,
    config_of,
    inventory_name,
    member_nodes,
    reads_prometheus,
)
from plugins.kubernetes.prom_state import GPU_RESOURCES, KsmCluster, build_states

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory

EXPORTER = "kube-state-metrics"
"""The name a node's ``exporters:`` gives kube-state-metrics' address (``instance``)."""
SOURCE = "prometheus"
LIVENESS = "kube_node_spec_unschedulable"
"""One series per node, every node: its timestamps date the cluster's nodes."""
C = ("instance", "cluster")
NODE = (*C, "node")
POD = (*C, "namespace", "pod", "uid")

PLAN = PromPlan(
    exporter=EXPORTER,
    families={
        "kube_node_spec_unschedulable": by(LIVENESS, NODE),
        "kube_node_status_condition": by(
            "kube_node_status_condition == 1", (*NODE, "condition", "status")
        ),
        "kube_node_spec_taint": by("kube_node_spec_taint", (*NODE, "key", "value", "effect")),
        "kube_node_status_capacity": by(
            f"kube_node_status_capacity{{{GPU_RESOURCES}}}", (*NODE, "resource")
        ),
        "kube_node_status_allocatable": by(
            f"kube_node_status_allocatable{{{GPU_RESOURCES}}}", (*NODE, "resource")
        ),
        # Labels and annotations vary with the site's allowlist: kept whole.
        "kube_node_labels": "kube_node_labels",
        "kube_node_annotations": "kube_node_annotations",
        "kube_pod_info": by("kube_pod_info", (*POD, "node", "created_by_kind", "created_by_name")),
        "kube_pod_status_phase": by("kube_pod_status_phase == 1", (*POD, "phase")),
        "kube_pod_status_unschedulable": by("kube_pod_status_unschedulable", POD),
        "kube_pod_container_status_waiting_reason": by(
            "kube_pod_container_status_waiting_reason > 0", (*POD, "container", "reason")
        ),
        "kube_pod_container_resource_requests": by(
            f"kube_pod_container_resource_requests{{{GPU_RESOURCES}}}", (*POD, "resource"), "sum"
        ),
        "kube_pod_init_container_resource_requests": by(
            f"kube_pod_init_container_resource_requests{{{GPU_RESOURCES}}}", (*POD, "resource")
        ),
        "kube_pod_created": by("kube_pod_created", POD),
        "kube_pod_deletion_timestamp": by("kube_pod_deletion_timestamp", POD),
    },
    liveness=LIVENESS,
)

NODE_METRICS = (
    "kubernetes.allocation",
    "kubernetes.workloads",
    "kubernetes.drained",
    "kubernetes.reason",
    "kubernetes.reason_by",
    "kubernetes.reason_since",
    "kubernetes.ready",
    "kubernetes.cordoned",
    "kubernetes.conditions",
    "kubernetes.taints",
    "kubernetes.gpu_capacity",
    "kubernetes.gpu_allocatable",
    "kubernetes.gpu_allocated",
    "kubernetes.mig",
    "kubernetes.pods",
    "kubernetes.pod_list",
)
"""What a member node missing from KSM's series becomes unknown for."""
CLUSTER_METRICS = (
    "kubernetes.gpus_total",
    "kubernetes.gpus_allocated",
    "kubernetes.gpus_idle",
    "kubernetes.gpus_unavailable",
    "kubernetes.mig_summary",
    "kubernetes.nodes",
    "kubernetes.nodes_not_ready",
    "kubernetes.nodes_cordoned",
    "kubernetes.pending",
    "kubernetes.pending_reasons",
    "kubernetes.longest_wait_s",
    "kubernetes.longest_waits",
    "kubernetes.operator_unhealthy",
    "kubernetes.operator_pods",
)
DATED = ("kubernetes.allocation", "kubernetes.nodes")
"""One reading per node and per cluster whose date ``remember`` keeps for later absences."""
NOT_EXPORTED = {
    "kubernetes.reason_since": "transition times are not in kube-state-metrics",
    "kubernetes.pending_reasons": "the scheduler's messages (events) are not in "
    "kube-state-metrics: reasons are the pods' PodScheduled reasons",
    "kubernetes.longest_waits": "reasons are the pods' PodScheduled reasons (no events in "
    "kube-state-metrics)",
}


def prom_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    """The clusters read from Prometheus (the plugin's ``source``, or the cluster's own)."""
    interval = config_of(config).prometheus_interval
    return [
        Target("cluster", name, attrs={"interval": interval})
        for name in clusters_of(inventory)
        if reads_prometheus(inventory, config, name)
    ]


def _resolver(frame: Frame, inventory: Inventory, wanted: Sequence[str]) -> ClusterResolver:
    declared = {
        n.exporters[EXPORTER]: n.clusters.kubernetes
        for n in inventory.nodes.values()
        if n.exporters.get(EXPORTER) and n.clusters.kubernetes
    }
    resolver = ClusterResolver(wanted, declared)

    def member_of(labels: Any) -> str | None:
        name = inventory_name(str(labels.get("node", "")), inventory.nodes)
        node = inventory.nodes.get(name) if name else None
        return node.clusters.kubernetes if node is not None else None

    resolver.learn(frame.family(LIVE), member_of)
    return resolver


def map_ksm(
    frame: Frame,
    inventory: Inventory,
    targets: Sequence[Target],
    *,
    stale_after: float,
    operator_namespace: str = "gpu-operator",
    now: float | None = None,
) -> FleetResult:
    """The readings of every target cluster and its nodes from one refresh (pure)."""
    now = time.time() if now is None else now
    wanted = [t.name for t in targets]
    resolver = _resolver(frame, inventory, wanted)
    states = build_states(frame, resolver.cluster_of, lambda ts: now - ts <= stale_after)
    out: list[Reading] = []
    absent: list[Absent] = []
    errors: dict[str, str] = {}
    for cluster in wanted:
        ksm = states.get(cluster, KsmCluster())
        members = member_nodes(inventory, cluster)
        if not ksm.state.nodes:
            errors[cluster] = no_series_error("kube-state-metrics", f"cluster {cluster}")
            last = max(ksm.node_ts.values(), default=None)
            absent.append(no_series(cluster_target(cluster), CLUSTER_METRICS, last, None))
            absent += [no_series(m, NODE_METRICS, _last(ksm, m, inventory), m) for m in members]
            continue
        out += _readings(ksm, cluster, inventory, operator_namespace, now)
        listed = {inventory_name(k, inventory.nodes) for k in ksm.state.nodes}
        for m in members:
            if m not in listed:
                last = _last(ksm, m, inventory)
                why = "stale in Prometheus" if last is not None else (
                    f"not in kube-state-metrics' series (no node {m} in {cluster}?)"
                )  # fmt: skip
                absent.append(Absent(m, NODE_METRICS, why, last, m, SOURCE))
    return FleetResult(out, absent, errors)


def _last(ksm: KsmCluster, node: str, inventory: Inventory) -> float | None:
    seen = [ts for k, ts in ksm.node_ts.items() if inventory_name(k, inventory.nodes) == node]
    return max(seen) if seen else None


def _readings(
    ksm: KsmCluster, cluster: str, inventory: Inventory, operator_ns: str, now: float
) -> list[Reading]:
    """The watches' readings over the rebuilt state, from this source, dated at the scrape."""
    ts = max(ksm.node_ts[n] for n in ksm.state.nodes)
    listed = {inventory_name(k, inventory.nodes) for k in ksm.state.nodes}
    out = []
    for r in (
        *node_readings(ksm.state, cluster, inventory, now),
        *cluster_readings(ksm.state, cluster, operator_ns, now),
    ):
        if r.node is not None and r.target == r.node and r.target not in listed:
            continue  # a member KSM does not list: absent (the caller says so), not "unknown"
        detail = NOT_EXPORTED.get(r.metric, r.detail)
        if (
            r.metric == "kubernetes.reason"
            and r.value == "cordoned"
            and not ksm.annotations_exported
        ):
            detail = "the cordon reason is an annotation kube-state-metrics does not export here"
        out.append(dataclasses.replace(r, source=SOURCE, ts=ts, detail=detail))
    return out


async def collect_prom(ctx: CollectContext, targets: Sequence[Target]) -> FleetResult:
    """One refresh of every cluster read from Prometheus (one query per KSM family)."""
    cfg = config_of(ctx.config)
    client = prom_client(ctx)
    frame = await fetch(client, PLAN)
    result = map_ksm(
        frame,
        ctx.inventory,
        targets,
        stale_after=cfg.stale_after_s,
        operator_namespace=cfg.gpu_operator_namespace,
    )
    seen = {r.target: r.ts for r in result.readings if r.metric in DATED}
    remember(ctx.transports, "kubernetes.prom", seen)
    if not result.absent:
        return result
    # What vanished before this console saw it is dated from its raw samples, once;
    # by the node label only: KSM's instance is the whole cluster's.
    matcher = NodeMatcher(ctx.inventory, "", ("node",))
    nodes = {a.node for a in result.absent if a.node}
    inventory = ctx.inventory
    absent = await date_absent(
        client,
        result.absent,
        owner=ctx.transports,
        collector="kubernetes.prom",
        metric=LIVENESS,
        selectors={n: selector(matcher, n, inventory, "") for n in nodes},
        target_of=lambda node, labels: inventory_name(str(labels.get("node", "")), inventory.nodes),
    )
    return FleetResult(result.readings, absent, result.errors)


PROM_COLLECTOR = fleet_collector(
    "kubernetes.prom",
    prom_targets,
    collect_prom,
    interval=15.0,
    timeout=20.0,
    label="Kubernetes nodes and pods from Prometheus (kube-state-metrics)",
)
