"""Power actions on a node through its BMC: on, soft shutdown, off, cycle, reset, identify.

Only the ActionRunner calls these. The preview says what runs where (the exact
tool argv without secrets, or the Redfish request) and what runs on the node
(``console.workloads``); off, cycle and reset are typed-confirmed. After the
command the power state is read back; a BMC that does not answer makes the
outcome *unknown* (the runner records a raised ``TimeoutError`` that way),
never "failed".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from console.plugin import ActionContext, ActionInputs, ActionSpec, Outcome, Preview, Role, Target
from console.transports import TransportError
from console.workloads import workloads_on
from plugins.power import parse_ipmi as pi
from plugins.power import parse_redfish as pr
from plugins.power.collect import system_uri
from plugins.power.config import PowerConfig, SecretUnavailable, bmc_host, bmc_nodes, cfg
from plugins.power.ipmi import FREEIPMI, IPMITOOL, BmcSilent, freeipmi_argv, ipmitool_argv, run_ipmi
from plugins.power.redfish import redfish_session

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, Node

Verb = Literal["on", "soft", "off", "cycle", "reset"]

# Redfish ResetType for each verb, with fallbacks when the BMC does not list it.
RESET_TYPES: dict[str, tuple[str, ...]] = {
    "on": ("On", "ForceOn"),
    "soft": ("GracefulShutdown",),
    "off": ("ForceOff",),
    "cycle": ("PowerCycle",),
    "reset": ("ForceRestart", "GracefulRestart"),
}
EXPECT: dict[str, str] = {"on": "on", "soft": "off", "off": "off", "cycle": "on", "reset": "on"}
VERIFY_POLL = 1.0
VERIFY_WAIT = 40.0
"""Seconds to wait for the state to land (BMCs and sushy apply changes late)."""


class BmcGoneSilent(TimeoutError):
    """The BMC stopped answering after the command: the outcome is unknown."""


def node_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    return [Target("node", n.name, node=n.name) for n in bmc_nodes(inventory)]


def _node(ctx: ActionContext, target: Target) -> Node | str:
    node = ctx.inventory.nodes.get(target.name)
    if node is None:
        return f"{target.name} is not in the inventory"
    if node.bmc is None:
        return f"{target.name} has no BMC in the inventory"
    return node


def how(c: PowerConfig, node: Node, verb: str, extra: Sequence[str] = ()) -> str:
    """The exact command or request, as the preview and the audit show it (no secrets)."""
    assert node.bmc is not None
    if node.bmc.protocol == "ipmi":
        if c.tool_for(node.name) == "freeipmi":
            argv = freeipmi_argv(c, node, [*FREEIPMI[verb], *extra], "<0600 file>")
        else:
            argv = [
                *ipmitool_argv(c, node, [*IPMITOOL[verb], *extra]),
                "(password from IPMI_PASSWORD)",
            ]
        return " ".join(argv)
    port = f":{node.bmc.port}" if node.bmc.port else ""
    pin = "pinned certificate" if node.bmc.tls_fingerprint else "verified TLS"
    if verb == "identify":
        url = f"https://{bmc_host(node)}{port}/redfish/v1/Systems/<id>"
        return f"PATCH {url} LocationIndicatorActive ({pin})"
    return (
        f"POST https://{bmc_host(node)}{port}/redfish/v1/Systems/<id>/Actions/ComputerSystem.Reset "
        f"ResetType={'|'.join(RESET_TYPES[verb])} ({pin}, session closed after)"
    )


async def read_state(ctx: ActionContext, node: Node) -> tuple[str | None, dict[str, Any]]:
    """The power state now, straight from the BMC (raises BmcSilent when it is silent)."""
    c = cfg(ctx.config)
    assert node.bmc is not None
    if node.bmc.protocol == "ipmi":
        res = await run_ipmi(ctx.transports, ctx.inventory, c, node, "power_status")
        return pi.parse_power_state(res.stdout), {}
    async with redfish_session(ctx.transports, ctx.inventory, node, c) as rf:
        system = pr.parse_system(await rf.get(await system_uri(rf)))
        return system["power_state"], system


def _preview_for(verb: str) -> Any:
    async def preview(ctx: ActionContext, target: Target, inputs: Any) -> Preview:
        node = _node(ctx, target)
        if isinstance(node, str):
            return Preview(lines=(), refuse=node)
        c = cfg(ctx.config)
        extra = _identify_extra(c, node, inputs) if verb == "identify" else ()
        state = ctx.store.value(node.name, "power.state")
        bmc_ok = ctx.store.value(node.name, "power.bmc_ok")
        lines = [
            f"on {node.name}'s BMC: {how(c, node, verb, extra)}",
            f"power now: {state or 'unknown'}",
        ]
        warnings: list[str] = []
        if verb != "identify":
            work = workloads_on(ctx.store, node.name)
            if work:
                lines.append("runs on the node:")
                lines += [f"  {w}" for w in work]
                if verb in ("soft", "off", "cycle", "reset"):
                    warnings.append(f"{node.name} runs work: it will be killed or interrupted")
            else:
                lines.append("runs on the node: nothing any scheduler reports")
            lines.append(
                f"then: read the power state back until it is {EXPECT[verb]} "
                f"(up to {_wait(c, verb):g}s)"
            )
            if verb == "on" and state == "on":
                warnings.append(f"{node.name} is already on")
            if verb in ("soft", "off") and state == "off":
                warnings.append(f"{node.name} is already off")
            if verb in ("off", "cycle", "reset"):
                warnings.append("a hard power change: the OS gets no chance to shut down")
        if bmc_ok is False:
            warnings.append("the BMC did not answer the last poll")
        return Preview(lines=tuple(lines), warnings=tuple(warnings))

    return preview


def _wait(c: PowerConfig, verb: str) -> float:
    return c.soft_shutdown_wait_s if verb == "soft" else VERIFY_WAIT


def _identify_extra(c: PowerConfig, node: Node, inputs: Any) -> tuple[str, ...]:
    seconds = int(getattr(inputs, "seconds", 60))
    if c.tool_for(node.name) == "freeipmi":
        return (f"--chassis-identify={seconds if seconds else 'TURN-OFF'}",)
    return (str(seconds),)


def _execute_for(verb: str) -> Any:
    async def execute(ctx: ActionContext, target: Target, inputs: Any) -> Outcome:
        node = _node(ctx, target)
        if isinstance(node, str):
            return Outcome(False, node)
        c = cfg(ctx.config)
        assert node.bmc is not None
        try:
            if node.bmc.protocol == "ipmi":
                if verb == "identify":
                    extra = _identify_extra(c, node, inputs)
                    res = await run_ipmi(
                        ctx.transports, ctx.inventory, c, node, "identify", extra=extra
                    )
                else:
                    res = await run_ipmi(ctx.transports, ctx.inventory, c, node, verb)
                return Outcome(
                    True, f"{node.name}: {res.stdout.strip() or 'done'}", res.stdout[-2000:]
                )
            return await _redfish_execute(ctx, node, verb, inputs)
        except BmcSilent as exc:
            # The command may or may not have reached the BMC.
            raise BmcGoneSilent(f"{exc}: outcome unknown") from None
        except (TransportError, SecretUnavailable, LookupError) as exc:
            return Outcome(False, f"{node.name}: not done: {exc}")

    return execute


async def _redfish_execute(ctx: ActionContext, node: Node, verb: str, inputs: Any) -> Outcome:
    c = cfg(ctx.config)
    async with redfish_session(ctx.transports, ctx.inventory, node, c) as rf:
        uri = await system_uri(rf)
        raw = await rf.get(uri)
        system = pr.parse_system(raw)
        if verb == "identify":
            on = int(getattr(inputs, "seconds", 60)) > 0
            body: dict[str, Any] = {"LocationIndicatorActive": on}
            # Older BMCs know only the deprecated IndicatorLED (the raw resource says which).
            if "LocationIndicatorActive" not in raw and "IndicatorLED" in raw:
                body = {"IndicatorLED": "Blinking" if on else "Off"}
            resp = await rf.request("PATCH", uri, json=body)
            if resp.status >= 400:
                resp = await rf.request(
                    "PATCH", uri, json={"IndicatorLED": "Blinking" if on else "Off"}
                )
            ok = resp.status < 400
            return Outcome(
                ok, f"{node.name}: identify LED {'on' if on else 'off'}: HTTP {resp.status}"
            )
        allowed = system["reset_types"]
        target = system["reset_target"] or uri + "/Actions/ComputerSystem.Reset"
        steps = _reset_steps(verb, allowed)
        if steps is None:
            return Outcome(
                False,
                f"{node.name}: the BMC offers no reset type for {verb} ({', '.join(allowed)})",
            )
        done = []
        for rtype in steps:
            if rtype == "wait-off":
                await _wait_for(ctx, node, "off", VERIFY_WAIT)
                continue
            resp = await rf.request("POST", target, json={"ResetType": rtype})
            if resp.status >= 400:
                return Outcome(
                    False, f"{node.name}: ResetType {rtype}: HTTP {resp.status}", resp.text()[:2000]
                )
            done.append(rtype)
        return Outcome(True, f"{node.name}: ResetType {' then '.join(done)} accepted")


def _reset_steps(verb: str, allowed: Sequence[str]) -> list[str] | None:
    """The ResetType requests for ``verb``; a cycle without PowerCycle is ForceOff, wait, On."""
    if not allowed:
        return [RESET_TYPES[verb][0]]
    for rtype in RESET_TYPES[verb]:
        if rtype in allowed:
            return [rtype]
    if verb == "cycle" and "ForceOff" in allowed and "On" in allowed:
        return ["ForceOff", "wait-off", "On"]
    return None


async def _wait_for(
    ctx: ActionContext, node: Node, want: str, wait: float
) -> tuple[str | None, float]:
    started = time.monotonic()
    seen: str | None = None
    while True:
        try:
            seen, _ = await read_state(ctx, node)
        except BmcSilent as exc:
            raise BmcGoneSilent(
                f"{node.name}: the BMC did not answer the read-back ({exc}): outcome unknown"
            ) from None
        if seen == want:
            return seen, time.monotonic() - started
        if time.monotonic() - started > wait:
            return seen, time.monotonic() - started
        await asyncio.sleep(VERIFY_POLL)


def _verify_for(verb: str) -> Any:
    async def verify(ctx: ActionContext, target: Target, inputs: Any, outcome: Outcome) -> Outcome:
        if not outcome.ok:
            return outcome
        node = _node(ctx, target)
        if isinstance(node, str):
            return Outcome(False, node)
        if verb == "identify":
            return outcome
        want = EXPECT[verb]
        seen, took = await _wait_for(ctx, node, want, _wait(cfg(ctx.config), verb))
        if seen != want:
            return Outcome(
                False, f"{node.name} power is {seen or 'unknown'}, not {want}, after {took:.0f}s"
            )
        # Keep what was sent (the ResetType steps, the tool's answer) in the audited detail.
        return Outcome(
            True, f"{outcome.detail}; {node.name} power {seen} (read back after {took:.1f}s)"
        )

    return verify


class IdentifyInputs(ActionInputs):
    seconds: int = Field(default=60, ge=0, le=255)
    """How long the LED blinks; 0 turns it off."""


def _spec(verb: str, label: str, destructive: bool, description: str) -> ActionSpec:
    wait = 150.0 if verb == "soft" else VERIFY_WAIT
    return ActionSpec(
        id=f"power.{verb}",
        label=label,
        target_kind="node",
        targets=node_targets,
        preview=_preview_for(verb),
        execute=_execute_for(verb),
        verify=_verify_for(verb),
        destructive=destructive,
        role=Role.OPERATOR,
        inputs=IdentifyInputs if verb == "identify" else ActionInputs,
        timeout=wait + 60.0,
        description=description,
    )


ACTIONS = (
    _spec(
        "on",
        "Power on (BMC)",
        False,
        "Powers the node on through its BMC, then reads the state back.",
    ),
    _spec(
        "soft",
        "Soft shutdown (ACPI)",
        False,
        "Asks the OS to shut down (ACPI), waits for power off.",
    ),
    _spec("off", "Power off (hard)", True, "Cuts power through the BMC; the OS is not asked."),
    _spec("cycle", "Power cycle", True, "Off then on through the BMC; for a hung node."),
    _spec("reset", "Reset (hard)", True, "Hard reset through the BMC; power stays on."),
    _spec(
        "identify", "Identify LED", False, "Blinks the chassis identify LED for N seconds (0: off)."
    ),
)
