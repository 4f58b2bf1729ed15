"""The ``slurm.cluster`` collector: nodes, queue and partitions of one cluster per read.

Over SSH it is one round trip on the cluster's controller (or login node):
``sinfo``, ``squeue`` and ``scontrol show partition`` in one command line,
with ``--json`` and, when the tools refuse it, the text formats. With
slurmrestd (when the inventory names it) it is two GETs with the JWT.

It publishes per node the console.workloads readings (``slurm.allocation``,
``slurm.workloads``, ``slurm.drained``, ``slurm.reason``, ``slurm.reason_by``,
``slurm.reason_since``) plus GPU counts, and per cluster (``slurm:<name>``)
the queue summary the ``slurm.queue`` pane draws. A failure to reach the
controller raises: then nothing is known, and the poller says so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shlex
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from console.plugin import CollectContext, CollectorSpec, ParseError, Reading, Target
from console.transports import TransportError
from plugins.slurm.config import as_config, clusters, read_token, reads_prometheus
from plugins.slurm.model import Partition, SlurmJob, SlurmNode
from plugins.slurm.parse import jobs_by_node, parse_jobs, parse_nodes
from plugins.slurm.parse_json import parse_jobs_json, parse_nodes_json
from plugins.slurm.parse_text import SINFO_TEXT, SQUEUE_TEXT, parse_partitions_text

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory
    from console.store import StoreView

log = logging.getLogger(__name__)

MARK = "@@dcc-slurm@@"
MAX_WAITS = 8
"""Longest-waiting pending jobs kept in the queue summary."""
MAX_JOB_TARGETS = 300
"""Jobs offered as action targets per cluster (running and pending, newest last)."""


def cluster_target(name: str) -> str:
    """The Store target of a cluster's own readings."""
    return f"slurm:{name}"


def read_command(fmt: str) -> str:
    """The one command line a read runs on the controller."""
    sinfo_text = f"sinfo -N -o {shlex.quote(SINFO_TEXT)}"
    squeue_text = f"squeue --all -o {shlex.quote(SQUEUE_TEXT)}"
    if fmt == "json":
        sinfo, squeue = "sinfo --json", "squeue --all --json"
    elif fmt == "text":
        sinfo, squeue = sinfo_text, squeue_text
    else:  # a tool without --json exits 2 with a usage message: use the text form then
        sinfo = f"sinfo --json 2>/dev/null || {sinfo_text}"
        squeue = f"squeue --all --json 2>/dev/null || {squeue_text}"
    return f"{sinfo}; echo {MARK}; {squeue}; echo {MARK}; scontrol show partition -o"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one read of a cluster found."""

    nodes: list[SlurmNode]
    jobs: list[SlurmJob]
    partitions: list[Partition]
    via: str


def split_output(stdout: str) -> tuple[str, str, str]:
    parts = stdout.split(MARK + "\n")
    if len(parts) != 3:
        raise ParseError("the Slurm read did not print its three sections")
    return parts[0], parts[1], parts[2]


def parse_snapshot(stdout: str, via: str = "ssh") -> Snapshot:
    nodes_text, jobs_text, parts_text = split_output(stdout)
    if not nodes_text.strip():
        raise ParseError("sinfo printed nothing")
    try:
        partitions = parse_partitions_text(parts_text) if parts_text.strip() else []
    except ParseError as exc:
        log.debug("partitions unreadable: %s", exc)
        partitions = []
    return Snapshot(parse_nodes(nodes_text), parse_jobs(jobs_text), partitions, via)


# --------------------------------------------------------------------------- readings


def job_label(job: SlurmJob) -> str:
    """``job 81723 train-llm (alice) 8 GPU``."""
    text = f"job {job.job_id} {job.name}".rstrip()
    if job.user:
        text += f" ({job.user})"
    if job.gpus:
        text += f" {job.gpus} GPU"
    return text


def _unavailable(node: SlurmNode) -> int | None:
    """GPUs of a node that no new job can get (drained, down, not responding)."""
    if node.gpus_total is None:
        return None
    if not node.out_of_service:
        return 0
    return max(0, node.gpus_total - (node.gpus_used or 0))


def queue_summary(snap: Snapshot, now: float) -> dict[str, Any]:
    """GPUs total/allocated/idle/unavailable, pending by reason, the longest waits."""
    totals = [n.gpus_total for n in snap.nodes]
    used = [n.gpus_used for n in snap.nodes]
    unav = [_unavailable(n) for n in snap.nodes]
    total = None if None in totals else sum(t or 0 for t in totals)
    alloc = None if None in used else sum(u or 0 for u in used)
    unavailable = None if None in unav else sum(u or 0 for u in unav)
    idle = None
    if total is not None and alloc is not None and unavailable is not None:
        idle = max(0, total - alloc - unavailable)
    pending = [j for j in snap.jobs if j.state == "PENDING"]
    running = [j for j in snap.jobs if j.state in ("RUNNING", "COMPLETING")]
    by_reason = Counter(j.reason or "None" for j in pending)
    waits = sorted(
        (j for j in pending if j.submit_time is not None), key=lambda j: j.submit_time or 0.0
    )[:MAX_WAITS]
    return {
        "gpus_total": total,
        "gpus_alloc": alloc,
        "gpus_idle": idle,
        "gpus_unavail": unavailable,
        "jobs_running": len(running),
        "jobs_pending": len(pending),
        "gpus_pending": sum(j.gpus or 0 for j in pending),
        "pending_by_reason": dict(by_reason.most_common()),
        "waits": [
            {
                "job": j.job_id,
                "name": j.name,
                "user": j.user,
                "reason": j.reason,
                "gpus": j.gpus,
                "partition": j.partition,
                "wait_s": round(now - (j.submit_time or now)),
            }
            for j in waits
        ],
        "partitions": [
            {"name": p.name, "state": p.state, "nodes": p.total_nodes, "gpus": p.gpus}
            for p in snap.partitions
        ],
        "nodes_out": sum(1 for n in snap.nodes if n.out_of_service),
    }


def node_readings(snap: Snapshot, cluster: str, now: float, source: str) -> list[Reading]:
    on_node = jobs_by_node(snap.jobs)
    out: list[Reading] = []
    for node in snap.nodes:
        jobs = on_node.get(node.name, [])
        allocation = node.allocation
        values: dict[str, Any] = {
            "slurm.allocation": allocation,
            "slurm.workloads": "; ".join(job_label(j) for j in jobs),
            "slurm.drained": allocation in ("drained", "down") and not jobs,
            "slurm.reason": node.reason or "",
            "slurm.reason_by": node.reason_by or "",
            "slurm.reason_since": node.reason_since,
            "slurm.state": node.state_text,
            "slurm.gpus_total": node.gpus_total,
            "slurm.gpus_used": node.gpus_used,
            "slurm.jobs": len(jobs),
            "slurm.cluster": cluster,
            "slurm.partitions": ",".join(node.partitions),
            "slurm.next_state": node.next_state or "",
            # "timed out": Slurm set the node DOWN, "reboot timed out" (RELIABILITY.md F16).
            "slurm.reboot": node.reboot or "",
        }
        out += [
            Reading(node.name, metric, value, ts=now, source=source, detail=node.reason or "",
                    node=node.name)
            for metric, value in values.items()
        ]  # fmt: skip
    return out


def cluster_readings(
    snap: Snapshot, cluster: str, controller: str | None, now: float, source: str
) -> list[Reading]:
    summary = queue_summary(snap, now)
    target = cluster_target(cluster)
    values: dict[str, Any] = {
        k: summary[k]
        for k in (
            "gpus_total",
            "gpus_alloc",
            "gpus_idle",
            "gpus_unavail",
            "jobs_running",
            "jobs_pending",
            "gpus_pending",
            "nodes_out",
        )
    }
    readings = [
        Reading(target, f"slurm.{k}", v, ts=now, source=source, node=controller)
        for k, v in values.items()
    ]
    readings.append(
        Reading(
            target,
            "slurm.queue",
            json.dumps(summary, sort_keys=True),
            ts=now,
            source=source,
            detail=f"via {snap.via}",
            node=controller,
        )
    )
    return readings


# --------------------------------------------------------------------------- job targets


def live_jobs_reading(cluster: str, jobs: Sequence[SlurmJob], now: float, source: str) -> Reading:
    """The cluster's live jobs (id and label, newest last) as one reading, for job actions.

    Jobs come and go; one reading per cluster, replaced at every poll, keeps the
    Store from growing with finished jobs.
    """
    live = [j for j in jobs if j.state in ("RUNNING", "PENDING", "SUSPENDED", "REQUEUED")]
    pairs = [[j.job_id, job_label(j)] for j in live[-MAX_JOB_TARGETS:]]
    return Reading(f"slurm:{cluster}", "slurm.live_jobs", json.dumps(pairs), ts=now,
                   source=source)  # fmt: skip


def live_jobs(store: StoreView, cluster: str) -> list[tuple[str, str]]:
    """(job id, label) of the live jobs last collected for ``cluster``."""
    value = store.value(f"slurm:{cluster}", "slurm.live_jobs")
    if not isinstance(value, str):
        return []
    try:
        return [(str(i), str(label)) for i, label in json.loads(value)]
    except (ValueError, TypeError):
        return []


# --------------------------------------------------------------------------- read


async def read_ssh(ctx: Any, cluster: str, fmt: str, limit: float) -> Snapshot:
    cfg = clusters(ctx.inventory).get(cluster)
    if cfg is None:
        raise LookupError(f"no Slurm cluster {cluster!r} in the inventory")
    node = ctx.inventory.nodes.get(cfg.controller)
    if node is None:
        raise LookupError(
            f"cluster {cluster}: controller {cfg.controller!r} is not in the inventory"
        )
    backup = ctx.inventory.nodes.get(cfg.backup_controller or "")
    try:
        async with asyncio.timeout(limit + 1.0):
            result = await ctx.transports.ssh.run(node, read_command(fmt), timeout=limit)
    except TransportError:
        if backup is None:
            raise
        # The primary's host is gone: the tools on the backup's host still reach
        # whichever slurmctld is in control.
        node = backup
        async with asyncio.timeout(limit + 1.0):
            result = await ctx.transports.ssh.run(node, read_command(fmt), timeout=limit)
    if result.truncated:
        raise ParseError(
            f"cluster {cluster}: the Slurm output passed the transport's size cap; "
            f"set plugins.slurm.clusters.{cluster}.format: text"
        )
    try:
        return parse_snapshot(result.stdout, "ssh")
    except ParseError as exc:
        err = result.stderr.strip().splitlines()
        why = f" ({err[-1][:200]})" if err else ""
        raise ParseError(f"cluster {cluster} on {node.name}: {exc}{why}") from None


async def read_rest(ctx: Any, cluster: str, limit: float) -> Snapshot:
    cfg = clusters(ctx.inventory).get(cluster)
    if cfg is None or cfg.slurmrestd is None:
        raise LookupError(f"cluster {cluster!r} names no slurmrestd")
    opts = as_config(ctx.config).options(cluster)
    headers = {"X-SLURM-USER-NAME": opts.rest_user}
    if cfg.token is not None:
        headers["X-SLURM-USER-TOKEN"] = read_token(cfg.token, ctx.inventory)
    base = cfg.slurmrestd.rstrip("/") + f"/slurm/{opts.api_version}"
    bodies = []
    for path in ("nodes", "jobs"):
        resp = await ctx.transports.http.request(
            "GET", f"{base}/{path}", timeout=limit, headers=headers
        )
        if resp.status != 200:
            raise RuntimeError(
                f"slurmrestd {cluster}: GET /{path} answered HTTP {resp.status}"
                + (" (token refused)" if resp.status in (401, 403) else "")
            )
        bodies.append(resp.body)
    return Snapshot(parse_nodes_json(bodies[0]), parse_jobs_json(bodies[1]), [], "slurmrestd")


def uses_rest(inventory: Inventory, config: Any, cluster: str) -> bool:
    cfg = clusters(inventory).get(cluster)
    via = as_config(config).options(cluster).via
    if via is not None:
        return via == "slurmrestd"
    return cfg is not None and cfg.slurmrestd is not None


async def read_cluster(ctx: Any, cluster: str) -> Snapshot:
    config = as_config(ctx.config)
    if uses_rest(ctx.inventory, ctx.config, cluster):
        return await read_rest(ctx, cluster, config.timeout)
    return await read_ssh(ctx, cluster, config.options(cluster).format, config.timeout)


def cluster_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    interval = as_config(config).interval
    return [
        Target("cluster", name, node=c.controller, attrs={"interval": interval})
        for name, c in clusters(inventory).items()
        if not reads_prometheus(inventory, config, name)  # then plugins.slurm.prom reads it
    ]


async def collect_cluster(ctx: CollectContext, target: Target) -> Sequence[Reading]:
    snap = await read_cluster(ctx, target.name)
    now = time.time()
    return [
        *node_readings(snap, target.name, now, snap.via),
        *cluster_readings(snap, target.name, target.node, now, snap.via),
        live_jobs_reading(target.name, snap.jobs, now, snap.via),
    ]


COLLECTORS = (
    CollectorSpec(
        id="slurm.cluster",
        targets=cluster_targets,
        collect=collect_cluster,
        interval=15.0,
        timeout=30.0,
        label="Slurm nodes, queue and partitions (sinfo/squeue/scontrol)",
    ),
)
