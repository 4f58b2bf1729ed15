"""Health over the Store: port problems re-judged from readings, alerts, checks, the card.

``judge`` runs again here on the Store's values so the matrix, the node card
and the alerts agree with what the collector concluded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from console.plugin import CardLine, CheckSpec, Finding, Severity, Target
from console.sparkline import sparkline
from console.store import StoreView
from plugins.infiniband.collect import split_port_target, switch_port_target
from plugins.infiniband.config import InfinibandConfig, config_of, ib_nodes
from plugins.infiniband.health import GLYPH, Problem, judge, worst

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, Node

CARD_TITLE = "InfiniBand / RoCE"


@dataclass(frozen=True, slots=True)
class PortStatus:
    target: str
    node: str
    port: str
    """``mlx5_0/1``."""
    state: str | None
    phys_state: str | None
    rate_gbps: float | None
    speed: str | None
    width: float | None
    link_layer: str | None
    peer: str | None
    problems: tuple[Problem, ...]
    ts: float | None

    @property
    def severity(self) -> Severity:
        if self.state is None:
            return Severity.UNKNOWN
        return worst(list(self.problems))

    @property
    def rate_text(self) -> str:
        if self.rate_gbps is None:
            return "—"
        extra = f" {self.width:g}X" if self.width is not None else ""
        extra += f" {self.speed}" if self.speed else ""
        return f"{self.rate_gbps:g}G{extra}"


def port_targets(store: StoreView, node: str | None = None) -> list[str]:
    prefix = f"ib:{node}:" if node else "ib:"
    return sorted(store.targets_with_prefix(prefix), key=_port_sort)


def _port_sort(target: str) -> tuple[str, str, int, int]:
    parts = split_port_target(target)
    if parts is None:
        return (target, "", 0, 0)
    node, dev, port = parts
    head, _, num = dev.rpartition("_")
    return (node, head, int(num) if num.isdigit() else 0, port)


def expected_rate(inventory: Inventory, node: str) -> float | None:
    n = inventory.nodes.get(node)
    return float(n.hardware.ib_rate_gbps) if n and n.hardware.ib_rate_gbps else None


def port_status(
    store: StoreView, target: str, config: InfinibandConfig, expected: float | None
) -> PortStatus:
    readings = store.readings_for(target)
    values = {m: r.value for m, r in readings.items()}
    parts = split_port_target(target)
    node, port = (parts[0], f"{parts[1]}/{parts[2]}") if parts else ("?", target)
    layer = values.get("infiniband.link_layer")
    problems = judge(values, config, expected if layer != "Ethernet" else None)
    state_r = readings.get("infiniband.state")

    def s(metric: str) -> str | None:
        v = values.get(metric)
        return v if isinstance(v, str) else None

    def f(metric: str) -> float | None:
        v = values.get(metric)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    return PortStatus(
        target,
        node,
        port,
        s("infiniband.state"),
        s("infiniband.phys_state"),
        f("infiniband.rate_gbps"),
        s("infiniband.speed"),
        f("infiniband.width"),
        s("infiniband.link_layer"),
        s("infiniband.peer"),
        tuple(problems),
        state_r.ts if state_r else None,
    )


def all_ports(store: StoreView, inventory: Inventory) -> list[PortStatus]:
    config = config_of(inventory)
    return [
        port_status(store, t, config, expected_rate(inventory, (split_port_target(t) or ("",))[0]))
        for t in port_targets(store)
    ]


# --------------------------------------------------------------------------- alerts


def alerts(store: StoreView, inventory: Inventory) -> Sequence[Finding]:
    """Per port: down, flapping, degraded, rising errors (one stable key per kind);
    per node: fewer ports than the inventory expects; ibstat failing."""
    findings = list(fabric_alerts(store, inventory))
    for node in ib_nodes(inventory):
        findings.extend(node_alerts(store, inventory, node))
    return findings


def _port_findings(ports: Sequence[PortStatus]) -> list[Finding]:
    findings: list[Finding] = []
    for st in ports:
        by_kind: dict[str, list[Problem]] = {}
        for p in st.problems:
            kind = "down" if p.kind == "phys" else p.kind
            by_kind.setdefault(kind, []).append(p)
        for kind, probs in by_kind.items():
            text = "; ".join(p.text for p in probs)
            where = f" (to {st.peer})" if st.peer else ""
            findings.append(
                Finding(
                    worst(probs),
                    st.target,
                    f"{st.node} {st.port}{where}: {text}",
                    key=f"infiniband.{kind}:{st.target}",
                    node=st.node,
                )
            )
    return findings


def fabric_alerts(store: StoreView, inventory: Inventory) -> Sequence[Finding]:
    """Ports the fabric read found on nodes the inventory declares without IB ports
    (``node_alerts`` judges the others: the fabric collector only names inventory nodes)."""
    config = config_of(inventory)
    others = [
        port_status(store, t, config, expected_rate(inventory, n.name))
        for n in _without_ib(inventory)
        for t in port_targets(store, n.name)
    ]
    return _port_findings(others)


_WITHOUT_IB: list[tuple[Inventory, list[Node]]] = []


def _without_ib(inventory: Inventory) -> list[Node]:
    """Nodes declared without IB ports; remembered for the last inventory (asked per refresh)."""
    if not _WITHOUT_IB or _WITHOUT_IB[0][0] is not inventory:
        _WITHOUT_IB[:] = [
            (inventory, [n for n in inventory.nodes.values() if n.hardware.ib_ports <= 0])
        ]
    return _WITHOUT_IB[0][1]


def node_alerts(store: StoreView, inventory: Inventory, node: Node) -> Sequence[Finding]:
    """One node's port problems, missing ports and ibstat failures (its own readings)."""
    if node.hardware.ib_ports <= 0:
        return ()
    config = config_of(inventory)
    expected = expected_rate(inventory, node.name)
    ports = [port_status(store, t, config, expected) for t in port_targets(store, node.name)]
    findings = _port_findings(ports)
    found = store.value(node.name, "infiniband.ports_found")
    if isinstance(found, int) and found < node.hardware.ib_ports:
        findings.append(
            Finding(
                Severity.WARNING,
                node.name,
                f"{node.name}: {found} of {node.hardware.ib_ports} expected IB ports present",
                key=f"infiniband.missing_ports:{node.name}",
                node=node.name,
            )
        )
    err = store.value(node.name, "infiniband.tool_error")
    if isinstance(err, str) and err:
        findings.append(
            Finding(
                Severity.WARNING,
                node.name,
                f"{node.name}: {err[:160]}",
                key=f"infiniband.tool_error:{node.name}",
                node=node.name,
            )
        )
    return findings


# --------------------------------------------------------------------------- checks


def check_links(store: StoreView, target: Target) -> Finding:
    """A node's ports are all Active at the expected rate with no rising errors."""
    node = target.node or target.name
    targets = port_targets(store, node)
    key = f"infiniband.links:{node}"
    if not targets:
        return Finding(Severity.UNKNOWN, node, f"{node}: no port read yet", key=key, node=node)
    expected = target.attrs.get("ib_rate_gbps")
    exp = float(expected) if isinstance(expected, int | float) else None
    cfg = target.attrs.get("config")
    config = cfg if isinstance(cfg, InfinibandConfig) else InfinibandConfig()
    statuses = [port_status(store, t, config, exp) for t in targets]
    sev = max(s.severity for s in statuses)
    bad = [f"{s.port}: {'; '.join(p.text for p in s.problems)}" for s in statuses if s.problems]
    wanted = target.attrs.get("ib_ports")
    if isinstance(wanted, int) and len(statuses) < wanted:
        sev = max(sev, Severity.WARNING)
        bad.append(f"{len(statuses)} of {wanted} ports present")
    text = f"{node}: " + ("; ".join(bad) if bad else f"{len(statuses)} ports healthy")
    return Finding(sev, node, text, key=key, node=node)


def check_port(store: StoreView, target: Target) -> Finding:
    """One port (``ib:NODE:DEVICE/PORT``): Active, not flapping, no rising error rates.

    The rate is held to ``attrs["ib_rate_gbps"]`` only when given (the node's expected
    rate); the node-wide ``infiniband.links`` check knows the inventory."""
    parts = split_port_target(target.name)
    node = parts[0] if parts else (target.node or target.name)
    key = f"infiniband.port:{target.name}"
    expected = target.attrs.get("ib_rate_gbps")
    exp = float(expected) if isinstance(expected, int | float) else None
    st = port_status(store, target.name, InfinibandConfig(), exp)
    if st.state is None:
        return Finding(Severity.UNKNOWN, target.name, f"{node} {st.port}: not read yet",
                       key=key, node=node)  # fmt: skip
    text = "; ".join(p.text for p in st.problems) or f"{st.state.lower()} {st.rate_text}"
    return Finding(st.severity, target.name, f"{node} {st.port}: {text}", key=key, node=node)


def check_switch_port(store: StoreView, target: Target) -> Finding:
    """A switch port (``spine01/1``, from the fabric read): Active / LinkUp."""
    name = target.name.removeprefix("ibsw:")
    switch, _, port = name.rpartition("/")
    key = f"infiniband.switch_port:{name}"
    if not port.isdigit():
        return Finding(Severity.UNKNOWN, name, f"{name}: not a switch/port name", key=key)
    sp = switch_port_target(switch, int(port))
    state = store.value(sp, "infiniband.sw_state")
    phys = store.value(sp, "infiniband.sw_phys_state")
    peer = store.value(sp, "infiniband.sw_peer")
    if not isinstance(state, str):
        return Finding(Severity.UNKNOWN, name, f"{name}: not read yet (fabric)", key=key)
    text = f"{name}: {state}/{phys or '?'}" + (f" to {peer}" if isinstance(peer, str) else "")
    sev = Severity.OK if state.lower() == "active" else Severity.CRITICAL
    return Finding(sev, name, text, key=key)


CHECKS = (
    CheckSpec(
        id="infiniband.switch_port_ok",
        label="A switch port (an inter-switch link) is Active",
        target_kind="ib_switch_port",
        check=check_switch_port,
    ),
    CheckSpec(
        id="infiniband.links",
        label="Every IB/RoCE port Active at the expected rate, no rising error rates",
        target_kind="node",
        check=check_links,
    ),
    CheckSpec(
        id="infiniband.port_ok",
        label="The port is Active, not flapping, no rising error rates",
        target_kind="ib_port",
        check=check_port,
        metrics=(
            "infiniband.state",
            "infiniband.phys_state",
            "infiniband.rate_gbps",
            "infiniband.rate.link_downed",
            "infiniband.rate.symbol_error",
            "infiniband.peer",
        ),
        pane="infiniband.ports",
    ),
)


# --------------------------------------------------------------------------- card


def card(store: StoreView, node: Node) -> Sequence[CardLine]:
    """One line per port: glyph, state, rate, peer, problems, and a sparkline of its
    symbol-error rate and throughput."""
    lines: list[CardLine] = []
    exp = float(node.hardware.ib_rate_gbps) if node.hardware.ib_rate_gbps else None
    config = InfinibandConfig()
    for t in port_targets(store, node.name):
        st = port_status(store, t, config, exp)
        sev = st.severity
        text = f"{GLYPH[sev]} {(st.state or 'unknown').lower()} {st.rate_text}"
        if st.link_layer == "Ethernet":
            text += " RoCE"
        if st.peer:
            text += f" → {st.peer}"
        errs = sparkline(store.history(t, "infiniband.rate.symbol_error"), width=8)
        tput = sparkline(store.history(t, "infiniband.xmit_gbps"), width=8)
        text += f" · tx {tput} · sym/min {errs}"
        if st.problems:
            text += " · " + "; ".join(p.text for p in st.problems)
        lines.append(CardLine(st.port, text, sev))
    if not lines and node.hardware.ib_ports:
        lines.append(
            CardLine(
                "ports", f"? {node.hardware.ib_ports} expected, none read yet", Severity.UNKNOWN
            )
        )
    return lines
