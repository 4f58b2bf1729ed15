"""Slurm from Prometheus: a Slurm exporter's series -> the readings sinfo/squeue give.

Reads prometheus-slurm-exporter (vpenso's, 0.23 and later: its ``nodes``,
``node``, ``queue`` and ``users`` collectors), one instant query per family for
every cluster at once:

- ``slurm_node_cpu_total{node,status,partition}``: every node Slurm knows, its
  state (``status``: Slurm's state words joined by ``+``, ``idle+drain``; the long
  text state of older versions, ``drained``) and its partitions. The liveness
  metric: its sample timestamps date each node.
- ``slurm_node_gpu_total`` / ``slurm_node_gpu_alloc{node,status,gpu_type}``: GPUs per
  node (summed over GPU types on the server); a node Slurm reports without GPU
  series has no GPU GRES (0, as sinfo says).
- ``slurm_user_jobs_running_host{user,host}``: running jobs per user and node
  (``host`` may be a node list, ``gpu[01-02]``: expanded).
- ``slurm_queue_pending|running|completing|pending_dependency``: the queue.

What the exporter does not carry is unknown (None, and the detail says why),
never guessed: drain reasons (who, since when), the state after a pending
reboot, whether a DOWN node's reboot timed out, job ids and names (so job
actions offer no job list with this source; they and the node actions still run
on the controller directly), pending GPUs, pending reasons other than
Dependency, the longest waits.

Which cluster a series is: ``console.sources.clusters.ClusterResolver`` (a
``cluster`` label, the ``instance`` the controller node declares as
``exporters.slurm``, or the cluster its nodes belong to). A cluster without
current node series (exporter down, or its sinfo failing: vpenso then still
serves queue gauges, as zeros, which are not believed) is failing and all its
readings unknown with their age; a node of the cluster missing from fresh
series is unknown with its age too.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from console.plugin import (
    Absent,
    CollectContext,
    FleetResult,
    ParseError,
    Reading,
    Target,
    fleet_collector,
)
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
from plugins.slurm.collect import Snapshot, cluster_target, queue_summary
from plugins.slurm.config import as_config, clusters, reads_prometheus
from plugins.slurm.model import Partition, SlurmNode, split_state
from plugins.slurm.parse import expand_nodes

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory

EXPORTER = "slurm"
"""The name a node's ``exporters:`` gives the Slurm exporter's address (``instance``)."""
LIVENESS = "slurm_node_cpu_total"
GPU_TOTAL = "slurm_node_gpu_total"
GPU_ALLOC = "slurm_node_gpu_alloc"
HOST_JOBS = "slurm_user_jobs_running_host"
PENDING = "slurm_queue_pending"
RUNNING = "slurm_queue_running"
COMPLETING = "slurm_queue_completing"
PENDING_DEP = "slurm_queue_pending_dependency"
NODE_KEYS = ("instance", "cluster", "node")
CLUSTER_KEYS = ("instance", "cluster")
SOURCE = "prometheus"

PLAN = PromPlan(
    exporter=EXPORTER,
    families={
        GPU_TOTAL: by(GPU_TOTAL, NODE_KEYS, "sum"),
        GPU_ALLOC: by(GPU_ALLOC, NODE_KEYS, "sum"),
        HOST_JOBS: by(HOST_JOBS, ("instance", "cluster", "user", "host"), "sum"),
        **{q: by(q, CLUSTER_KEYS) for q in (PENDING, RUNNING, COMPLETING, PENDING_DEP)},
    },
    liveness=LIVENESS,
    history={"slurm.gpus_alloc": by(GPU_ALLOC, CLUSTER_KEYS, "sum")},
)

NODE_METRICS = (
    "slurm.allocation",
    "slurm.workloads",
    "slurm.drained",
    "slurm.reason",
    "slurm.reason_by",
    "slurm.reason_since",
    "slurm.state",
    "slurm.gpus_total",
    "slurm.gpus_used",
    "slurm.jobs",
    "slurm.partitions",
    "slurm.next_state",
    "slurm.reboot",
)
"""What a node missing from the exporter's series becomes unknown for."""
CLUSTER_METRICS = (
    "slurm.gpus_total",
    "slurm.gpus_alloc",
    "slurm.gpus_idle",
    "slurm.gpus_unavail",
    "slurm.jobs_running",
    "slurm.jobs_pending",
    "slurm.gpus_pending",
    "slurm.nodes_out",
    "slurm.queue",
    "slurm.live_jobs",
)
DATED = ("slurm.allocation", "slurm.queue")
"""One reading per node and per cluster whose date ``remember`` keeps for later absences."""
NO_REASON = "the Slurm exporter does not export drain reasons (scontrol show node has it)"
NO_JOBS = "job ids are not in the Slurm exporter's series"
_BASE = frozenset(
    ("idle", "allocated", "mixed", "down", "error", "future", "unknown", "invalid")
)  # fmt: skip


def prom_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    """The clusters read from Prometheus (the plugin's ``source``, or the cluster's own)."""
    interval = as_config(config).prometheus_interval
    return [
        Target("cluster", name, node=c.controller, attrs={"interval": interval})
        for name, c in clusters(inventory).items()
        if reads_prometheus(inventory, config, name)
    ]


def node_state(status: str) -> tuple[str, tuple[str, ...]]:
    """(base state, flags) from the exporter's ``status``: ``idle+drain`` (Slurm 23.02+'s
    state words, lowercased) or a long text state (``drained``, ``down*``)."""
    words = [w for w in status.strip().split("+") if w]
    if words and words[0].lower() in _BASE:
        return split_state([w.upper() for w in words])
    return split_state(status)


def _resolver(inventory: Inventory, wanted: Sequence[str]) -> ClusterResolver:
    """Instances declared on a controller (or a member) node name that node's cluster."""
    declared: dict[str, str] = {}
    for name, cluster in clusters(inventory).items():
        for host in (cluster.controller, cluster.backup_controller):
            node = inventory.nodes.get(host or "")
            if node is not None and node.exporters.get(EXPORTER):
                declared[node.exporters[EXPORTER]] = name
    for node in inventory.nodes.values():
        instance = node.exporters.get(EXPORTER)
        if instance and node.clusters.slurm and instance not in declared:
            declared[instance] = node.clusters.slurm
    return ClusterResolver(wanted, declared)


class _Frame:
    """One refresh's series grouped by cluster and node (pure)."""

    def __init__(self, frame: Frame, inventory: Inventory, wanted: Sequence[str]) -> None:
        self.matcher = NodeMatcher(inventory, EXPORTER, ("node",))
        members = {n.name: n.clusters.slurm for n in inventory.nodes.values() if n.clusters.slurm}
        self.resolver = _resolver(inventory, wanted)
        self.resolver.learn(frame.family(LIVE), lambda lab: members.get(self.node(lab) or ""))
        self.unmatched = 0
        self.live: dict[str, dict[str, tuple[float, Mapping[str, str]]]] = defaultdict(dict)
        for s in frame.family(LIVE):
            cluster, node = self.resolver.cluster_of(s.labels), self.node(s.labels)
            if cluster is None or node is None or s.value is None:
                self.unmatched += 1
                continue
            old = self.live[cluster].get(node)
            if old is None or s.value > old[0]:
                self.live[cluster][node] = (s.value, s.labels)
        self.gpu_total = self._per_node(frame, GPU_TOTAL)
        self.gpu_alloc = self._per_node(frame, GPU_ALLOC)
        self.host_jobs = self._host_jobs(frame)
        self.queue = {
            q: self._per_cluster(frame, q) for q in (PENDING, RUNNING, COMPLETING, PENDING_DEP)
        }
        self.history = frame.history

    def node(self, labels: Mapping[str, str]) -> str | None:
        """The inventory node a ``node`` label names, else Slurm's own name (as sinfo's)."""
        raw = labels.get("node", "")
        return (self.matcher.node_of({"node": raw}) or raw) if raw else None

    def _per_node(self, frame: Frame, key: str) -> dict[tuple[str, str], float]:
        # Two exporters of one cluster (primary and backup controller) say the same: max.
        out: dict[tuple[str, str], float] = {}
        for s in frame.family(key):
            cluster, node = self.resolver.cluster_of(s.labels), self.node(s.labels)
            if cluster is not None and node is not None and s.value is not None:
                out[(cluster, node)] = max(out.get((cluster, node), s.value), s.value)
        return out

    def _per_cluster(self, frame: Frame, key: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for s in frame.family(key):
            cluster = self.resolver.cluster_of(s.labels)
            if cluster is not None and s.value is not None:
                out[cluster] = max(out.get(cluster, s.value), s.value)
        return out

    def _host_jobs(self, frame: Frame) -> dict[str, dict[str, dict[str, int]]]:
        """cluster -> node -> user -> running jobs (summed per exporter, max over exporters)."""
        per: dict[tuple[str, str, str, str], int] = defaultdict(int)
        for s in frame.family(HOST_JOBS):
            cluster = self.resolver.cluster_of(s.labels)
            if cluster is None or s.value is None or s.value <= 0:
                continue
            try:
                hosts = expand_nodes(s.labels.get("host"))
            except ParseError:
                self.unmatched += 1
                continue
            for host in hosts:
                node = self.node({"node": host})
                if node is not None:
                    key = (s.labels.get("instance", ""), cluster, node, s.labels.get("user", "?"))
                    per[key] += int(s.value)
        out: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
        for (_, cluster, node, user), n in per.items():
            users = out[cluster][node]
            users[user] = max(users.get(user, 0), n)
        return out


def map_slurm(
    frame: Frame,
    inventory: Inventory,
    targets: Sequence[Target],
    *,
    stale_after: float,
    now: float | None = None,
) -> FleetResult:
    """The readings of every target cluster and its nodes from one refresh (pure)."""
    now = time.time() if now is None else now
    wanted = [t.name for t in targets]
    grouped = _Frame(frame, inventory, wanted)
    frame.unmatched = grouped.unmatched
    out: list[Reading] = list(_history(grouped))
    absent: list[Absent] = []
    errors: dict[str, str] = {}
    for target in targets:
        cluster = target.name
        members = [n.name for n in inventory.nodes.values() if n.clusters.slurm == cluster]
        seen = grouped.live.get(cluster, {})
        fresh = {n: v for n, v in seen.items() if now - v[0] <= stale_after}
        if not fresh:
            errors[cluster] = no_series_error("the Slurm exporter", f"cluster {cluster}")
            last = max((v[0] for v in seen.values()), default=None)
            absent.append(no_series(cluster_target(cluster), CLUSTER_METRICS, last, target.node))
            absent += [
                no_series(m, NODE_METRICS, seen[m][0] if m in seen else None, m) for m in members
            ]
            continue
        for name in sorted(set(members) | set(seen)):
            if name in fresh:
                continue
            why = "stale in Prometheus" if name in seen else "not in the Slurm exporter's series"
            last = seen[name][0] if name in seen else None
            absent.append(Absent(name, NODE_METRICS, why, last, name, SOURCE))
        out += _cluster(grouped, cluster, target.node, fresh, now)
    return FleetResult(out, absent, errors)


def _jobs_known(grouped: _Frame, cluster: str) -> bool:
    """Per-node jobs are known when the users collector reported, or nothing runs at all
    (a missing family must not read as "no job here": a GPU reset depends on it)."""
    return bool(grouped.host_jobs.get(cluster)) or grouped.queue[RUNNING].get(cluster) == 0


def _cluster(
    grouped: _Frame,
    cluster: str,
    controller: str | None,
    fresh: Mapping[str, tuple[float, Mapping[str, str]]],
    now: float,
) -> list[Reading]:
    out: list[Reading] = []
    nodes: list[SlurmNode] = []
    known = _jobs_known(grouped, cluster)
    for name, (ts, labels) in sorted(fresh.items()):
        total = grouped.gpu_total.get((cluster, name))
        alloc = grouped.gpu_alloc.get((cluster, name))
        state, flags = node_state(labels.get("status", ""))
        parts = labels.get("partition")
        node = SlurmNode(
            name=name,
            state=state,
            flags=flags,
            partitions=tuple(p for p in (parts or "").split(",") if p),
            gpus_total=0 if total is None and alloc is None else _int(total),
            gpus_used=0 if total is None and alloc is None else _int(alloc),
        )
        nodes.append(node)
        users = grouped.host_jobs.get(cluster, {}).get(name, {}) if known else None
        out += _node_readings(node, cluster, users, parts is not None, ts)
    last = max(v[0] for v in fresh.values())
    summary = queue_summary(Snapshot(nodes, [], _partitions(nodes), SOURCE), now)
    q = {k: v.get(cluster) for k, v in grouped.queue.items()}
    running = _int(q[RUNNING])
    if running is not None:
        running += int(q[COMPLETING] or 0)
    pending = _int(q[PENDING])
    reasons: dict[str, int] = {}
    if pending is not None:
        dep = min(pending, int(q[PENDING_DEP] or 0))
        reasons = {k: v for k, v in (("Dependency", dep), ("other reasons", pending - dep)) if v}
    summary.update(
        jobs_running=running,
        jobs_pending=pending,
        gpus_pending=None,
        pending_by_reason=reasons,
        waits=[],
        source=SOURCE,
    )
    target = cluster_target(cluster)

    def put(metric: str, value: Any, detail: str = "") -> None:
        out.append(Reading(target, metric, value, ts=last, source=SOURCE, detail=detail,
                           node=controller))  # fmt: skip

    for key in ("gpus_total", "gpus_alloc", "gpus_idle", "gpus_unavail", "jobs_running",
                "jobs_pending", "nodes_out"):  # fmt: skip
        put(f"slurm.{key}", summary[key])
    put("slurm.gpus_pending", None, "pending jobs' GPUs are not in the Slurm exporter's series")
    put("slurm.queue", json.dumps(summary, sort_keys=True), f"via {SOURCE}")
    put("slurm.live_jobs", None, NO_JOBS)
    return out


def _int(value: float | None) -> int | None:
    """A count; a negative or non-finite one is no count at all."""
    return int(value) if value is not None and 0 <= value < 2**53 else None


def _partitions(nodes: Sequence[SlurmNode]) -> list[Partition]:
    """Partitions as the nodes' labels give them: nodes and GPUs (no state: not exported)."""
    names: dict[str, list[SlurmNode]] = defaultdict(list)
    for n in nodes:
        for p in n.partitions:
            names[p].append(n)
    return [
        Partition(p, None, None, len(ns), sum(n.gpus_total or 0 for n in ns))
        for p, ns in sorted(names.items())
    ]


def _node_readings(
    node: SlurmNode,
    cluster: str,
    users: Mapping[str, int] | None,
    has_partitions: bool,
    ts: float,
) -> list[Reading]:
    alloc = node.allocation
    jobs = None if users is None else sum(users.values())
    if jobs is None:
        # Slurm's own state still says "nothing runs" for idle+DRAIN.
        drained: bool | None = True if alloc == "drained" else None if alloc == "down" else False
    else:
        drained = alloc in ("drained", "down") and jobs == 0
    rebooting = {"REBOOT_REQUESTED", "REBOOT_ISSUED"} & set(node.flags)
    out_of_service = node.out_of_service
    values: dict[str, tuple[Any, str]] = {
        "slurm.allocation": (alloc, ""),
        "slurm.workloads": (
            None if users is None else "; ".join(
                f"{u}: {n} job{'s' if n != 1 else ''}" for u, n in sorted(users.items())
            ),
            NO_JOBS,
        ),
        "slurm.drained": (drained, ""),
        "slurm.reason": (None, NO_REASON) if out_of_service else ("", ""),
        "slurm.reason_by": (None, NO_REASON) if out_of_service else ("", ""),
        "slurm.reason_since": (None, NO_REASON if out_of_service else ""),
        "slurm.state": (node.state_text, ""),
        "slurm.gpus_total": (node.gpus_total, ""),
        "slurm.gpus_used": (node.gpus_used, ""),
        "slurm.jobs": (jobs, "" if jobs is not None else NO_JOBS),
        "slurm.cluster": (cluster, ""),
        "slurm.partitions": (
            ",".join(node.partitions) if has_partitions else None,
            "" if has_partitions else "this exporter version has no partition label",
        ),
        "slurm.next_state": (None, "the state after a reboot is not exported") if rebooting
        else ("", ""),
        # "timed out" needs the reason text: a DOWN node's reboot state is unknown.
        "slurm.reboot": (node.reboot or "", "") if rebooting or node.state != "down"
        else (None, NO_REASON),
    }  # fmt: skip
    return [
        Reading(node.name, metric, value, ts=ts, source=SOURCE, detail=detail, node=node.name)
        for metric, (value, detail) in values.items()
    ]


def _history(grouped: _Frame) -> list[Reading]:
    """Backfilled cluster-wide allocated GPUs (query_range), oldest first."""
    out: list[Reading] = []
    for metric, series in grouped.history.items():
        for labels, points in series:
            cluster = grouped.resolver.cluster_of(labels)
            if cluster is None:
                continue
            target = cluster_target(cluster)
            out += [Reading(target, metric, v, ts=ts, source=SOURCE) for ts, v in points]
    out.sort(key=lambda r: r.ts)
    return out


async def collect_prom(ctx: CollectContext, targets: Sequence[Target]) -> FleetResult:
    """One refresh of every Slurm cluster read from Prometheus (one query per family)."""
    c = as_config(ctx.config)
    client = prom_client(ctx)
    frame = await fetch(
        client,
        PLAN,
        backfill=(ctx.transports, "slurm.prom", c.prometheus_interval, c.backfill_points),
    )
    result = map_slurm(frame, ctx.inventory, targets, stale_after=c.stale_after_s)
    seen = {r.target: r.ts for r in result.readings if r.metric in DATED}
    remember(ctx.transports, "slurm.prom", seen)
    if not result.absent:
        return result
    # What vanished before this console saw it is dated from its raw samples, once.
    # By the node label only: the exporter's instance is the whole cluster's.
    matcher = NodeMatcher(ctx.inventory, "", ("node",))
    nodes = {a.node for a in result.absent if a.node}
    absent = await date_absent(
        client,
        result.absent,
        owner=ctx.transports,
        collector="slurm.prom",
        metric=LIVENESS,
        selectors={n: selector(matcher, n, ctx.inventory, "") for n in nodes},
        target_of=lambda node, labels: matcher.node_of({"node": labels.get("node", "")}),
    )
    return FleetResult(result.readings, absent, result.errors)


PROM_COLLECTOR = fleet_collector(
    "slurm.prom",
    prom_targets,
    collect_prom,
    interval=15.0,
    timeout=20.0,
    label="Slurm nodes and queue from Prometheus (Slurm exporter)",
)
