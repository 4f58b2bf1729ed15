"""The dead man's switch on a real host: the restore scheduled by the target's own systemd.

Before a drill injects a fault it runs, on the target (the node, or the fabric
node for a switch port), ``systemd-run --unit=dcc-drill-<id> --on-active=<N>s --
/bin/sh -c '<restore>'``; after a normal restore it runs ``systemctl stop
dcc-drill-<id>.timer``. A console that dies mid-drill (or loses its network)
never cancels it, and the host restores by itself N seconds after the arming.
Both are actions (``drill.deadman_ssh_arm`` / ``drill.deadman_ssh_cancel``)
through the ActionRunner, so the arming and the cancelling are on the record.

The restore command is the scenario's (``inputs.command``, e.g.
``systemctl start minio.service`` or ``ibportstate -G 0x... 1 enable``); the
drill adds ``after_s`` and ``key``.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field

from console.plugin import ActionContext, ActionInputs, ActionSpec, Outcome, Preview, Target

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, Node

TIMEOUT = 20.0
_KEY = r"^[A-Za-z0-9_.-]+$"


class ArmInputs(ActionInputs):
    command: str = Field(min_length=1, max_length=2000)
    """The restore, as a shell command run on the target by its systemd."""
    after_s: float = Field(gt=0, le=86400)
    key: str = Field(min_length=1, max_length=120, pattern=_KEY)


class CancelInputs(ActionInputs):
    key: str = Field(min_length=1, max_length=120, pattern=_KEY)


def unit_name(key: str) -> str:
    return "dcc-drill-" + re.sub(r"[^A-Za-z0-9_.-]", "-", key)


def arm_command(key: str, after_s: float, command: str) -> str:
    return (
        f"systemd-run --unit={unit_name(key)} --on-active={max(1, round(after_s))}s "
        f"--timer-property=AccuracySec=1s -- /bin/sh -c {shlex.quote(command)}"
    )


def _nodes(inventory: Inventory, config: Any) -> Sequence[Target]:
    return [Target("node", n, node=n) for n in inventory.nodes]


def _node(ctx: ActionContext, target: Target) -> Node | None:
    return ctx.inventory.nodes.get(target.node or target.name)


async def _ssh(ctx: ActionContext, node: Node, command: str) -> tuple[int, str]:
    async with asyncio.timeout(TIMEOUT + 1):
        result = await ctx.transports.ssh.run(node, command, timeout=TIMEOUT)
    text = (result.stdout + result.stderr).strip()
    status = -1 if result.exit_status is None else int(result.exit_status)
    return status, text[:2000]


async def _is_active(ctx: ActionContext, node: Node, key: str) -> bool:
    status, out = await _ssh(ctx, node, f"systemctl is-active {unit_name(key)}.timer")
    return status == 0 and out.splitlines()[:1] == ["active"]


async def preview_arm(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
    assert isinstance(inputs, ArmInputs)
    if _node(ctx, target) is None:
        return Preview((), refuse=f"{target.name} is not a node of the inventory")
    command = arm_command(inputs.key, inputs.after_s, inputs.command)
    return Preview(
        (
            f"on {target.node or target.name}: {command}",
            f"unless cancelled, {target.name} runs the restore by itself after "
            f"{inputs.after_s:g} s",
        )
    )


async def execute_arm(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
    assert isinstance(inputs, ArmInputs)
    node = _node(ctx, target)
    if node is None:
        return Outcome(False, f"{target.name} is not a node")
    status, out = await _ssh(ctx, node, arm_command(inputs.key, inputs.after_s, inputs.command))
    return Outcome(status == 0, f"systemd-run exited {status}", out)


async def verify_arm(ctx: ActionContext, target: Target, inputs: Any, outcome: Outcome) -> Outcome:
    assert isinstance(inputs, ArmInputs)
    node = _node(ctx, target)
    if not outcome.ok or node is None:
        return outcome
    armed = await _is_active(ctx, node, inputs.key)
    return Outcome(armed, f"{unit_name(inputs.key)}.timer {'active' if armed else 'NOT active'}")


async def preview_cancel(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
    assert isinstance(inputs, CancelInputs)
    return Preview((f"on {target.node or target.name}: systemctl stop {unit_name(inputs.key)}"
                    ".timer",))  # fmt: skip


async def execute_cancel(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
    assert isinstance(inputs, CancelInputs)
    node = _node(ctx, target)
    if node is None:
        return Outcome(False, f"{target.name} is not a node")
    status, out = await _ssh(ctx, node, f"systemctl stop {unit_name(inputs.key)}.timer")
    return Outcome(status == 0, f"systemctl stop exited {status}", out)


async def verify_cancel(
    ctx: ActionContext, target: Target, inputs: Any, outcome: Outcome
) -> Outcome:
    assert isinstance(inputs, CancelInputs)
    node = _node(ctx, target)
    if not outcome.ok or node is None:
        return outcome
    armed = await _is_active(ctx, node, inputs.key)
    state = "still active" if armed else "gone"
    return Outcome(not armed, f"{unit_name(inputs.key)}.timer {state}")


DEADMAN_ACTIONS = (
    ActionSpec(
        id="drill.deadman_ssh_arm",
        label="Arm a drill's dead man's switch (systemd-run on the target)",
        target_kind="node",
        targets=_nodes,
        preview=preview_arm,
        execute=execute_arm,
        verify=verify_arm,
        inputs=ArmInputs,
        timeout=TIMEOUT * 3,
        description="Schedules the restore on the target with a transient systemd timer.",
    ),
    ActionSpec(
        id="drill.deadman_ssh_cancel",
        label="Cancel a drill's dead man's switch (systemctl stop)",
        target_kind="node",
        targets=_nodes,
        preview=preview_cancel,
        execute=execute_cancel,
        verify=verify_cancel,
        inputs=CancelInputs,
        timeout=TIMEOUT * 3,
        description="Stops the transient timer a drill armed, after a normal restore.",
    ),
)
