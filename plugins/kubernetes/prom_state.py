"""kube-state-metrics' series -> the ``ClusterState`` the watches build (pure).

The Prometheus source rebuilds, per cluster, the same nodes and pods the API
watches give (``parse_nodes.NodeInfo``, ``parse_pods.PodInfo``) from one refresh
of kube-state-metrics' families, so the rest (``state.node_view``,
``gpu_totals``, ``pending_pods``, ``collect.node_readings`` ...) is shared and
both sources agree by construction. What KSM does not carry stays unknown:

- conditions' reason, message and transition time (a NotReady node's reason says
  so, its ``reason_since`` is None); taints' ``timeAdded``;
- events: a pending pod's reason is its PodScheduled reason (``Unschedulable``,
  from ``kube_pod_status_unschedulable``), not the scheduler's message;
- node labels and annotations, unless the site allowlists them
  (``--metric-labels-allowlist=nodes=[nvidia.com/gpu.product,...]``,
  ``--metric-annotations-allowlist=nodes=[dcconsole.io/cordon-reason,...]``).

Resources come sanitised (``nvidia.com/mig-1g.10gb`` is ``nvidia_com_mig_1g_10gb``)
and are turned back; label and annotation names likewise by a fixed table.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from console.sources.fleet import LIVE, Frame
from console.transports.prometheus import Sample
from plugins.kubernetes.parse import ANN_AT, ANN_BY, ANN_REASON, GPU, MIG_PREFIX
from plugins.kubernetes.parse_nodes import Condition, NodeInfo, Taint
from plugins.kubernetes.parse_pods import PodInfo
from plugins.kubernetes.state import ClusterState

NO_MESSAGE = "condition message not in kube-state-metrics"
"""What a NotReady node's reason says instead of the kubelet's message."""
GPU_RESOURCES = 'resource=~"nvidia_com_gpu|nvidia_com_mig_.+"'
#: KSM label -> the node label the console reads (allowlisted at the site).
NODE_LABELS = {
    f"label_{k.replace('.', '_').replace('/', '_').replace('-', '_')}": k
    for k in (
        "nvidia.com/gpu.product",
        "nvidia.com/gpu.count",
        "nvidia.com/mig.strategy",
        "nvidia.com/mig.config",
        "nvidia.com/mig.config.state",
    )
}
NODE_ANNOTATIONS = {
    f"annotation_{k.replace('.', '_').replace('/', '_').replace('-', '_')}": k
    for k in (ANN_REASON, ANN_BY, ANN_AT)
}
CONDITION_ORDER = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable", "Ready")
_MIG = re.compile(r"^nvidia_com_mig_(\d+)g_(\d+)gb(?:_(\w+))?$")


def resource_name(sanitised: str) -> str | None:
    """``nvidia_com_gpu`` -> ``nvidia.com/gpu``; ``nvidia_com_mig_1g_10gb`` ->
    ``nvidia.com/mig-1g.10gb`` (``_me`` -> ``+me``); other resources: None."""
    if sanitised == "nvidia_com_gpu":
        return GPU
    m = _MIG.match(sanitised)
    if m:
        extra = f"+{m.group(3).replace('_', '+')}" if m.group(3) else ""
        return f"{MIG_PREFIX}{m.group(1)}g.{m.group(2)}gb{extra}"
    if sanitised.startswith("nvidia_com_mig_"):
        return MIG_PREFIX + sanitised.removeprefix("nvidia_com_mig_")
    return None


@dataclass
class KsmCluster:
    """What one refresh says about one cluster."""

    state: ClusterState = field(default_factory=ClusterState)
    node_ts: dict[str, float] = field(default_factory=dict)
    """Kubernetes node name -> its last sample (the liveness family's timestamp)."""
    annotations_exported: bool = False
    """Whether KSM exports the console's cordon annotations (the site's allowlist)."""


PodKey = tuple[str, str, str, str]
"""(cluster, namespace, pod, uid)."""


def _gpus(rows: Iterable[tuple[str, float | None]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for raw, value in rows:
        name = resource_name(raw)
        if name is not None and value is not None and value > 0:
            out[name] = max(out.get(name, 0), int(value))
    return out


def build_states(
    frame: Frame,
    cluster_of: Callable[[Mapping[str, str]], str | None],
    fresh: Callable[[float], bool],
) -> dict[str, KsmCluster]:
    """Per cluster, the nodes (those with a fresh liveness sample) and pods of ``frame``."""
    out: dict[str, KsmCluster] = defaultdict(KsmCluster)

    def each(key: str) -> Iterable[tuple[str, Sample]]:
        for s in frame.family(key):
            c = cluster_of(s.labels)
            if c is not None:
                yield c, s

    for c, s in each(LIVE):
        name = s.labels.get("node")
        if name and s.value is not None:
            out[c].node_ts[name] = max(out[c].node_ts.get(name, s.value), s.value)
    node_keys = {(c, n) for c, k in out.items() for n, ts in k.node_ts.items() if fresh(ts)}
    _nodes(frame, each, node_keys, out)
    _pods(frame, each, out)
    return dict(out)


def _nodes(
    frame: Frame,
    each: Callable[[str], Iterable[tuple[str, Sample]]],
    keys: set[tuple[str, str]],
    out: dict[str, KsmCluster],
) -> None:
    unsched: dict[tuple[str, str], bool] = {}
    conditions: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    taints: dict[tuple[str, str], set[tuple[str, str, str]]] = defaultdict(set)
    capacity: dict[tuple[str, str], list[tuple[str, float | None]]] = defaultdict(list)
    allocatable: dict[tuple[str, str], list[tuple[str, float | None]]] = defaultdict(list)
    labels: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    annotations: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for c, s in each("kube_node_spec_unschedulable"):
        unsched[(c, s.labels.get("node", ""))] = bool(s.value)
    for c, s in each("kube_node_status_condition"):
        if s.value:  # the series of the condition's current status is 1, the others 0
            status = s.labels.get("status", "").capitalize()
            conditions[(c, s.labels.get("node", ""))][s.labels.get("condition", "")] = status
    for c, s in each("kube_node_spec_taint"):
        taint = (s.labels.get("key", ""), s.labels.get("value", ""), s.labels.get("effect", ""))
        taints[(c, s.labels.get("node", ""))].add(taint)
    for family, resources in (
        ("kube_node_status_capacity", capacity),
        ("kube_node_status_allocatable", allocatable),
    ):
        for c, s in each(family):
            node_key = (c, s.labels.get("node", ""))
            resources[node_key].append((s.labels.get("resource", ""), s.value))
    for family, table, names in (
        ("kube_node_labels", NODE_LABELS, labels),
        ("kube_node_annotations", NODE_ANNOTATIONS, annotations),
    ):
        for c, s in each(family):
            if family == "kube_node_annotations":
                out[c].annotations_exported = True
            for k, v in s.labels.items():
                if k in table and v:
                    names[(c, s.labels.get("node", ""))][table[k]] = v
    for c, name in sorted(keys):
        key = (c, name)
        conds = conditions.get(key, {})
        order = {t: i for i, t in enumerate(CONDITION_ORDER)}
        out[c].state.nodes[name] = NodeInfo(
            name=name,
            labels=labels.get(key, {}),
            annotations=annotations.get(key, {}),
            unschedulable=unsched.get(key, False),
            taints=tuple(Taint(k, v or None, e or None) for k, v, e in sorted(taints[key])),
            conditions=tuple(
                Condition(t, st, None, NO_MESSAGE if t == "Ready" else None)
                for t, st in sorted(conds.items(), key=lambda kv: (order.get(kv[0], 99), kv[0]))
            ),
            capacity=_gpus(capacity.get(key, [])),
            allocatable=_gpus(allocatable.get(key, [])),
        )


def _pods(
    frame: Frame,
    each: Callable[[str], Iterable[tuple[str, Sample]]],
    out: dict[str, KsmCluster],
) -> None:
    def key(c: str, s: Sample) -> PodKey:
        lab = s.labels
        return (c, lab.get("namespace", ""), lab.get("pod", ""), lab.get("uid", ""))

    info: dict[PodKey, Mapping[str, str]] = {}
    for c, s in each("kube_pod_info"):
        info[key(c, s)] = s.labels
    phase = {key(c, s): s.labels.get("phase") for c, s in each("kube_pod_status_phase") if s.value}
    unsched = {key(c, s) for c, s in each("kube_pod_status_unschedulable") if s.value}
    created = {key(c, s): s.value for c, s in each("kube_pod_created")}
    deleting = {key(c, s): s.value for c, s in each("kube_pod_deletion_timestamp")}
    waiting: dict[PodKey, tuple[str, str]] = {}
    for c, s in each("kube_pod_container_status_waiting_reason"):
        if s.value:  # the first container (by name) that waits, as the API lists them
            cand = (s.labels.get("container", ""), s.labels.get("reason", ""))
            waiting[key(c, s)] = min(waiting.get(key(c, s), cand), cand)
    requests: dict[PodKey, list[tuple[str, float | None]]] = defaultdict(list)
    for family in (
        "kube_pod_container_resource_requests",
        "kube_pod_init_container_resource_requests",
    ):
        # Containers' requests are summed on the server, init containers' maxed: the
        # scheduler's effective request is the larger of the two, per resource.
        for c, s in each(family):
            requests[key(c, s)].append((s.labels.get("resource", ""), s.value))
    for k, labels in info.items():
        c, namespace, name, uid = k
        kind = labels.get("created_by_kind") or None
        out[c].state.pods[f"{namespace}/{name}"] = PodInfo(
            namespace=namespace,
            name=name,
            uid=uid or None,
            node=labels.get("node") or None,
            phase=phase.get(k),
            created=created.get(k),
            deleting_since=deleting.get(k),
            owner_kind=kind,
            owner_name=labels.get("created_by_name") or None,
            # A static pod's controller is its Node (the kubelet's mirror pod).
            mirror=kind == "Node",
            gpus=_gpus(requests.get(k, [])),
            unschedulable_reason="Unschedulable" if k in unsched else None,
            waiting_reason=waiting[k][1] if k in waiting else None,
        )
