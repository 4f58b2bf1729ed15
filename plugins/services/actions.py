"""``services.restart``: restart a service's systemd unit over SSH.

Only the ActionRunner calls these coroutines: it checks the role, shows the
preview, asks for the typed confirmation, writes the audit rows. This module
says exactly what will run where, runs it, and looks at what came of it.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from console.plugin import (
    ActionContext,
    ActionSpec,
    Outcome,
    Preview,
    Role,
    Target,
)
from console.transports import CommandTimeout, TransportError
from plugins.services.card import describe
from plugins.services.collect import collect_http, read_units
from plugins.services.config import ServiceCheck, ServicesConfig, node_host
from plugins.services.status import service_status

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, Node

log = logging.getLogger(__name__)

RESTART_TIMEOUT = 90.0
"""Seconds ``systemctl restart`` may take (it waits for the start job)."""
VERIFY_TIMEOUT = 30.0
"""Seconds verification waits for the unit to be active again."""
VERIFY_POLL = 0.5
MAX_OUTPUT = 4000


def _cfg(config: Any) -> ServicesConfig:
    return config if isinstance(config, ServicesConfig) else ServicesConfig()


def restart_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    """Checks with a systemd unit and a node: what can be restarted."""
    return [
        Target("service", c.name, node=c.node, attrs={"unit": c.systemd.unit})
        for c in _cfg(config).checks
        if c.systemd is not None and c.node is not None
    ]


def _resolve(ctx: ActionContext, target: Target) -> tuple[ServiceCheck, Node, str] | str:
    """(check, node, unit), or why the target cannot be restarted."""
    check = _cfg(ctx.config).get(target.name)
    if check is None:
        return f"no service check named {target.name!r}"
    if check.systemd is None or check.node is None:
        return f"{check.name} declares no systemd unit and node: nothing to restart"
    node = ctx.inventory.nodes.get(check.node)
    if node is None:
        return f"{check.name}: node {check.node!r} is not in the inventory"
    return check, node, check.systemd.unit


def restart_command(unit: str) -> str:
    return f"systemctl restart {shlex.quote(unit)}"


def where(node: Node) -> str:
    """``stor01 (ops@127.0.0.1:40211)``: the node and how it is reached."""
    return f"{node.name} ({node.ssh.user}@{node_host(node)}:{node.ssh.port})"


async def preview(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
    resolved = _resolve(ctx, target)
    if isinstance(resolved, str):
        return Preview(lines=(), refuse=resolved)
    check, node, unit = resolved
    st = service_status(ctx.store, check)
    lines = (
        f"{restart_command(unit)} on {where(node)}",
        f"now: {describe(st)}",
        f"then: wait up to {VERIFY_TIMEOUT:g}s for {unit} to be active"
        + (", then check its health endpoint once" if check.http is not None else ""),
    )
    warnings: tuple[str, ...] = ()
    if st.state == "ok":
        warnings = (f"{check.name} is healthy now: a restart interrupts its clients",)
    return Preview(lines=lines, warnings=warnings)


async def execute(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
    resolved = _resolve(ctx, target)
    if isinstance(resolved, str):
        return Outcome(False, resolved)
    _check, node, unit = resolved
    command = restart_command(unit)
    try:
        async with asyncio.timeout(RESTART_TIMEOUT + 5.0):
            result = await ctx.transports.ssh.run(node, command, timeout=RESTART_TIMEOUT)
    except CommandTimeout as exc:
        return Outcome(
            False, f"{command} on {node.name}: no answer in time, outcome unknown: {exc}"
        )
    except TimeoutError:
        return Outcome(False, f"{command} on {node.name}: no answer in time, outcome unknown")
    except TransportError as exc:
        return Outcome(False, f"{command} on {node.name} not run: {exc}")
    output = (result.stdout + result.stderr)[-MAX_OUTPUT:]
    if result.exit_status == 0:
        return Outcome(True, f"{command} on {node.name}: exit 0", output)
    stderr = result.stderr.strip().splitlines()
    why = stderr[-1] if stderr else "no message"
    return Outcome(False, f"{command} on {node.name}: exit {result.exit_status}: {why}", output)


async def verify(ctx: ActionContext, target: Target, inputs: Any, outcome: Outcome) -> Outcome:
    """Wait for the unit to be active (bounded), then try the HTTP check once."""
    if not outcome.ok:
        return outcome
    resolved = _resolve(ctx, target)
    if isinstance(resolved, str):
        return Outcome(False, resolved)
    check, node, unit = resolved
    started = time.monotonic()
    deadline = started + VERIFY_TIMEOUT
    seen = "not read"
    while True:
        try:
            states = await read_units(ctx, node, [unit])
        except (TransportError, TimeoutError, RuntimeError, ValueError) as exc:
            seen = f"could not read the unit: {exc}"
        else:
            unit_state = states.get(unit)
            seen = unit_state.summary if unit_state else "not reported"
            if unit_state is not None and unit_state.active_state == "active":
                break
            if unit_state is not None and unit_state.active_state == "failed":
                return Outcome(False, f"{unit} on {node.name} is {seen} after the restart")
        if time.monotonic() >= deadline:
            return Outcome(
                False, f"{unit} on {node.name} not active after {VERIFY_TIMEOUT:g}s: {seen}"
            )
        await asyncio.sleep(VERIFY_POLL)
    took = time.monotonic() - started
    detail = f"{unit} on {node.name} {seen} after {took:.1f}s"
    if check.http is None:
        return Outcome(True, detail)
    readings = await collect_http(ctx, Target("service", check.name, node=check.node))
    http = {r.metric: r for r in readings}
    state_r = http.get("services.http_state")
    state = state_r.value if state_r else "unknown"
    latency = http.get("services.latency_ms")
    lat = f" {latency.value:.0f} ms" if latency and isinstance(latency.value, float) else ""
    why = f" ({state_r.detail})" if state_r and state_r.detail and state != "ok" else ""
    detail += f"; health check {state}{lat}{why}"
    return Outcome(state in ("ok", "slow"), detail)


RESTART = ActionSpec(
    id="services.restart",
    label="Restart service (systemd)",
    target_kind="service",
    targets=restart_targets,
    preview=preview,
    execute=execute,
    verify=verify,
    destructive=True,
    role=Role.OPERATOR,
    timeout=RESTART_TIMEOUT + VERIFY_TIMEOUT + 20.0,
    description="Runs `systemctl restart UNIT` on the service's node over SSH, then waits for "
    "the unit to be active and checks the health endpoint once.",
)

ACTIONS = (RESTART,)
