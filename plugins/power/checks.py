"""Rack sums, alert rules and the ``power.bmc_healthy`` check."""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from console.plugin import CheckSpec, Finding, Severity, Target
from console.store import StoreView
from plugins.power.config import PowerConfig, config_of

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, Node, Rack

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
    """Every rack's sums, in inventory order.

    Remembered per Store: a rack is summed again only when one of its nodes' readings
    changed, or when it has nodes off (its projection looks at peers elsewhere). The
    panes and the rack rules ask on every refresh; at 250 racks a full pass is most of
    a refresh's budget.
    """
    memo = _memo(store, inventory)
    if memo is None:  # a StoreView that is not a Store (tests): no memory
        return [_rack_power(store, inventory, rack) for _room, rack in inventory.racks()]
    if memo.since is None:
        redo = None
    else:
        redo = {r for r, rp in memo.racks.items() if rp.off_nodes}
        for name in store.changed_nodes(memo.since, "power"):
            node = inventory.nodes.get(name)
            if node is not None and node.rack is not None:
                redo.add(node.rack)
    memo.since = store.version
    out = []
    for _room, rack in inventory.racks():
        rp = memo.racks.get(rack.name)
        if rp is None or redo is None or rack.name in redo:
            rp = memo.racks[rack.name] = _rack_power(store, inventory, rack)
        out.append(rp)
    return out


@dataclass(slots=True)
class _RackMemo:
    inventory: Inventory
    since: int | None = None
    racks: dict[str, RackPower] = field(default_factory=dict)


_RACK_MEMOS: weakref.WeakKeyDictionary[Any, _RackMemo] = weakref.WeakKeyDictionary()


def _memo(store: StoreView, inventory: Inventory) -> _RackMemo | None:
    try:
        memo = _RACK_MEMOS.get(store)
    except TypeError:  # cannot be weakly referenced
        return None
    if memo is None or memo.inventory is not inventory:
        memo = _RACK_MEMOS[store] = _RackMemo(inventory)
    return memo


def _rack_power(store: StoreView, inventory: Inventory, rack: Rack) -> RackPower:
    nodes = [n for n in inventory.nodes_in_rack(rack.name) if n.bmc is not None]
    watts = [_num(store, n.name, "power.power_w") for n in nodes]
    known = [w for w in watts if w is not None]
    off = tuple(n.name for n in nodes if store.value(n.name, "power.state") == "off")
    next_on = max((_typical_on_w(store, n, inventory) for n in nodes if n.name in off), default=0.0)
    reds = [store.value(n.name, "power.redundancy") for n in nodes]
    red = "lost" if "lost" in reds else "ok" if reds and all(r == "ok" for r in reds) else None
    return RackPower(
        rack.name,
        rack.power_budget_kw,
        sum(known) / 1000.0 if known else None,
        len(known),
        len(nodes),
        off,
        next_on / 1000.0,
        red,
    )


def alerts(store: StoreView, inventory: Inventory) -> Sequence[Finding]:
    """Every power finding: each node's (``node_alerts``) and each rack's (``rack_alerts``)."""
    out = [f for node in inventory.nodes.values() for f in node_alerts(store, inventory, node)]
    return out + rack_alerts(store, inventory)


def node_alerts(store: StoreView, inventory: Inventory, node: Node) -> Sequence[Finding]:
    """One node's BMC, inlet, PSU, fan and SEL findings (from its own readings)."""
    if node.bmc is None:
        return ()
    c = config_of(inventory)
    out: list[Finding] = []
    n = node.name
    bmc = store.latest(n, "power.bmc_ok")
    if bmc is not None and bmc.value is False:
        return [
            Finding(
                Severity.CRITICAL,
                n,
                f"BMC unreachable: {bmc.detail}",
                key=f"power.bmc:{n}",
                node=n,
            )
        ]
    inlet = _num(store, n, "power.inlet_c")
    sev = inlet_severity(c, inlet)
    if sev >= Severity.WARNING and inlet is not None:
        level = c.inlet_crit_c if sev == Severity.CRITICAL else c.inlet_warn_c
        out.append(
            Finding(sev, n, f"inlet {inlet:.1f}°C > {level:g}°C", key=f"power.inlet:{n}", node=n)
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
            Finding(Severity.WARNING, n, f"fan failed: {fans.detail}", key=f"power.fan:{n}", node=n)
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
    return out


def rack_alerts(store: StoreView, inventory: Inventory) -> list[Finding]:
    """Racks over (or near, or one power-on away from) their budget."""
    c = config_of(inventory)
    out: list[Finding] = []
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


def check_bmc_answering(store: StoreView, target: Target) -> Finding:
    """OK when the node's BMC answered its last read (bring-up: racked, cabled, reachable).

    Only the BMC's answer counts here (a hot inlet or a lost PSU is ``power.bmc_healthy``);
    the message says how fast it answered and the power state it reported.
    """
    n = target.name
    key = f"power.answering:{n}"
    bmc = store.latest(n, "power.bmc_ok")
    if bmc is None:
        return Finding(Severity.UNKNOWN, n, f"{n}: BMC not read yet", key=key, node=n)
    if bmc.value is not True:
        why = f": {bmc.detail}" if bmc.detail else ""
        return Finding(Severity.CRITICAL, n, f"{n}: BMC not answering{why}", key=key, node=n)
    state = store.value(n, "power.state")
    extra = f", power {state}" if isinstance(state, str) and state else ""
    took = f" in {bmc.detail}" if bmc.detail else ""
    return Finding(Severity.OK, n, f"{n}: BMC answers{took}{extra}", key=key, node=n)


def check_powered_on(store: StoreView, target: Target) -> Finding:
    """OK when the BMC reports the node powered on."""
    n = target.name
    state = store.value(n, "power.state")
    key = f"power.on:{n}"
    if not isinstance(state, str):
        return Finding(Severity.UNKNOWN, n, f"{n}: power state unknown", key=key, node=n)
    sev = Severity.OK if state == "on" else Severity.CRITICAL
    return Finding(sev, n, f"{n}: power {state}", key=key, node=n)


def check_psu_redundant(store: StoreView, target: Target) -> Finding:
    """OK when the node's PSUs are redundant again (none failed)."""
    n = target.name
    key = f"power.psu:{n}"
    red = store.value(n, "power.redundancy")
    failed = store.latest(n, "power.psus_failed")
    count = failed.value if failed is not None and isinstance(failed.value, int) else None
    why = f" ({failed.detail})" if failed is not None and failed.detail else ""
    if red is None and count is None:
        return Finding(Severity.UNKNOWN, n, f"{n}: PSU state unknown", key=key, node=n)
    if red == "lost" or (count or 0) > 0:
        return Finding(Severity.CRITICAL, n, f"{n}: PSU redundancy lost{why}", key=key, node=n)
    return Finding(Severity.OK, n, f"{n}: PSUs redundant", key=key, node=n)


def check_rack_budget(store: StoreView, target: Target) -> Finding:
    """A rack (``attrs``: ``budget_kw``, ``nodes``) draws no more than its budget."""
    name = target.name.removeprefix("rack:")
    key = f"power.rack_budget:{name}"
    budget = target.attrs.get("budget_kw")
    nodes = target.attrs.get("nodes") or ()
    if not isinstance(budget, int | float):
        return Finding(Severity.UNKNOWN, f"rack:{name}", f"rack {name}: no budget known", key=key)
    watts = [_num(store, n, "power.power_w") for n in nodes]
    known = [w for w in watts if w is not None]
    if not known:
        return Finding(Severity.UNKNOWN, f"rack:{name}", f"rack {name}: no power read yet",
                       key=key)  # fmt: skip
    kw = sum(known) / 1000.0
    sev = Severity.CRITICAL if kw > budget else Severity.OK
    text = f"rack {name} draws {kw:.1f} kW of {budget:g} kW ({len(known)}/{len(watts)} nodes read)"
    return Finding(sev, f"rack:{name}", text, key=key)


CHECKS = (
    CheckSpec(
        id="power.bmc_answering",
        label="BMC answers (reachable out of band)",
        target_kind="node",
        check=check_bmc_answering,
    ),
    CheckSpec(
        id="power.bmc_healthy",
        label="BMC answers; PSUs, fans, inlet fine",
        target_kind="node",
        check=check_bmc,
    ),
    CheckSpec(
        id="power.powered_on",
        label="The BMC reports the node powered on",
        target_kind="node",
        check=check_powered_on,
        metrics=("power.state", "power.bmc_ok"),
        pane="power.racks",
    ),
    CheckSpec(
        id="power.psu_redundant",
        label="The node's PSUs are redundant (none failed)",
        target_kind="node",
        check=check_psu_redundant,
        metrics=("power.redundancy", "power.psus_failed", "power.power_w"),
        pane="power.racks",
    ),
    CheckSpec(
        id="power.rack_within_budget",
        label="The rack draws no more than its power budget",
        target_kind="rack",
        check=check_rack_budget,
        pane="power.room",
    ),
)
