"""Rack sums, alert rules and the ``power.bmc_healthy`` check."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from console.plugin import CheckSpec, Finding, Severity, Target
from console.store import StoreView
from plugins.power.config import PowerConfig, config_of

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, Node

GLYPH = {Severity.OK: "●", Severity.UNKNOWN: "?", Severity.WARNING: "▲", Severity.CRITICAL: "✖"}


def _num(store: StoreView, node: str, metric: str) -> float | None:
    v = store.value(node, metric)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def inlet_severity(c: PowerConfig, inlet: float | None) -> Severity:
    if inlet is None:
        return Severity.UNKNOWN
    if inlet > c.inlet_crit_c:
        return Severity.CRITICAL
    return Severity.WARNING if inlet > c.inlet_warn_c else Severity.OK


def node_severity(store: StoreView, c: PowerConfig, node: str) -> Severity:
    """The worst of: BMC silent, inlet, PSU/fan failures, redundancy lost."""
    if store.value(node, "power.bmc_ok") is False:
        return Severity.CRITICAL
    if store.value(node, "power.bmc_ok") is None:
        return Severity.UNKNOWN
    sev = inlet_severity(c, _num(store, node, "power.inlet_c"))
    if (
        store.value(node, "power.redundancy") == "lost"
        or (_num(store, node, "power.psus_failed") or 0) > 0
    ):
        sev = max(sev, Severity.CRITICAL)
    if (_num(store, node, "power.fans_failed") or 0) > 0:
        sev = max(sev, Severity.WARNING)
    return sev


@dataclass(frozen=True, slots=True)
class RackPower:
    name: str
    budget_kw: float
    draw_kw: float | None
    """Sum of the nodes' power; None when no node's power is known."""
    known: int
    nodes: int
    off_nodes: tuple[str, ...]
    next_on_kw: float
    """What the largest powered-off node would add if it were powered on."""
    redundancy: str | None
    """``ok``, ``lost`` (a node lost PSU redundancy) or None (unknown)."""

    @property
    def projected_kw(self) -> float | None:
        return (
            None if self.draw_kw is None or not self.off_nodes else self.draw_kw + self.next_on_kw
        )


def _typical_on_w(store: StoreView, node: Node, inventory: Inventory) -> float:
    """What ``node`` draws when on: its own recent maximum, else peers of its role."""
    hist = [v for v in store.history(node.name, "power.power_w") if not math.isnan(v)]
    own = max(hist) if hist else 0.0
    peers = [
        _num(store, n.name, "power.power_w") or 0.0
        for n in inventory.nodes.values()
        if n.role == node.role and store.value(n.name, "power.state") == "on"
    ]
    return max(own, max(peers) if peers else 0.0)


def rack_power(store: StoreView, inventory: Inventory) -> list[RackPower]:
    out = []
    for _room, rack in inventory.racks():
        nodes = [n for n in inventory.nodes_in_rack(rack.name) if n.bmc is not None]
        watts = [_num(store, n.name, "power.power_w") for n in nodes]
        known = [w for w in watts if w is not None]
        off = tuple(n.name for n in nodes if store.value(n.name, "power.state") == "off")
        next_on = max(
            (_typical_on_w(store, n, inventory) for n in nodes if n.name in off), default=0.0
        )
        reds = [store.value(n.name, "power.redundancy") for n in nodes]
        red = "lost" if "lost" in reds else "ok" if reds and all(r == "ok" for r in reds) else None
        out.append(
            RackPower(
                rack.name,
                rack.power_budget_kw,
                sum(known) / 1000.0 if known else None,
                len(known),
                len(nodes),
                off,
                next_on / 1000.0,
                red,
            )
        )
    return out


def alerts(store: StoreView, inventory: Inventory) -> Sequence[Finding]:
    c = config_of(inventory)
    out: list[Finding] = []
    for node in inventory.nodes.values():
        if node.bmc is None:
            continue
        n = node.name
        bmc = store.latest(n, "power.bmc_ok")
        if bmc is not None and bmc.value is False:
            out.append(
                Finding(
                    Severity.CRITICAL,
                    n,
                    f"BMC unreachable: {bmc.detail}",
                    key=f"power.bmc:{n}",
                    node=n,
                )
            )
            continue
        inlet = _num(store, n, "power.inlet_c")
        sev = inlet_severity(c, inlet)
        if sev >= Severity.WARNING and inlet is not None:
            level = c.inlet_crit_c if sev == Severity.CRITICAL else c.inlet_warn_c
            out.append(
                Finding(
                    sev, n, f"inlet {inlet:.1f}°C > {level:g}°C", key=f"power.inlet:{n}", node=n
                )
            )
        if store.value(n, "power.redundancy") == "lost":
            failed = store.latest(n, "power.psus_failed")
            why = f" ({failed.detail})" if failed and failed.detail else ""
            out.append(
                Finding(
                    Severity.CRITICAL,
                    n,
                    f"PSU redundancy lost{why}",
                    key=f"power.redundancy:{n}",
                    node=n,
                )
            )
        fans = store.latest(n, "power.fans_failed")
        if fans is not None and isinstance(fans.value, int) and fans.value > 0:
            out.append(
                Finding(
                    Severity.WARNING, n, f"fan failed: {fans.detail}", key=f"power.fan:{n}", node=n
                )
            )
        sel = store.latest(n, "power.sel_critical")
        if sel is not None and isinstance(sel.value, int) and sel.value > 0:
            out.append(
                Finding(
                    Severity.WARNING,
                    n,
                    f"SEL critical event: {sel.detail}",
                    key=f"power.sel:{n}",
                    node=n,
                )
            )
    for rack in rack_power(store, inventory):
        key = f"power.rack:{rack.name}"
        if rack.draw_kw is not None and rack.draw_kw > rack.budget_kw:
            out.append(
                Finding(
                    Severity.CRITICAL,
                    f"rack:{rack.name}",
                    f"rack {rack.name} draws {rack.draw_kw:.1f} kW > budget {rack.budget_kw:g} kW",
                    key=key,
                )
            )
        elif rack.draw_kw is not None and rack.draw_kw > c.budget_warn_fraction * rack.budget_kw:
            out.append(
                Finding(
                    Severity.WARNING,
                    f"rack:{rack.name}",
                    f"rack {rack.name} draws {rack.draw_kw:.1f} kW, "
                    f"{rack.draw_kw / rack.budget_kw:.0%} of budget",
                    key=key,
                )
            )
        proj = rack.projected_kw
        if proj is not None and rack.draw_kw is not None and rack.draw_kw <= rack.budget_kw < proj:
            out.append(
                Finding(
                    Severity.WARNING,
                    f"rack:{rack.name}",
                    f"rack {rack.name} would draw {proj:.1f} kW > budget {rack.budget_kw:g} kW "
                    "if one more node powers on",
                    key=f"power.projected:{rack.name}",
                )
            )
    return out


def check_bmc(store: StoreView, target: Target) -> Finding:
    """OK when the node's BMC answers and reports no failed PSU, fan or hot inlet."""
    n = target.name
    key = f"power.healthy:{n}"
    bmc = store.latest(n, "power.bmc_ok")
    if bmc is None:
        return Finding(Severity.UNKNOWN, n, f"{n}: BMC not read yet", key=key, node=n)
    sev = node_severity(store, PowerConfig(), n)
    word = {Severity.OK: "healthy", Severity.WARNING: "degraded", Severity.CRITICAL: "failing"}.get(
        sev, "unknown"
    )
    return Finding(
        sev, n, f"{n}: BMC {word}" + ("" if bmc.value else f": {bmc.detail}"), key=key, node=n
    )


CHECKS = (
    CheckSpec(
        id="power.bmc_healthy",
        label="BMC answers; PSUs, fans, inlet fine",
        target_kind="node",
        check=check_bmc,
    ),
)
