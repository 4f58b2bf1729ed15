"""Actions: clear a port's counters; disable / enable a switch port.

``infiniband.clear_counters`` reads the port's counters (``perfquery -x``) and
shows them in the preview, then runs ``perfquery -x -R`` (which prints the
values it clears): both land in the audit log, the preview in the intent row
and the printed values in the result's output. ``infiniband.switch_port_disable``
and ``..._enable`` run ``ibportstate`` on the fabric node, typed-confirmed.
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
from plugins.infiniband.collect import split_port_target, switch_port_target
from plugins.infiniband.config import as_config, ib_nodes
from plugins.infiniband.parse import ERROR_COUNTERS, merge_perf, parse_perfquery

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, Node

TIMEOUT = 20.0
MAX_OUTPUT = 4000


# --------------------------------------------------------------------------- helpers


async def _run(ctx: ActionContext, node: Node, command: str) -> tuple[bool, str, str]:
    """(ran, detail, output). Silence is *unknown*, never a failure of the port."""
    try:
        async with asyncio.timeout(TIMEOUT + 2.0):
            r = await ctx.transports.ssh.run(node, command, timeout=TIMEOUT)
    except (CommandTimeout, TimeoutError):
        return False, f"{command} on {node.name}: no answer in time, outcome unknown", ""
    except TransportError as exc:
        return False, f"{command} on {node.name} not run: {exc}", ""
    output = (r.stdout + r.stderr)[-MAX_OUTPUT:]
    if r.exit_status != 0:
        last = r.stderr.strip().splitlines()
        why = last[-1] if last else "no message"
        return False, f"{command} on {node.name}: exit {r.exit_status}: {why}", output
    return True, f"{command} on {node.name}: exit 0", output


def _summary(counters: dict[str, int | None]) -> str:
    return ", ".join(f"{c}={counters.get(c)}" for c in ERROR_COUNTERS if c in counters)


# --------------------------------------------------------------------------- clear


def port_action_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    """Every expected HCA port (``mlx5_N/1``) of every IB node."""
    return [
        Target(
            "ib_port",
            f"ib:{n.name}:mlx5_{i}/1",
            node=n.name,
            attrs={"device": f"mlx5_{i}", "port": 1},
        )
        for n in ib_nodes(inventory)
        for i in range(n.hardware.ib_ports)
    ]


def _port(ctx: ActionContext, target: Target) -> tuple[Node, str, int] | str:
    parts = split_port_target(target.name)
    if parts is None:
        return f"{target.name!r} is not a port (ib:NODE:DEVICE/PORT)"
    node = ctx.inventory.nodes.get(parts[0])
    if node is None:
        return f"node {parts[0]!r} is not in the inventory"
    return node, parts[1], parts[2]


def read_command(dev: str, port: int) -> str:
    return f"perfquery -x -C {shlex.quote(dev)} -P {port}"


def clear_command(dev: str, port: int) -> str:
    """``perfquery -R`` resets PortCounters (the error counters); ``-x -R`` the
    extended (data) counters, where the HCA has them."""
    d = shlex.quote(dev)
    return (
        f"perfquery -R -C {d} -P {port} && "
        f"{{ perfquery -x -R -C {d} -P {port} >/dev/null 2>&1 || true; }}"
    )


async def _read(ctx: ActionContext, node: Node, dev: str, port: int) -> dict[str, int | None] | str:
    ran, detail, output = await _run(ctx, node, read_command(dev, port))
    if not ran:
        return detail
    try:
        return merge_perf(parse_perfquery(output))
    except ParseError as exc:
        return f"cannot read the counters: {exc}"


async def clear_preview(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
    got = _port(ctx, target)
    if isinstance(got, str):
        return Preview((), refuse=got)
    node, dev, port = got
    counters = await _read(ctx, node, dev, port)
    if isinstance(counters, str):
        return Preview((), refuse=f"counters not recorded, so not cleared: {counters}")
    return Preview(
        (
            f"{clear_command(dev, port)} on {node.name} ({node.ssh.user}@{node.ssh.host})",
            f"counters now (recorded here): {_summary(counters)}",
            f"data: port_xmit_data={counters.get('port_xmit_data')} "
            f"port_rcv_data={counters.get('port_rcv_data')}",
            "then: read them back; error counters must be 0",
        ),
        warnings=("error rates restart from zero; the history before stays in the audit log",),
    )


async def clear_execute(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
    got = _port(ctx, target)
    if isinstance(got, str):
        return Outcome(False, got)
    node, dev, port = got
    # perfquery -R prints nothing: read the values first, so the result records them.
    ran, detail, before_text = await _run(ctx, node, read_command(dev, port))
    if not ran:
        return Outcome(False, f"counters not recorded, so not cleared: {detail}", before_text)
    try:
        before = merge_perf(parse_perfquery(before_text))
    except ParseError:
        before = {}
    ran, detail, output = await _run(ctx, node, clear_command(dev, port))
    record = f"before clear: {_summary(before)}\n{before_text}{output}"[-MAX_OUTPUT:]
    if not ran:
        return Outcome(False, detail, record)
    return Outcome(True, f"{detail}; cleared {_summary(before) or 'counters'}", record)


async def clear_verify(
    ctx: ActionContext, target: Target, inputs: Any, outcome: Outcome
) -> Outcome:
    got = _port(ctx, target)
    if isinstance(got, str):
        return Outcome(False, got)
    node, dev, port = got
    counters = await _read(ctx, node, dev, port)
    if isinstance(counters, str):
        return Outcome(False, f"cleared, but could not read back: {counters}")
    left = {c: v for c, v in counters.items() if c in ERROR_COUNTERS and v}
    if left:
        return Outcome(False, f"{target.name}: counters not zero after clear: {left}")
    return Outcome(True, f"{target.name}: error counters read back 0 ({outcome.detail})")


# --------------------------------------------------------------------------- switch ports


class SwitchPortInputs(ActionInputs):
    port: int = Field(ge=1, le=256, description="switch port number")


def switch_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    cfg = as_config(config)
    if cfg.fabric_node is None:
        return []
    return [
        Target("ib_switch", s.name, node=cfg.fabric_node, attrs={"guid": s.guid, "ports": s.ports})
        for s in cfg.switches
    ]


def _switch(ctx: ActionContext, target: Target, port: int) -> tuple[Node, str] | str:
    cfg = as_config(ctx.config)
    sw = cfg.switch(target.name)
    if sw is None:
        return f"switch {target.name!r} is not declared in plugins.infiniband.switches"
    if cfg.fabric_node is None or cfg.fabric_node not in ctx.inventory.nodes:
        return "plugins.infiniband.fabric_node names no node: nowhere to run ibportstate"
    if port > sw.ports:
        return f"{sw.name} has {sw.ports} ports, not {port}"
    if sw.guid:
        dest = f"-G {sw.guid}"
    else:
        lid = ctx.store.value(switch_port_target(sw.name, port), "infiniband.sw_lid")
        if not isinstance(lid, int):
            return f"LID of {sw.name} unknown (no fabric reading yet) and no guid declared"
        dest = str(lid)
    return ctx.inventory.nodes[cfg.fabric_node], dest


def portstate_command(dest: str, port: int, op: str) -> str:
    return f"ibportstate {dest} {port} {op}"


def _switch_actions(op: str) -> ActionSpec:
    async def preview(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
        port = int(inputs.port)
        got = _switch(ctx, target, port)
        if isinstance(got, str):
            return Preview((), refuse=got)
        node, dest = got
        sp = switch_port_target(target.name, port)
        peer = ctx.store.value(sp, "infiniband.sw_peer")
        state = ctx.store.value(sp, "infiniband.sw_state")
        phys = ctx.store.value(sp, "infiniband.sw_phys_state")
        peer_node = peer.split()[0] if isinstance(peer, str) and peer.split() else None
        if op == "disable" and peer_node == node.name:
            return Preview((), refuse=f"{target.name}[{port}] is the fabric node's own link")
        warnings: list[str] = []
        if op == "disable":
            warnings.append(
                f"traffic through {target.name}[{port}] stops"
                + (f": {peer} loses this link" if peer else "")
            )
            if isinstance(peer, str) and peer_node is None:
                warnings.append("this is an inter-switch link: the fabric reroutes around it")
        return Preview(
            (
                f"{portstate_command(dest, port, op)} on {node.name} (fabric node)",
                f"{target.name} port {port} now: {state or '?'} / {phys or '?'}"
                + (f", connected to {peer}" if peer else ""),
                "then: query the port; it must read "
                + ("Disabled" if op == "disable" else "not Disabled"),
            ),
            warnings=tuple(warnings),
        )

    async def execute(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
        got = _switch(ctx, target, int(inputs.port))
        if isinstance(got, str):
            return Outcome(False, got)
        node, dest = got
        ran, detail, output = await _run(ctx, node, portstate_command(dest, int(inputs.port), op))
        return Outcome(ran, detail, output)

    async def verify(ctx: ActionContext, target: Target, inputs: Any, outcome: Outcome) -> Outcome:
        got = _switch(ctx, target, int(inputs.port))
        if isinstance(got, str):
            return Outcome(False, got)
        node, dest = got
        ran, detail, output = await _run(
            ctx, node, portstate_command(dest, int(inputs.port), "query")
        )
        if not ran:
            return Outcome(False, f"could not query the port back: {detail}")
        phys = next(
            (
                ln.split(".")[-1].strip(".")
                for ln in output.splitlines()
                if ln.startswith("PhysLinkState:")
            ),
            None,
        )
        phys = (phys or "").lstrip(".")
        disabled = phys == "Disabled"
        ok = disabled if op == "disable" else not disabled
        return Outcome(ok, f"{target.name}[{inputs.port}] physical state {phys or '?'}")

    return ActionSpec(
        id=f"infiniband.switch_port_{op}",
        label=f"{op.title()} a switch port (ibportstate)",
        target_kind="ib_switch",
        targets=switch_targets,
        preview=preview,
        execute=execute,
        verify=verify,
        destructive=True,
        role=Role.ADMIN if op == "disable" else Role.OPERATOR,
        inputs=SwitchPortInputs,
        timeout=TIMEOUT * 3,
        description=f"Runs `ibportstate <switch> <port> {op}` on the fabric node, then "
        "queries the port back.",
    )


CLEAR = ActionSpec(
    id="infiniband.clear_counters",
    label="Clear a port's counters (perfquery -R)",
    target_kind="ib_port",
    targets=port_action_targets,
    preview=clear_preview,
    execute=clear_execute,
    verify=clear_verify,
    destructive=False,
    role=Role.OPERATOR,
    timeout=TIMEOUT * 3,
    description="Records the port's counters in the audit log, runs `perfquery -R` (and `-x -R`), "
    "reads them back.",
)

ACTIONS = (CLEAR, _switch_actions("disable"), _switch_actions("enable"))
