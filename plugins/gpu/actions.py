"""GPU actions: reset, MIG mode, MIG instance create/destroy, DCGM quick diagnostic.

Every command names its GPU with ``-i N``. Previews read the node fresh (one
round trip) so "in use" is what runs now, not what the Store saw a minute ago;
execute checks it again just before running.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field

from console.plugin import (
    ActionContext,
    ActionInputs,
    ActionSpec,
    Outcome,
    ParseError,
    Preview,
    Role,
    Target,
)
from console.transports import CommandTimeout, TransportError
from console.workloads import drained_everywhere, workloads_on
from plugins.gpu.collect import read_fast, read_full
from plugins.gpu.config import cfg, gpu_nodes
from plugins.gpu.model import GpuDetail, mig_profiles, profile_by_name
from plugins.gpu.parse import parse_dcgm_diag, same_bus
from plugins.gpu.readings import FullRead

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, Node

MAX_OUTPUT = 4000


def gpu_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    return [
        Target(
            "gpu", f"{n.name}/{i}", node=n.name, attrs={"index": i, "model": n.hardware.gpu_model}
        )
        for n in gpu_nodes(inventory)
        for i in range(n.hardware.gpu_count or 8)
    ]


def node_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    return [Target("node", n.name, node=n.name) for n in gpu_nodes(inventory)]


def _split(ctx: ActionContext, target: Target) -> tuple[Node, int] | str:
    node_name, _, idx = target.name.partition("/")
    node = ctx.inventory.nodes.get(node_name)
    if node is None or not idx.isdigit():
        return f"{target.name!r} is not a GPU of a node in the inventory (node/index)"
    return node, int(idx)


async def _fresh(
    ctx: ActionContext, node: Node, index: int
) -> tuple[FullRead, GpuDetail | None] | str:
    try:
        full = await read_full(ctx, node, cfg(ctx.config).timeout)
    except (TransportError, TimeoutError, ParseError, OSError) as exc:
        return f"could not read {node.name}'s GPUs: {exc}"
    if full.smi is None:
        return full, None
    # The XML numbers GPUs in the order it lists them: with a GPU lost (not listed) the
    # ones after it shift down. The bus id the fast read saw for this index tells them apart.
    bus = ctx.store.value(f"{node.name}/{index}", "gpu.bus")
    if isinstance(bus, str) and bus:
        return full, next((g for g in full.smi.gpus if same_bus(g.pci_bus_id, bus)), None)
    return full, next((g for g in full.smi.gpus if g.index == index), None)


def _procs(gpu: GpuDetail, gi: int | None = None) -> list[str]:
    return [
        f"pid {p.pid} {(p.name or '?').rsplit('/', 1)[-1]}"
        for p in gpu.processes
        if gi is None or p.gi == gi
    ]


async def _ssh(ctx: ActionContext, node: Node, command: str, limit: float = 120.0) -> Outcome:
    try:
        async with asyncio.timeout(limit + 5.0):
            r = await ctx.transports.ssh.run(node, command, timeout=limit)
    except (CommandTimeout, TimeoutError):
        return Outcome(False, f"{command} on {node.name}: no answer in time, outcome unknown")
    except TransportError as exc:
        return Outcome(False, f"{command} on {node.name} not run: {exc}")
    output = (r.stdout + r.stderr)[-MAX_OUTPUT:]
    last = next((x for x in reversed(output.strip().splitlines()) if x.strip()), "no output")
    if r.exit_status == 0:
        return Outcome(True, f"{command} on {node.name}: exit 0", output)
    return Outcome(False, f"{command} on {node.name}: exit {r.exit_status}: {last[:200]}", output)


# --------------------------------------------------------------------------- reset


def reset_command(index: int) -> str:
    return f"nvidia-smi -r -i {int(index)}"


async def _lost(ctx: ActionContext, node: Node, index: int) -> bool:
    """True when nvidia-smi still enumerates GPU ``index`` but cannot get its handle
    (fallen off the bus): a reset may bring it back; a GPU not enumerated at all is gone."""
    try:
        gpus, _ = await read_fast(ctx, node, cfg(ctx.config).timeout)
    except (TransportError, TimeoutError, ParseError, OSError):
        return False
    return any(g.lost and g.index == index for g in gpus)


LOST_WARNING = (
    "GPU {index} of {node} fell off the bus: the reset may not reach it; if it fails, the "
    "node needs a cold boot (power cycle through its BMC)"
)


async def _reset_refusal(
    ctx: ActionContext, node: Node, index: int
) -> tuple[str | None, list[str]]:
    """Why the reset may not run (None: it may) and, for a lost GPU, a warning."""
    drained, why = drained_everywhere(ctx.store, node.name)
    if not drained:
        return f"{node.name} is not drained: {why}", []
    got = await _fresh(ctx, node, index)
    if isinstance(got, str):
        return got, []
    _full, gpu = got
    if gpu is None:
        if await _lost(ctx, node, index):
            return None, [LOST_WARNING.format(index=index, node=node.name)]
        return (
            f"GPU {index} of {node.name} is not listed by nvidia-smi: a reset cannot reach it",
            [],
        )
    procs = _procs(gpu)
    if procs:
        return f"processes run on GPU {index} of {node.name}: {', '.join(procs)}", procs
    return None, []


async def reset_preview(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
    split = _split(ctx, target)
    if isinstance(split, str):
        return Preview((), refuse=split)
    node, index = split
    refuse, found = await _reset_refusal(ctx, node, index)
    lines = (
        f"{reset_command(index)} on {node.name} "
        f"(ssh {node.ssh.user}@{node.ssh.host}:{node.ssh.port})",
        "resets this GPU only; clears volatile ECC counts, applies pending MIG mode and row remaps",
        "then: read the GPU back (nvidia-smi -q -x)",
    )
    lost = tuple(w for w in found if w.startswith(f"GPU {index} of {node.name} fell off"))
    return Preview(lines, (*lost, *workloads_on(ctx.store, node.name)), refuse=refuse)


async def reset_execute(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
    split = _split(ctx, target)
    if isinstance(split, str):
        return Outcome(False, split)
    node, index = split
    refuse, _ = await _reset_refusal(ctx, node, index)
    if refuse:
        return Outcome(False, f"not run: {refuse}")
    return await _ssh(ctx, node, reset_command(index))


async def reset_verify(
    ctx: ActionContext, target: Target, inputs: Any, outcome: Outcome
) -> Outcome:
    split = _split(ctx, target)
    if isinstance(split, str):
        return Outcome(False, split)
    node, index = split
    got = await _fresh(ctx, node, index)
    if isinstance(got, str):
        return Outcome(False, got)
    _full, gpu = got
    if gpu is None:
        return Outcome(False, f"GPU {index} of {node.name} not listed after the reset")
    pend = "" if gpu.mig_pending == gpu.mig_current else ", MIG mode still pending"
    ok = not pend and not gpu.remap_pending
    return Outcome(
        ok,
        f"GPU {index} of {node.name} answers after the reset: ECC unc "
        f"{gpu.ecc_unc_volatile if gpu.ecc_unc_volatile is not None else '?'}, MIG "
        f"{'on' if gpu.mig_current else 'off'}{pend}",
    )


# --------------------------------------------------------------------------- MIG


class MigModeInputs(ActionInputs):
    enable: bool


class MigCreateInputs(ActionInputs):
    profile: str = Field(pattern=r"^\d+g\.\d+gb(\+me)?$")


class MigDestroyInputs(ActionInputs):
    gi: int = Field(ge=0, le=64)


def mig_mode_command(index: int, enable: bool) -> str:
    return f"nvidia-smi -i {int(index)} -mig {1 if enable else 0}"


def mig_create_command(index: int, profile_id: int) -> str:
    return f"nvidia-smi mig -i {int(index)} -cgi {int(profile_id)} -C"


def mig_destroy_command(index: int, gi: int) -> str:
    base = f"nvidia-smi mig -i {int(index)} -gi {int(gi)}"
    return f"{base} -dci && {base} -dgi"


def _command(spec_id: str, index: int, inputs: Any, model: str | None) -> str | None:
    if spec_id == "gpu.mig_mode":
        return mig_mode_command(index, bool(inputs.enable))
    if spec_id == "gpu.mig_create":
        prof = profile_by_name(model, inputs.profile)
        return None if prof is None else mig_create_command(index, prof.profile_id)
    return mig_destroy_command(index, int(inputs.gi))


async def _mig_check(
    ctx: ActionContext, target: Target, inputs: Any, spec_id: str
) -> tuple[Node, int, str] | str:
    split = _split(ctx, target)
    if isinstance(split, str):
        return split
    node, index = split
    got = await _fresh(ctx, node, index)
    if isinstance(got, str):
        return got
    full, gpu = got
    if gpu is None:
        return f"GPU {index} of {node.name} is not listed by nvidia-smi"
    model = gpu.name or node.hardware.gpu_model
    if not mig_profiles(model):
        return f"{model or 'this GPU'} does not support MIG"
    if spec_id == "gpu.mig_mode":
        if _procs(gpu):
            return f"GPU {index} of {node.name} is in use: {', '.join(_procs(gpu))}"
    elif spec_id == "gpu.mig_create":
        if not gpu.mig_current:
            return f"MIG is not enabled on GPU {index} of {node.name} (enable it, then reset)"
        if profile_by_name(model, inputs.profile) is None:
            names = ", ".join(p.name for p in mig_profiles(model))
            return f"{inputs.profile} is not a profile of {model}: {names}"
    else:
        if not any(g.instance_id == inputs.gi and g.gpu == index for g in full.gis):
            return f"GPU {index} of {node.name} has no GPU instance {inputs.gi}"
        if _procs(gpu, inputs.gi):
            return f"GPU instance {inputs.gi} is in use: {', '.join(_procs(gpu, inputs.gi))}"
    cmd = _command(spec_id, index, inputs, model)
    assert cmd is not None
    return node, index, cmd


def _mig_preview(spec_id: str) -> Any:
    async def preview(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
        got = await _mig_check(ctx, target, inputs, spec_id)
        if isinstance(got, str):
            return Preview((), refuse=got)
        node, _index, cmd = got
        lines = [f"{cmd} on {node.name}"]
        if spec_id == "gpu.mig_mode":
            lines.append("the new mode is pending until the GPU is reset (gpu.reset)")
        return Preview(tuple(lines), tuple(workloads_on(ctx.store, node.name)))

    return preview


def _mig_execute(spec_id: str) -> Any:
    async def execute(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
        got = await _mig_check(ctx, target, inputs, spec_id)
        if isinstance(got, str):
            return Outcome(False, f"not run: {got}")
        node, _index, cmd = got
        return await _ssh(ctx, node, cmd)

    return execute


def _mig_verify(spec_id: str) -> Any:
    async def verify(ctx: ActionContext, target: Target, inputs: Any, outcome: Outcome) -> Outcome:
        split = _split(ctx, target)
        if isinstance(split, str):
            return Outcome(False, split)
        node, index = split
        got = await _fresh(ctx, node, index)
        if isinstance(got, str):
            return Outcome(False, got)
        full, gpu = got
        if gpu is None:
            return Outcome(False, f"GPU {index} of {node.name} not listed")
        gis = [g for g in full.gis if g.gpu == index]
        layout = ", ".join(f"gi{g.instance_id} {g.profile}" for g in gis) or "no instances"
        if spec_id == "gpu.mig_mode":
            ok = gpu.mig_pending is bool(inputs.enable)
            return Outcome(
                ok,
                f"GPU {index} MIG current {'on' if gpu.mig_current else 'off'}, "
                f"pending {'on' if gpu.mig_pending else 'off'}",
            )
        if spec_id == "gpu.mig_create":
            ok = any(g.profile == inputs.profile for g in gis)
            return Outcome(ok, f"GPU {index} of {node.name}: {layout}")
        ok = not any(g.instance_id == inputs.gi for g in gis)
        return Outcome(ok, f"GPU {index} of {node.name}: {layout}")

    return verify


# --------------------------------------------------------------------------- DCGM


DIAG_COMMAND = "dcgmi diag -r 1 -j"


async def diag_preview(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
    node = ctx.inventory.nodes.get(target.name)
    if node is None:
        return Preview((), refuse=f"no node {target.name!r}")
    if ctx.store.value(node.name, "gpu.dcgm") is False:
        return Preview((), refuse=f"DCGM (dcgmi) is not installed on {node.name}")
    return Preview(
        (f"{DIAG_COMMAND} on {node.name}", "quick (level 1) diagnostic: a few seconds, read-only")
    )


async def diag_execute(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
    node = ctx.inventory.nodes[target.name]
    out = await _ssh(ctx, node, shlex.join(DIAG_COMMAND.split()), 300.0)
    if not out.output.strip():
        return out
    try:
        result = parse_dcgm_diag(out.output[out.output.find("{") :])
    except ParseError as exc:
        return Outcome(False, f"{DIAG_COMMAND} on {node.name}: {exc}", out.output)
    failed = [f"{n}: {s}" for n, s in result.tests if s not in ("Pass", "Skip")]
    verdict = "passed" if result.passed else "FAILED: " + "; ".join(failed)
    shown = "\n".join(f"{n}: {s}" for n, s in result.tests)
    return Outcome(bool(result.passed), f"dcgmi diag on {node.name} {verdict}", shown)


async def diag_verify(ctx: ActionContext, target: Target, inputs: Any, outcome: Outcome) -> Outcome:
    return outcome


def _spec(
    sid: str, label: str, inputs: type[ActionInputs], desc: str, destructive: bool = True
) -> ActionSpec:
    return ActionSpec(
        sid,
        label,
        "gpu",
        gpu_targets,
        _mig_preview(sid),
        _mig_execute(sid),
        _mig_verify(sid),
        destructive=destructive,
        role=Role.ADMIN,
        inputs=inputs,
        timeout=150.0,
        description=desc,
    )


RESET = ActionSpec(
    "gpu.reset",
    "Reset GPU (nvidia-smi -r -i N)",
    "gpu",
    gpu_targets,
    reset_preview,
    reset_execute,
    reset_verify,
    destructive=True,
    role=Role.ADMIN,
    timeout=180.0,
    description="Resets one GPU; refused while processes run on it or the node is not drained.",
)
ACTIONS = (
    RESET,
    _spec(
        "gpu.mig_mode",
        "MIG mode on/off (pending until reset)",
        MigModeInputs,
        "nvidia-smi -i N -mig 1|0; refused while the GPU is in use.",
    ),
    _spec(
        "gpu.mig_create",
        "Create MIG instance (profile)",
        MigCreateInputs,
        "nvidia-smi mig -i N -cgi PROFILE -C, from the GPU's profile list.",
        destructive=False,
    ),
    _spec(
        "gpu.mig_destroy",
        "Destroy MIG instance",
        MigDestroyInputs,
        "Destroys the compute and GPU instance; refused while a process uses it.",
    ),
    ActionSpec(
        "gpu.dcgm_diag",
        "DCGM quick diagnostic (dcgmi diag -r 1)",
        "node",
        node_targets,
        diag_preview,
        diag_execute,
        diag_verify,
        role=Role.OPERATOR,
        timeout=330.0,
        description="Runs dcgmi diag -r 1 on the node and shows each test's result.",
    ),
)
