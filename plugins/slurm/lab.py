"""The Slurm emulation for the lab: a scheduler coupled to the simulated hosts.

Each ``clusters.slurm`` cluster of the inventory gets its nodes (the inventory
nodes that name it), GPUs from their expected hardware, and a stream of
training jobs that the emulation places on nodes with free GPUs. The
cluster's controller answers, over SSH, ``sinfo``/``squeue`` (``--json`` in
Slurm 22.05's shapes, and the text formats), ``scontrol show partition -o``,
``scontrol update/reboot/hold/release/requeue`` and ``scancel``.

Coupling: a drained node gets no new job; a powered-off or down host is
DOWN (not responding) and its jobs are requeued, and it comes back by itself
(``ReturnToService=2``); a GPU failure (lab fault ``slurm.gpu_failure`` or
``gpu.fell_off_bus`` on the host) makes Slurm drain the node with a reason,
which stays after the fault until someone resumes it, as in Slurm.

Faults: ``slurm.gpu_failure`` (host), ``slurm.controller_down`` (cluster name:
no slurmctld answers; controller host: the primary slurmctld stops).

High availability: a cluster with a ``backup_controller`` runs a backup
slurmctld there. When the primary stops (the fault on its host, or the host
dies), the tools answer "Unable to contact slurm controller" until the backup
takes control ``ctld_timeout_s`` later (``SlurmctldTimeout``); the queue and the
nodes carry on (state is shared, as with a shared ``StateSaveLocation``). When the
primary is back it resumes control. ``scontrol ping`` says who is up.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from console.plugin import CommandReply, LabHostContext
from plugins.slurm import lab_shapes
from plugins.slurm.lab_cli import run_line

log = logging.getLogger(__name__)

FAULTS = {
    "slurm.gpu_failure": "a GPU falls off the bus: Slurm drains the node with a reason",
    "slurm.controller_down": "slurmctld does not answer (target: cluster or controller host)",
}
GPU_FAULTS = ("slurm.gpu_failure", "gpu.fell_off_bus")
USERS = ("alice", "bob", "chen", "dana", "eve")
NAMES = ("train-llm", "finetune", "eval", "pretrain-7b", "sweep", "embed")
PENDING_MIX = ("Priority", "Priority", "QOSMaxGRESPerUser", "Dependency")


@dataclass(slots=True)
class SimNode:
    name: str
    gpus: int
    cpus: int
    partitions: list[str]
    drain: bool = False
    down: bool = False
    reason: str = ""
    reason_by: str | None = None
    reason_since: int = 0
    reboot_next: str | None = None
    """Pending ``scontrol reboot ASAP``: the state after it (resume/drain/down)."""
    gpu_failed: bool = False


@dataclass(slots=True)
class SimJob:
    job_id: int
    name: str
    user: str
    gpus_per_node: int
    node_count: int
    partition: str
    submit: int
    duration: float
    state: str = "PENDING"
    reason: str = "Priority"
    nodes: list[str] = field(default_factory=list)
    start: int = 0
    held: bool = False
    ended: float = 0.0


@dataclass(slots=True)
class SimCluster:
    name: str
    controller: str
    nodes: dict[str, SimNode]
    jobs: dict[int, SimJob] = field(default_factory=dict)
    next_id: int = 81700
    backup: str | None = None
    primary_lost_at: float | None = None
    """Lab time the primary slurmctld stopped answering (None: it answers)."""
    backup_in_control: bool = False
    takeovers: int = 0

    def used(self, node: str) -> int:
        return sum(
            j.gpus_per_node for j in self.jobs.values() if j.state == "RUNNING" and node in j.nodes
        )


class SlurmLab:
    """``console.plugin.LabEmulation`` for the slurm plugin."""

    def __init__(self, ctld_timeout_s: float = 10.0) -> None:
        """``ctld_timeout_s``: lab seconds before a backup controller takes control
        (Slurm's ``SlurmctldTimeout``, 120 s by default on a real cluster)."""
        self.ctld_timeout_s = ctld_timeout_s
        self._lab: Any = None
        self.clusters: dict[str, SimCluster] = {}
        self._rng = random.Random(0)
        self._last = 0.0
        self.commands: list[tuple[str, str]] = []
        """Every state-changing command run: (host, command line), for tests."""
        self.exporters: dict[str, Any] = {}
        """``slurm``: the Slurm exporter of each cluster, on its controller (lab_exporter)."""

    # ------------------------------------------------------------------ lifecycle

    async def start(self, lab: Any) -> None:
        self._lab = lab
        self._rng = random.Random(f"{lab.seed}:slurm")
        inv = lab.source
        now = lab.clock.now()
        for name, cfg in inv.doc.clusters.slurm.items():
            nodes = {
                n.name: SimNode(
                    n.name,
                    n.hardware.gpu_count,
                    128 if n.role.startswith("gpu") else 64,
                    list(n.clusters.partitions) or ["batch"],
                )
                for n in inv.nodes.values()
                if n.clusters.slurm == name
            }
            cluster = SimCluster(name, cfg.controller, nodes, backup=cfg.backup_controller)
            self.clusters[name] = cluster
            for _ in range(2 * len(nodes) + 2):  # a queue already running at start
                self._submit(cluster, now - self._rng.uniform(600, 30000))
            self._schedule(cluster, now)
        self._last = now
        from plugins.slurm.lab_exporter import start_exporters

        await start_exporters(self, lab)

    async def stop(self) -> None:
        for exporter in self.exporters.values():
            await exporter.stop()

    def rewrite_inventory(self, data: dict[str, Any]) -> dict[str, Any]:
        """The controller declares its cluster's exporter address (``exporters.slurm``)."""
        from console.lab.exporters import declare_exporters

        found = self.exporters.get("slurm")
        return declare_exporters(data, "slurm", found.instances) if found is not None else data

    def fault_names(self) -> Sequence[str]:
        return sorted(FAULTS)

    def rewrite_config(self, section: dict[str, Any]) -> dict[str, Any]:
        return section

    # ------------------------------------------------------------------ dynamics

    def _host(self, name: str) -> Any:
        return self._lab.hosts.get(name) if self._lab is not None else None

    def _submit(self, cluster: SimCluster, when: float) -> None:
        parts = sorted({p for n in cluster.nodes.values() for p in n.partitions})
        gpu_parts = [
            p for p in parts if any(n.gpus and p in n.partitions for n in cluster.nodes.values())
        ]
        part = self._rng.choice(gpu_parts or parts or ["batch"])
        gpus = max((n.gpus for n in cluster.nodes.values() if part in n.partitions), default=0)
        per_node = self._rng.choice([g for g in (1, 2, 4, gpus) if g <= gpus] or [0])
        count = self._rng.choice((1, 1, 1, 2)) if per_node == gpus and gpus else 1
        cluster.jobs[cluster.next_id] = SimJob(
            cluster.next_id,
            self._rng.choice(NAMES),
            self._rng.choice(USERS),
            per_node,
            count,
            part,
            int(when),
            self._rng.uniform(300, 3000),
            reason=self._rng.choice(PENDING_MIX),
        )
        cluster.next_id += 1

    def host_alive(self, name: str) -> bool:
        host = self._host(name)
        return host is None or (host.powered and host.fault("host.down") is None)

    def _usable(self, node: SimNode) -> bool:
        return not (node.drain or node.down or node.reboot_next)

    def _schedule(self, cluster: SimCluster, now: float) -> None:
        """FIFO with a look-ahead: place what fits; the first that does not waits on Resources."""
        blocked = False
        for job in sorted(cluster.jobs.values(), key=lambda j: j.job_id):
            if job.state != "PENDING" or job.held or job.reason in ("Dependency", "BeginTime"):
                continue
            fits = [
                n.name
                for n in cluster.nodes.values()
                if self._usable(n)
                and job.partition in n.partitions
                and n.gpus - cluster.used(n.name) >= job.gpus_per_node
            ]
            if len(fits) >= job.node_count:
                job.state, job.reason = "RUNNING", "None"
                job.nodes = fits[: job.node_count]
                job.start = int(now)
            elif not blocked:
                job.reason, blocked = "Resources", True
            elif job.reason == "Resources":
                job.reason = "Priority"

    def tick(self, now: float) -> None:
        dt = max(0.0, now - self._last)
        self._last = now
        for cluster in self.clusters.values():
            self._update_control(cluster, now)
            self._couple_hosts(cluster, now)
            for job in list(cluster.jobs.values()):
                if job.state == "RUNNING" and now - job.start > job.duration:
                    job.state, job.ended = "COMPLETED", now
                elif job.state in ("COMPLETED", "CANCELLED") and now - job.ended > 60:
                    del cluster.jobs[job.job_id]
                elif job.reason in ("Dependency", "BeginTime") and self._rng.random() < 0.02 * dt:
                    job.reason = "Priority"
            pending = sum(1 for j in cluster.jobs.values() if j.state == "PENDING")
            if pending < 2 * len(cluster.nodes) and self._rng.random() < 0.05 * dt:
                self._submit(cluster, now)
            self._schedule(cluster, now)

    def _couple_hosts(self, cluster: SimCluster, now: float) -> None:
        for node in cluster.nodes.values():
            host = self._host(node.name)
            if host is None:
                continue
            dead = not host.powered or host.fault("host.down") is not None
            if dead and not node.down:
                node.down = True
                self.set_reason(node, "Not responding", "slurm", now)
                self._requeue_on(cluster, node.name, now)
            elif not dead and node.down and node.reason == "Not responding":
                node.down = False  # ReturnToService=2
                self.set_reason(node, "", None, now)
            failed = any(host.fault(f) is not None for f in GPU_FAULTS)
            if failed and not node.gpu_failed:
                node.gpu_failed = True
                node.drain = True
                self.set_reason(
                    node,
                    "gres/gpu count reported lower than configured "
                    f"({node.gpus - 1} < {node.gpus})",
                    "slurm",
                    now,
                )
            elif not failed:
                node.gpu_failed = False
            if (
                node.reboot_next
                and not node.down
                and cluster.used(node.name) == 0
                and not any(
                    j.state == "RUNNING" and node.name in j.nodes for j in cluster.jobs.values()
                )
            ):
                # Rebooted (RebootProgram): the state asked for with nextstate.
                nxt, node.reboot_next = node.reboot_next, None
                if nxt == "resume":
                    node.drain = False
                    self.set_reason(node, "", None, now)
                elif nxt == "down":
                    node.drain, node.down = False, True

    @staticmethod
    def set_reason(node: SimNode, reason: str, by: str | None, now: float) -> None:
        node.reason, node.reason_by, node.reason_since = reason, by, int(now) if reason else 0

    @staticmethod
    def _requeue_on(cluster: SimCluster, node: str, now: float) -> None:
        for job in cluster.jobs.values():
            if job.state == "RUNNING" and node in job.nodes:
                job.state, job.reason, job.nodes = "PENDING", "BeginTime", []

    # ------------------------------------------------------------------ commands

    def cluster_on(self, host: str) -> SimCluster | None:
        return next((c for c in self.clusters.values() if host in (c.controller, c.backup)), None)

    def ctld_up(self, cluster: SimCluster, host: str | None) -> bool:
        """The slurmctld on ``host`` runs (its host alive, no fault on it or the cluster)."""
        if host is None or not self.host_alive(host):
            return False
        faults = self._lab.faults
        return all(faults.get("slurm.controller_down", t) is None for t in (cluster.name, host))

    def _update_control(self, cluster: SimCluster, now: float) -> None:
        if self.ctld_up(cluster, cluster.controller):
            cluster.primary_lost_at = None
            cluster.backup_in_control = False  # the primary resumes control
            return
        if cluster.primary_lost_at is None:
            cluster.primary_lost_at = now
        if (
            not cluster.backup_in_control
            and self.ctld_up(cluster, cluster.backup)
            and now - cluster.primary_lost_at >= self.ctld_timeout_s
        ):
            cluster.backup_in_control = True
            cluster.takeovers += 1
            log.info("lab slurm: %s: backup %s took control", cluster.name, cluster.backup)
        if cluster.backup_in_control and not self.ctld_up(cluster, cluster.backup):
            cluster.backup_in_control = False

    def controller_down(self, cluster: SimCluster) -> bool:
        """No slurmctld in control: the tools cannot reach a controller."""
        self._update_control(cluster, self._lab.clock.now())
        if self.ctld_up(cluster, cluster.controller):
            return False
        return not cluster.backup_in_control

    def ping_text(self, cluster: SimCluster) -> tuple[str, int]:
        """``scontrol ping`` as Slurm 22.05 prints it."""
        lines = []
        for role, host in (("primary", cluster.controller), ("backup", cluster.backup)):
            if host is not None:
                up = self.ctld_up(cluster, host)
                lines.append(f"Slurmctld({role}) at {host} is {'UP' if up else 'DOWN'}")
        return "\n".join(lines) + "\n", 0 if not self.controller_down(cluster) else 1

    async def command(self, host: LabHostContext, command: str) -> CommandReply | None:
        cluster = self.cluster_on(host.name)
        if cluster is None:
            return None
        try:
            first = shlex.split(command)[:1]
        except ValueError:
            return None
        if first not in (["sinfo"], ["squeue"], ["scontrol"], ["scancel"]):
            return None
        return run_line(self, cluster, host.name, command, host.now)

    # ------------------------------------------------------------------ views

    def node_json(self, cluster: SimCluster, node: SimNode) -> dict[str, Any]:
        data = copy.deepcopy(lab_shapes.NODE_TEMPLATE)
        used = cluster.used(node.name)
        running = [
            j for j in cluster.jobs.values() if j.state == "RUNNING" and node.name in j.nodes
        ]
        cpus_used = min(node.cpus, 16 * len(running))
        if node.down:
            state = "down"
        elif not running:
            state = "idle"
        else:
            state = "allocated" if cpus_used >= node.cpus else "mixed"
        flags = []
        if node.drain:
            flags.append("DRAIN")
        if node.down:
            flags.append("NOT_RESPONDING")
        if node.reboot_next:
            flags.append("REBOOT_REQUESTED")
            # 22.05 reports the next state as "unknown" plus a flag word, as the peer showed.
            data["next_state_after_reboot_flags"] = [node.reboot_next.upper(), "?"]
        gres = f"gpu:h100:{node.gpus}" if node.gpus else ""
        idx = f"0-{used - 1}" if used > 1 else "0" if used else "N/A"
        gres_used = f"gpu:h100:{used}(IDX:{idx})" if node.gpus else ""
        data.update(
            name=node.name,
            hostname=node.name,
            address=node.name,
            state=state,
            state_flags=flags,
            gres=gres,
            gres_used=gres_used,
            cpus=node.cpus,
            alloc_cpus=cpus_used,
            idle_cpus=node.cpus - cpus_used,
            partitions=list(node.partitions),
            reason=node.reason,
            reason_changed_at=node.reason_since,
            reason_set_by_user=node.reason_by,
            next_state_after_reboot="unknown" if node.reboot_next else "invalid",
            tres=f"cpu={node.cpus},mem=1000G,billing={node.cpus}"
            + (f",gres/gpu={node.gpus}" if node.gpus else ""),
            tres_used=f"cpu={cpus_used}" if cpus_used else None,
        )
        return data

    def job_json(self, job: SimJob) -> dict[str, Any]:
        data = copy.deepcopy(lab_shapes.JOB_TEMPLATE)
        nodes = ",".join(job.nodes)
        data.update(
            job_id=job.job_id,
            name=job.name,
            user_name=job.user,
            job_state=job.state,
            state_reason=job.reason if job.state == "PENDING" else "None",
            partition=job.partition,
            nodes=nodes,
            batch_host=job.nodes[0] if job.nodes else "",
            node_count=job.node_count,
            submit_time=job.submit,
            eligible_time=job.submit,
            accrue_time=job.submit,
            start_time=job.start if job.state != "PENDING" else 0,
            priority=0 if job.held else 4294901000 - job.job_id,
            tres_per_node=f"gres:gpu:{job.gpus_per_node}" if job.gpus_per_node else "",
            gres_detail=[f"gpu:h100:{job.gpus_per_node}(IDX:0-{job.gpus_per_node - 1})"]
            * len(job.nodes)
            if job.gpus_per_node and job.state == "RUNNING"
            else [],
            tres_req_str=f"cpu={job.node_count},mem=64G,node={job.node_count},billing=1",
            tres_alloc_str=f"cpu={job.node_count},node={job.node_count},billing=1"
            if job.state == "RUNNING"
            else "",
        )
        return data

    def sinfo_json(self, cluster: SimCluster) -> str:
        nodes = [self.node_json(cluster, n) for n in cluster.nodes.values()]
        return json.dumps({"meta": lab_shapes.META, "errors": [], "nodes": nodes}, indent=2)

    def squeue_json(self, cluster: SimCluster) -> str:
        jobs = [self.job_json(j) for j in sorted(cluster.jobs.values(), key=lambda j: j.job_id)]
        return json.dumps({"meta": lab_shapes.META, "errors": [], "jobs": jobs}, indent=2)
