"""Slurm actions: drain, resume, reboot ASAP (nodes); hold, release, requeue, cancel (jobs).

Every action is one ``scontrol``/``scancel`` command run over SSH on the
cluster's controller (slurmrestd 22.05 cannot change nodes, so SSH is the one
path for changes). Verification reads the cluster back (``sinfo``/``squeue``)
until the node or job shows the change, bounded. A command that did not
answer in time may still have been applied: verification decides, and when
the cluster cannot be read either, the outcome is unknown (the runner's word
for a verification that raised), never "failed".
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from console.plugin import ActionContext, ActionInputs, ActionSpec, Outcome, Preview, Role, Target
from console.transports import CommandTimeout, TransportError
from console.workloads import workloads_on
from plugins.slurm.collect import Snapshot, live_jobs, read_cluster
from plugins.slurm.config import clusters

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, Node
    from console.store import StoreView

COMMAND_TIMEOUT = 30.0
VERIFY_TIMEOUT = 30.0
VERIFY_POLL = 1.0
MAX_OUTPUT = 4000
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_JOB_ID = re.compile(r"^\d+(_\d+)?$")


# --------------------------------------------------------------------------- inputs


def _one_line(value: str) -> str:
    value = value.strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must be one line of printable text")
    return value


class DrainInputs(ActionInputs):
    reason: str = Field(
        min_length=3,
        max_length=200,
        description="Why the node leaves service (Slurm records it, prefixed with your name)",
    )

    @field_validator("reason")
    @classmethod
    def _clean(cls, value: str) -> str:
        return _one_line(value)


class RebootInputs(ActionInputs):
    next_state: Literal["resume", "drain", "down"] = Field(
        description="The state after the reboot: resume (back in service), drain or down"
    )
    reason: str = Field(
        default="reboot",
        min_length=3,
        max_length=200,
        description="Why (recorded in Slurm, prefixed with your name)",
    )

    @field_validator("reason")
    @classmethod
    def _clean(cls, value: str) -> str:
        return _one_line(value)


def signed(operator: str, reason: str) -> str:
    """``alice: replace GPU 3``: the reason as Slurm will show it (never signed twice)."""
    prefix = f"{operator}: "
    return reason if reason.startswith(prefix) else prefix + reason


# --------------------------------------------------------------------------- targets


def node_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    return [
        Target("node", n.name, node=n.name, attrs={"cluster": n.clusters.slurm})
        for n in inventory.nodes.values()
        if n.clusters.slurm and n.clusters.slurm in clusters(inventory)
    ]


def job_target(cluster: str, job_id: str, label: str = "") -> Target:
    return Target("job", f"{cluster}:{job_id}", attrs={"cluster": cluster, "job_id": job_id,
                                                       "label": label})  # fmt: skip


def job_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    """No static list: jobs are known only from what was collected (see live_job_targets)."""
    return []


def live_job_targets(store: StoreView, inventory: Inventory, config: Any) -> Sequence[Target]:
    """The jobs the collector saw last (pending and running), per cluster, from the Store."""
    return [
        job_target(cluster, job_id, label)
        for cluster in clusters(inventory)
        for job_id, label in live_jobs(store, cluster)
    ]


def _controller(ctx: ActionContext, cluster: str | None) -> Node | str:
    cfg = clusters(ctx.inventory).get(cluster or "")
    if cfg is None:
        return f"no Slurm cluster {cluster!r} in the inventory"
    node = ctx.inventory.nodes.get(cfg.controller)
    if node is None:
        return f"controller {cfg.controller!r} of {cluster} is not in the inventory"
    return node


def _node_cluster(ctx: ActionContext, target: Target) -> str | None:
    node = ctx.inventory.nodes.get(target.name)
    return node.clusters.slurm if node is not None else None


def _job_parts(target: Target) -> tuple[str, str] | str:
    cluster, _, job_id = target.name.rpartition(":")
    if not cluster or not _JOB_ID.match(job_id):
        return f"{target.name!r} is not CLUSTER:JOBID"
    return cluster, job_id


def where(node: Node) -> str:
    return f"{node.name} ({node.ssh.user}@{node.ssh.host}:{node.ssh.port})"


# --------------------------------------------------------------------------- commands


def node_command(verb: str, node: str, operator: str, inputs: Any) -> str:
    name = shlex.quote(node)
    if verb == "drain":
        reason = signed(operator, inputs.reason)
        return f"scontrol update nodename={name} state=drain {shlex.quote('reason=' + reason)}"
    if verb == "resume":
        return f"scontrol update nodename={name} state=resume"
    reason = signed(operator, inputs.reason)
    return (
        f"scontrol reboot ASAP nextstate={inputs.next_state} "
        f"{shlex.quote('reason=' + reason)} {name}"
    )


def job_command(verb: str, job_id: str) -> str:
    return f"scancel {job_id}" if verb == "cancel" else f"scontrol {verb} {job_id}"


async def _run(ctx: ActionContext, controller: Node, command: str) -> Outcome:
    try:
        async with asyncio.timeout(COMMAND_TIMEOUT + 5.0):
            result = await ctx.transports.ssh.run(controller, command, timeout=COMMAND_TIMEOUT)
    except (CommandTimeout, TimeoutError):
        # It may have been applied: verification reads the state back and decides.
        return Outcome(True, f"{command} on {controller.name}: no answer in time", "unanswered")
    except TransportError as exc:
        return Outcome(False, f"{command} on {controller.name} not run: {exc}")
    output = (result.stdout + result.stderr)[-MAX_OUTPUT:]
    if result.exit_status == 0:
        return Outcome(True, f"{command} on {controller.name}: exit 0", output)
    lines = result.stderr.strip().splitlines()
    why = lines[-1] if lines else "no message"
    return Outcome(
        False, f"{command} on {controller.name}: exit {result.exit_status}: {why}", output
    )


async def _poll(
    ctx: ActionContext, cluster: str, done: Callable[[Snapshot], str | None]
) -> Outcome:
    """Read the cluster until ``done`` says what it sees (str) or the time is up.

    Raises when the cluster could never be read (the runner records "unknown").
    """
    deadline = time.monotonic() + VERIFY_TIMEOUT
    seen: str | None = None
    last_error: Exception | None = None
    while True:
        try:
            snap = await read_cluster(ctx, cluster)
        except Exception as exc:  # any read failure: try again until the deadline
            last_error = exc
        else:
            seen = done(snap)
            if seen is not None and not seen.startswith("not yet"):
                return Outcome(True, seen)
        if time.monotonic() >= deadline:
            if seen is None and last_error is not None:
                raise RuntimeError(f"could not read {cluster} back: {last_error}")
            return Outcome(False, f"after {VERIFY_TIMEOUT:g}s: {seen or 'not seen'}")
        await asyncio.sleep(VERIFY_POLL)


# --------------------------------------------------------------------------- nodes


def _node_spec(verb: str, label: str, inputs: type[ActionInputs], destructive: bool,
               description: str) -> ActionSpec:  # fmt: skip
    async def preview(ctx: ActionContext, target: Target, values: Any) -> Preview:
        cluster = _node_cluster(ctx, target)
        controller = _controller(ctx, cluster)
        if isinstance(controller, str):
            return Preview((), refuse=controller)
        if not _SAFE_NAME.match(target.name):
            return Preview((), refuse=f"{target.name!r} is not a Slurm node name")
        command = node_command(verb, target.name, ctx.operator, values)
        alloc = ctx.store.value(target.name, "slurm.allocation")
        reason = ctx.store.value(target.name, "slurm.reason")
        now = f"now: {alloc or 'state unknown'}" + (f" ({reason})" if reason else "")
        lines = [f"{command} on {where(controller)} (cluster {cluster})", now]
        warnings: list[str] = []
        work = [w for w in workloads_on(ctx.store, target.name) if w.startswith("slurm:")]
        if verb == "drain":
            lines.append("running jobs finish; no new job starts there")
            if alloc in ("drain", "drained"):
                warnings.append(f"{target.name} is already {alloc}: the reason is replaced")
        elif verb == "resume":
            lines.append("the node takes new jobs again")
            if alloc not in ("drain", "drained", "down", None):
                warnings.append(f"{target.name} is {alloc}: nothing to resume")
        else:
            lines.append(f"drains now, reboots when its jobs end, then {values.next_state}")
        warnings += [f"runs there: {w}" for w in work if verb != "resume"]
        return Preview(tuple(lines), tuple(warnings))

    async def execute(ctx: ActionContext, target: Target, values: Any) -> Outcome:
        cluster = _node_cluster(ctx, target)
        controller = _controller(ctx, cluster)
        if isinstance(controller, str):
            return Outcome(False, controller)
        return await _run(ctx, controller, node_command(verb, target.name, ctx.operator, values))

    async def verify(ctx: ActionContext, target: Target, values: Any, outcome: Outcome) -> Outcome:
        cluster = _node_cluster(ctx, target) or ""

        def done(snap: Snapshot) -> str | None:
            node = next((n for n in snap.nodes if n.name == target.name), None)
            if node is None:
                return f"not yet: {target.name} not in sinfo"
            state = f"{target.name} {node.state_text}" + (
                f" ({node.reason})" if node.reason else ""
            )
            if verb == "drain":
                ok = "DRAIN" in node.flags and node.reason == signed(ctx.operator, values.reason)
            elif verb == "resume":
                ok = node.allocation in ("idle", "mixed", "alloc")
            else:
                ok = (
                    "REBOOT_REQUESTED" in node.flags
                    or "REBOOT_ISSUED" in node.flags
                    or (node.reason is None and values.next_state == "resume")
                )
            return state if ok else f"not yet: {state}"

        return await _poll(ctx, cluster, done)

    return ActionSpec(
        id=f"slurm.{verb}",
        label=label,
        target_kind="node",
        targets=node_targets,
        preview=preview,
        execute=execute,
        verify=verify,
        destructive=destructive,
        role=Role.OPERATOR,
        inputs=inputs,
        timeout=COMMAND_TIMEOUT + VERIFY_TIMEOUT + 15.0,
        description=description,
    )


# --------------------------------------------------------------------------- jobs


_JOB_DONE: dict[str, Callable[[str | None, str | None], bool]] = {
    "hold": lambda state, reason: state == "PENDING" and (reason or "").startswith("JobHeld"),
    "release": lambda state, reason: not (reason or "").startswith("JobHeld"),
    "requeue": lambda state, reason: state in ("PENDING", "REQUEUED", "CONFIGURING"),
    "cancel": lambda state, reason: state in (None, "CANCELLED", "COMPLETING", "COMPLETED"),
}


def _job_spec(verb: str, label: str, destructive: bool, description: str) -> ActionSpec:
    async def preview(ctx: ActionContext, target: Target, values: Any) -> Preview:
        parts = _job_parts(target)
        if isinstance(parts, str):
            return Preview((), refuse=parts)
        cluster, job_id = parts
        controller = _controller(ctx, cluster)
        if isinstance(controller, str):
            return Preview((), refuse=controller)
        label_text = target.attrs.get("label") or f"job {job_id}"
        lines = (f"{job_command(verb, job_id)} on {where(controller)}", f"{cluster}: {label_text}")
        warnings: tuple[str, ...] = ()
        if verb in ("cancel", "requeue"):
            warnings = ("a running job loses the work since its last checkpoint",)
        return Preview(lines, warnings)

    async def execute(ctx: ActionContext, target: Target, values: Any) -> Outcome:
        parts = _job_parts(target)
        if isinstance(parts, str):
            return Outcome(False, parts)
        controller = _controller(ctx, parts[0])
        if isinstance(controller, str):
            return Outcome(False, controller)
        return await _run(ctx, controller, job_command(verb, parts[1]))

    async def verify(ctx: ActionContext, target: Target, values: Any, outcome: Outcome) -> Outcome:
        parts = _job_parts(target)
        if isinstance(parts, str):
            return Outcome(False, parts)
        cluster, job_id = parts

        def done(snap: Snapshot) -> str | None:
            job = next((j for j in snap.jobs if j.job_id == job_id), None)
            state, reason = (job.state, job.reason) if job else (None, None)
            seen = f"job {job_id} " + (f"{state} ({reason or 'None'})" if job else "gone")
            return seen if _JOB_DONE[verb](state, reason) else f"not yet: {seen}"

        return await _poll(ctx, cluster, done)

    return ActionSpec(
        id=f"slurm.{verb}_job",
        label=label,
        target_kind="job",
        targets=job_targets,
        live_targets=live_job_targets,
        preview=preview,
        execute=execute,
        verify=verify,
        destructive=destructive,
        role=Role.OPERATOR,
        timeout=COMMAND_TIMEOUT + VERIFY_TIMEOUT + 15.0,
        description=description,
    )


ACTIONS = (
    _node_spec("drain", "Slurm: drain node", DrainInputs, False,
               "scontrol update state=drain with your reason (signed with your name); "
               "running jobs finish, no new job starts"),
    _node_spec("resume", "Slurm: resume node", ActionInputs, False,
               "scontrol update state=resume: the node takes jobs again"),
    _node_spec("reboot", "Slurm: reboot node ASAP", RebootInputs, True,
               "scontrol reboot ASAP nextstate=...: drains, reboots when idle, then the "
               "state you choose"),
    _job_spec("hold", "Slurm: hold job", False, "scontrol hold: a pending job will not start"),
    _job_spec("release", "Slurm: release job", False, "scontrol release: a held job may start"),
    _job_spec("requeue", "Slurm: requeue job", True,
              "scontrol requeue: a running job goes back to the queue"),
    _job_spec("cancel", "Slurm: cancel job", True, "scancel: the job ends now"),
)  # fmt: skip
