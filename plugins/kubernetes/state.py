"""What the console knows of one cluster (kept current by the watches), and what it means.

``ClusterState`` is a plain cache: nodes, pods and FailedScheduling events by
key, replaced by a list and patched by watch events. The functions below
derive, purely, what the Store gets: per node its scheduler state (the
``console.workloads`` conventions) and per cluster the queue summary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from plugins.kubernetes.parse import ANN_AT, ANN_BY, ANN_REASON, GPU, MIG_PREFIX, parse_time
from plugins.kubernetes.parse_events import EventInfo, short_reason
from plugins.kubernetes.parse_nodes import NodeInfo
from plugins.kubernetes.parse_pods import PodInfo

MAX_WORKLOADS = 6
"""Pods named in ``kubernetes.workloads`` before ``+N more``."""


@dataclass
class ClusterState:
    """The watched objects of one cluster."""

    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    pods: dict[str, PodInfo] = field(default_factory=dict)
    events: dict[str, EventInfo] = field(default_factory=dict)
    version: int = 0

    def _bump(self) -> None:
        self.version += 1

    def replace_nodes(self, items: Iterable[NodeInfo]) -> None:
        self.nodes = {n.name: n for n in items}
        self._bump()

    def replace_pods(self, items: Iterable[PodInfo]) -> None:
        self.pods = {p.key: p for p in items}
        self._bump()

    def replace_events(self, items: Iterable[EventInfo]) -> None:
        self.events = {f"{e.namespace}/{e.name}": e for e in items}
        self._bump()

    def apply_node(self, kind: str, node: NodeInfo) -> None:
        if kind == "DELETED":
            self.nodes.pop(node.name, None)
        else:
            self.nodes[node.name] = node
        self._bump()

    def apply_pod(self, kind: str, pod: PodInfo) -> None:
        if kind == "DELETED":
            self.pods.pop(pod.key, None)
        else:
            self.pods[pod.key] = pod
        self._bump()

    def apply_event(self, kind: str, event: EventInfo) -> None:
        key = f"{event.namespace}/{event.name}"
        if kind == "DELETED":
            self.events.pop(key, None)
        else:
            self.events[key] = event
        self._bump()

    def pods_on(self, node: str) -> list[PodInfo]:
        return sorted((p for p in self.pods.values() if p.node == node), key=lambda p: p.key)

    def scheduling_event(self, pod: PodInfo) -> EventInfo | None:
        """The latest FailedScheduling event about ``pod``."""
        found = [
            e
            for e in self.events.values()
            if e.reason == "FailedScheduling"
            and e.object_name == pod.name
            and (e.object_namespace or e.namespace) == pod.namespace
            and (e.object_uid is None or pod.uid is None or e.object_uid == pod.uid)
        ]
        return max(found, key=lambda e: e.last_seen or 0.0) if found else None


# --------------------------------------------------------------------------- nodes


def evictable(pod: PodInfo) -> bool:
    """What ``kubectl drain`` evicts: not DaemonSet-managed, not mirror, not finished."""
    return not (pod.daemonset or pod.mirror or pod.terminated)


def active(pod: PodInfo) -> bool:
    return not pod.terminated


@dataclass(frozen=True, slots=True)
class NodeView:
    """One node in scheduler terms (see ``console.workloads``)."""

    allocation: str
    drained: bool
    reason: str | None
    reason_by: str | None
    reason_since: float | None
    workloads: str
    gpu_allocated: int
    mig_allocated: Mapping[str, int]
    pods: int
    evictable: int


def gpu_allocated(pods: Iterable[PodInfo]) -> dict[str, int]:
    """GPU resources requested by the pods that hold them (scheduled, not finished)."""
    out: dict[str, int] = {}
    for p in pods:
        if active(p) and p.node:
            for k, v in p.gpus.items():
                out[k] = out.get(k, 0) + v
    return out


def describe_pod(pod: PodInfo) -> str:
    """``ml/train-0 (8 GPU)``; ``inference/nb-1 (1 mig-1g.6gb)``."""
    parts = []
    if pod.gpu:
        parts.append(f"{pod.gpu} GPU")
    parts += [f"{v} {k.removeprefix('nvidia.com/')}" for k, v in pod.gpus.items() if k != GPU]
    text = pod.key + (f" ({', '.join(parts)})" if parts else "")
    if pod.status_text != "Running":
        text += f" {pod.status_text}"
    return text


def workloads_text(pods: list[PodInfo]) -> str:
    """What runs on the node, for other plugins' previews: workload pods, GPU users first."""
    work = [p for p in pods if evictable(p)]
    work.sort(key=lambda p: (-sum(p.gpus.values()), p.key))
    names = [describe_pod(p) for p in work[:MAX_WORKLOADS]]
    if len(work) > MAX_WORKLOADS:
        names.append(f"+{len(work) - MAX_WORKLOADS} more")
    daemons = sum(1 for p in pods if active(p) and (p.daemonset or p.mirror))
    if names and daemons:
        names.append(f"and {daemons} DaemonSet pods")
    return "; ".join(names)


def node_view(node: NodeInfo, pods: list[PodInfo]) -> NodeView:
    live = [p for p in pods if active(p)]
    n_evictable = sum(1 for p in pods if evictable(p))
    ready = node.ready
    cond = node.condition("Ready")
    reason = by = None
    since: float | None = None
    if node.unschedulable:
        reason = node.annotations.get(ANN_REASON) or "cordoned"
        by = node.annotations.get(ANN_BY)
        since = parse_time(node.annotations.get(ANN_AT))
        if since is None:
            taint = next(
                (t for t in node.taints if t.key == "node.kubernetes.io/unschedulable"), None
            )
            since = taint.since if taint else None
    if ready is not True:
        word = "NotReady" if ready is False else "Unknown"
        why = (cond.message or cond.reason) if cond else "no Ready condition"
        text = f"{word}: {why}"
        reason = f"{text}; cordoned: {reason}" if reason else text
        since = cond.since if cond else None
        by = None
    if ready is not True:
        allocation = "not-ready"
    elif node.unschedulable:
        allocation = "drained" if n_evictable == 0 else "cordoned"
    else:
        allocation = "ready"
    alloc = gpu_allocated(live)
    return NodeView(
        allocation=allocation,
        drained=node.unschedulable and n_evictable == 0,
        reason=reason,
        reason_by=by,
        reason_since=since,
        workloads=workloads_text(pods),
        gpu_allocated=alloc.get(GPU, 0),
        mig_allocated={k: v for k, v in alloc.items() if k.startswith(MIG_PREFIX)},
        pods=len(live),
        evictable=n_evictable,
    )


def mig_text(node: NodeInfo, allocated: Mapping[str, int]) -> str | None:
    """``mig-1g.10gb 3/7`` per MIG resource (allocated/allocatable); None without MIG."""
    alloc = node.mig_allocatable or node.mig_capacity
    if not alloc:
        return None
    return ", ".join(
        f"{k.removeprefix('nvidia.com/')} {allocated.get(k, 0)}/{v}"
        for k, v in sorted(alloc.items())
    )


# --------------------------------------------------------------------------- cluster


@dataclass(frozen=True, slots=True)
class Pending:
    pod: PodInfo
    reason: str
    message: str | None
    wait_s: float | None
    attempts: int | None


def pending_pods(state: ClusterState, now: float) -> list[Pending]:
    """Pods waiting to be scheduled or started, longest first, with their reason."""
    out = []
    for pod in state.pods.values():
        if pod.phase != "Pending" or pod.deleting_since is not None:
            continue
        event = state.scheduling_event(pod)
        message = (event.message if event else None) or pod.unschedulable_message
        if pod.node is None:
            reason = short_reason(message) or pod.unschedulable_reason or "waiting for scheduler"
        else:
            reason = pod.waiting_reason or "ContainerCreating"
            message = None
        wait = now - pod.created if pod.created is not None else None
        out.append(Pending(pod, reason, message, wait, event.count if event else None))
    out.sort(key=lambda p: (-(p.wait_s or 0.0), p.pod.key))
    return out


@dataclass(frozen=True, slots=True)
class GpuTotals:
    total: int | None
    allocated: int | None
    idle: int | None
    unavailable: int | None


def gpu_totals(state: ClusterState) -> GpuTotals:
    """Whole GPUs: total (capacity), allocated (pod requests), unavailable (on not-ready or
    cordoned nodes, or not allocatable: unhealthy), idle (the rest)."""
    known = [n for n in state.nodes.values() if n.gpu_capacity is not None]
    if not known:
        return GpuTotals(None, None, None, None)
    total = allocated = unavailable = 0
    for node in known:
        cap = node.gpu_capacity or 0
        used = gpu_allocated(state.pods_on(node.name)).get(GPU, 0)
        total += cap
        allocated += used
        if node.ready is not True or node.unschedulable:
            unavailable += max(0, cap - used)
        else:
            alloc = node.gpu_allocatable if node.gpu_allocatable is not None else cap
            unavailable += max(0, cap - alloc)
    idle = max(0, total - allocated - unavailable)
    return GpuTotals(total, allocated, idle, unavailable)


def mig_totals(state: ClusterState) -> str:
    """``mig-1g.6gb 3/8 allocated`` summed over the cluster ('' without MIG)."""
    total: dict[str, int] = {}
    used: dict[str, int] = {}
    for node in state.nodes.values():
        for k, v in (node.mig_allocatable or node.mig_capacity).items():
            total[k] = total.get(k, 0) + v
    for k, v in gpu_allocated(state.pods.values()).items():
        if k.startswith(MIG_PREFIX):
            used[k] = used.get(k, 0) + v
    return ", ".join(
        f"{k.removeprefix('nvidia.com/')} {used.get(k, 0)}/{v}" for k, v in sorted(total.items())
    )


def operator_problems(state: ClusterState, namespace: str) -> list[PodInfo]:
    """GPU Operator pods that are not Running and ready (Succeeded validators are fine)."""
    bad = []
    for pod in state.pods.values():
        if pod.namespace != namespace or pod.phase == "Succeeded":
            continue
        if pod.phase != "Running" or pod.waiting_reason or pod.deleting_since is not None:
            bad.append(pod)
    return sorted(bad, key=lambda p: p.key)
