"""`enter` on a node: everything known about it, across plugins, on one screen."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from console.inventory.model import Node
from console.plugin import CardLine, Plugin, Severity
from console.sanitize import clean
from console.sparkline import sparkline
from console.store import StoreView
from console.widgets.core_panes import GLYPH
from console.widgets.pane import format_age

log = logging.getLogger(__name__)

SEVERITY_STYLE = {
    Severity.OK: "",
    Severity.UNKNOWN: "dim",
    Severity.WARNING: "yellow",
    Severity.CRITICAL: "bold red",
}


def node_summary(node: Node) -> str:
    """`` gpu007 · R01 U12 · gpu-train · H100 x8 · driver 550.90``."""
    parts = [node.name]
    where = " ".join(x for x in (node.rack or "", f"U{node.u}" if node.u else "") if x)
    if where:
        parts.append(where)
    parts.append(node.role)
    hw = node.hardware
    if hw.gpu_count:
        parts.append(f"{hw.gpu_model or 'GPU'} x{hw.gpu_count}")
    if hw.ib_ports:
        rate = f" {hw.ib_rate_gbps}G" if hw.ib_rate_gbps else ""
        parts.append(f"IB {hw.ib_ports}x{rate}")
    if hw.driver_version:
        parts.append(f"driver {hw.driver_version} expected")
    return " · ".join(parts)


def card_sections(
    store: StoreView, node: Node, plugins: Sequence[Plugin]
) -> list[tuple[str, list[CardLine]]]:
    """Each plugin's section for this node; a crashing plugin gets a line saying so."""
    sections = []
    for plugin in plugins:
        if plugin.card is None:
            continue
        try:
            lines = list(plugin.card(store, node))
        except Exception as exc:
            log.exception("card of plugin %s failed", plugin.name)
            lines = [CardLine("error", f"{plugin.name} card failed: {exc}", Severity.UNKNOWN)]
        if lines:
            sections.append((plugin.card_title or plugin.name, lines))
    return sections


def render_card(
    store: StoreView,
    node: Node,
    plugins: Sequence[Plugin],
    now: float | None = None,
    actions: Sequence[tuple[str, str]] = (),
) -> Text:
    """The whole card as text (also used by tests and `dcc` without a TUI)."""
    now = time.time() if now is None else now
    out = Text()
    out.append(" " + node_summary(node) + "\n", style="bold")
    ssh = node.ssh
    out.append(f" Access  ssh {ssh.user}@{ssh.host}:{ssh.port}")
    if node.bmc:
        out.append(f" · BMC {node.bmc.protocol} {node.bmc.address}")
    clusters = [
        c
        for c in (
            node.clusters.slurm and f"slurm {node.clusters.slurm}",
            node.clusters.kubernetes and f"k8s {node.clusters.kubernetes}",
        )
        if c
    ]
    if clusters:
        out.append(" · " + " · ".join(clusters))
    out.append("\n")
    alerts = [a for a in store.alerts() if (a.finding.node or a.finding.target) == node.name]
    out.append("\n Alerts\n", style="bold")
    if not alerts:
        out.append("   none\n", style="dim")
    for a in alerts:
        f = a.finding
        out.append(
            f"   {GLYPH[f.severity]} {clean(f.message)}  {format_age(now - a.since)}\n",
            style=SEVERITY_STYLE[f.severity],
        )
    for title, lines in card_sections(store, node, plugins):
        out.append(f"\n {title}\n", style="bold")
        for line in lines:
            out.append(f"   {clean(line.label):<10} ", style="dim")
            out.append(clean(line.text) + "\n", style=SEVERITY_STYLE[line.severity])
    statuses = [s for s in store.collector_statuses() if s.target == node.name]
    if statuses:
        out.append("\n Collectors\n", style="bold")
        for s in sorted(statuses, key=lambda s: s.collector):
            if s.last_error:
                out.append(f"   ✖ {s.collector}: {clean(s.last_error)}\n", style="red")
            else:
                age = format_age(now - s.last_ok) if s.last_ok else "—"
                out.append(f"   ● {s.collector} ok {age} ago\n")
    if actions:
        out.append("\n Actions (ctrl+p)\n", style="bold")
        for label, target in actions:
            out.append(f"   {clean(label)}: {clean(target)}\n")
    readings = store.readings_for(node.name)
    if readings:
        out.append("\n Readings\n", style="bold")
        for metric in sorted(readings):
            r = readings[metric]
            value = "unknown" if r.value is None else str(r.value)
            trend = sparkline(store.history(node.name, metric), 12)
            out.append(f"   {metric} = {clean(value)} {trend} {clean(r.detail)}\n")
    return out


class NodeCardScreen(Screen[None]):
    """The node card; it refreshes while open."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("r", "runbooks", "Runbooks"),
    ]

    DEFAULT_CSS = """
    NodeCardScreen > VerticalScroll { height: 1fr; }
    """

    def __init__(
        self,
        node: Node,
        store: StoreView,
        plugins: Sequence[Plugin],
        clock: Callable[[], float] = time.time,
        actions: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__()
        self.clock = clock
        self.actions = actions
        """(label, target) of the actions that apply to this node or what runs on it."""
        self.node = node
        self.store = store
        self.plugins = plugins
        self.body = Static("", id="card")

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield self.body
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.node.name
        self.redraw()
        self.set_interval(2.0, self.redraw)

    def action_runbooks(self) -> None:
        """The runbooks for this node's alerts (with their GPU or port), and for the node."""
        from console.screens.runbook_pick import offer_for_node

        offer_for_node(self.app, self.node.name)

    def redraw(self) -> None:
        self.body.update(
            render_card(self.store, self.node, self.plugins, self.clock(), self.actions)
        )
