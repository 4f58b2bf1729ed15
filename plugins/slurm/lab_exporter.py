"""What the lab's Slurm exporter serves: prometheus-slurm-exporter's series for one cluster.

One exporter per cluster, on its controller's host (as sites run it: beside
slurmctld, where ``sinfo``/``squeue`` work), in the shapes of vpenso's
prometheus-slurm-exporter 0.24 (its ``node``, ``nodes``, ``queue``, ``gpus`` and
``users`` collectors, ``--json`` based): per node ``slurm_node_cpu_*`` /
``slurm_node_mem_*{node,status,partition}`` and ``slurm_node_gpu_*{node,status,
gpu_type}``, where ``status`` is Slurm's state words joined by ``+``, lowercased.

Rendered from the very ``sinfo --json`` / ``squeue --json`` records the
controller answers over SSH (``SlurmLab.node_json`` / ``job_json``), so both
sources read the same cluster. When no slurmctld answers, the exporter's sinfo
and squeue fail as they do over SSH: vpenso's exporter then serves no node series
and its queue gauges as zeros (its ``QueueGetMetrics`` returns an empty struct on
error), which the console must not believe.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from console.sources.exposition import format_family

if TYPE_CHECKING:  # pragma: no cover
    from plugins.slurm.lab import SimCluster, SlurmLab

QUEUE_STATES = {
    "pending": "PENDING",
    "running": "RUNNING",
    "suspended": "SUSPENDED",
    "cancelled": "CANCELLED",
    "completing": "COMPLETING",
    "completed": "COMPLETED",
    "configuring": "CONFIGURING",
    "failed": "FAILED",
    "timeout": "TIMEOUT",
    "preempted": "PREEMPTED",
    "node_fail": "NODE_FAIL",
}
NODES_STATES = ("alloc", "comp", "down", "drain", "err", "fail", "idle", "maint", "mix", "resv")


def _status(data: dict[str, Any]) -> str:
    """vpenso's ``strings.ToLower(strings.Join(n.State, "+"))`` over 23.02+'s state list."""
    return "+".join([str(data["state"]), *(str(f) for f in data.get("state_flags") or [])]).lower()


def _gpus(gres: str) -> tuple[str, int] | None:
    """``gpu:h100:8`` -> (``h100``, 8); ``gpu:h100:2(IDX:0-1)`` -> (``h100``, 2)."""
    for part in gres.split(","):
        fields = part.split("(", 1)[0].split(":")
        if fields[0] == "gpu" and len(fields) >= 2 and fields[-1].isdigit():
            return (fields[1] if len(fields) == 3 else "(null)", int(fields[-1]))
    return None


def _nodes_state(data: dict[str, Any]) -> str:
    """The ``nodes`` collector's bucket (``sinfo -o %T``: drained/draining -> drain)."""
    flags = set(data.get("state_flags") or [])
    if data["state"] == "down":
        return "down"
    if "DRAIN" in flags:
        return "drain"
    return {"allocated": "alloc", "mixed": "mix", "idle": "idle"}.get(str(data["state"]), "err")


def slurm_text(slurm_lab: SlurmLab, cluster: SimCluster) -> str:
    """One scrape of the cluster's exporter."""
    queue: Counter[str] = Counter()
    dep = 0
    if slurm_lab.controller_down(cluster):
        nodes: list[dict[str, Any]] = []
    else:
        nodes = [slurm_lab.node_json(cluster, n) for n in cluster.nodes.values()]
        for job in cluster.jobs.values():
            queue[job.state] += 1
            dep += job.state == "PENDING" and job.reason == "Dependency"
    node_rows: dict[str, list[tuple[dict[str, str], Any]]] = {}
    gpu_rows: dict[str, list[tuple[dict[str, str], Any]]] = {"alloc": [], "total": []}
    buckets: Counter[str] = Counter()
    gpu_sum: Counter[str] = Counter()
    for data in nodes:
        labels = {
            "node": str(data["name"]),
            "status": _status(data),
            "partition": ",".join(data.get("partitions") or []),
        }
        cpus, alloc = int(data["cpus"]), int(data["alloc_cpus"])
        values = {
            "cpu_alloc": alloc,
            "cpu_idle": cpus - alloc,
            "cpu_other": 0,
            "cpu_total": cpus,
            "mem_alloc": int(data.get("alloc_memory") or 0),
            "mem_total": int(data.get("real_memory") or 0),
        }
        for key, value in values.items():
            node_rows.setdefault(key, []).append((labels, value))
        buckets[_nodes_state(data)] += 1
        total = _gpus(str(data.get("gres") or ""))
        if total is not None:
            used = _gpus(str(data.get("gres_used") or ""))
            g = {"node": labels["node"], "status": labels["status"], "gpu_type": total[0]}
            gpu_rows["total"].append((g, total[1]))
            gpu_rows["alloc"].append((g, used[1] if used else 0))
            gpu_sum[f"total:{total[0]}"] += total[1]
            gpu_sum[f"alloc:{total[0]}"] += used[1] if used else 0
    parts = [
        format_family(f"slurm_node_{key}", "gauge", f"{key.replace('_', ' ')} per node", rows)
        for key, rows in node_rows.items()
    ]
    parts += [
        format_family(f"slurm_node_gpu_{key}", "gauge", f"{key.title()} GPUs per node", rows)
        for key, rows in gpu_rows.items()
    ]
    parts += [
        format_family(f"slurm_nodes_{s}", "gauge", f"{s} nodes", [({}, buckets[s])])
        for s in NODES_STATES
    ]
    types = sorted({k.split(":", 1)[1] for k in gpu_sum})
    for key in ("alloc", "total"):
        rows = [({"gpu_type": t}, gpu_sum[f"{key}:{t}"]) for t in types]
        parts.append(format_family(f"slurm_gpus_{key}", "gauge", f"{key.title()} GPUs", rows))
    parts += [
        format_family(f"slurm_queue_{name}", "gauge", f"{name} jobs in the cluster",
                      [({}, queue[state])])
        for name, state in QUEUE_STATES.items()
    ]  # fmt: skip
    parts.append(
        format_family("slurm_queue_pending_dependency", "gauge",
                      "Pending jobs because of dependency in queue", [({}, dep)])
    )  # fmt: skip
    parts.append(_users(cluster) if nodes else "")
    return "".join(parts)


def _users(cluster: SimCluster) -> str:
    """``slurm_user_jobs_running_host{user,host}``: vpenso splits squeue's node list on
    commas and counts each token, verbatim."""
    hosts: Counter[tuple[str, str]] = Counter()
    running: Counter[str] = Counter()
    pending: Counter[str] = Counter()
    for job in cluster.jobs.values():
        if job.state == "RUNNING":
            running[job.user] += 1
            for host in job.nodes:
                hosts[(job.user, host)] += 1
        elif job.state == "PENDING":
            pending[job.user] += 1
    return "".join(
        (
            format_family("slurm_user_jobs_pending", "gauge", "Pending jobs for user",
                          [({"user": u}, n) for u, n in sorted(pending.items())]),
            format_family("slurm_user_jobs_running", "gauge", "Running jobs for user",
                          [({"user": u}, n) for u, n in sorted(running.items())]),
            format_family("slurm_user_jobs_running_host", "gauge", "Running jobs for user on host",
                          [({"user": u, "host": h}, n) for (u, h), n in sorted(hosts.items())]),
        )
    )  # fmt: skip


async def start_exporters(slurm_lab: SlurmLab, lab: Any) -> None:
    """Serve one exporter per cluster on its controller's host (unless the lab serves none)."""
    from console.lab.exporters import ExporterSet, exporters_enabled, host_addresses, host_answers

    if not exporters_enabled(lab) or not slurm_lab.clusters:
        return
    on_host = {c.controller: c for c in slurm_lab.clusters.values()}

    def render(name: str) -> str | None:
        cluster, host = on_host.get(name), lab.hosts.get(name)
        if cluster is None or host is None or not host_answers(host):
            return None
        return slurm_text(slurm_lab, cluster)

    exporter = ExporterSet("slurm", render)
    slurm_lab.exporters["slurm"] = exporter
    await exporter.start(host_addresses(lab, on_host))
