"""The fabric panes: a node x HCA-port matrix, and a per-port list.

The only module of the plugin that imports Textual. ``p`` toggles problems
only in both panes; enter opens the node card (per-port sparklines there).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding

from console.plugin import Severity
from console.sanitize import clean
from console.sparkline import sparkline
from console.widgets.line_table import Column, LineTable, Row
from console.widgets.pane import Pane, PerNode
from plugins.infiniband.checks import all_ports, expected_rate, port_status, port_targets
from plugins.infiniband.config import config_of, ib_nodes
from plugins.infiniband.health import GLYPH

STYLE = {
    Severity.OK: "green",
    Severity.UNKNOWN: "dim",
    Severity.WARNING: "yellow",
    Severity.CRITICAL: "bold red",
}


class _FabricPane(Pane):
    BINDINGS = [Binding("p", "toggle_problems", "Problems only")]

    problems_only = False

    def action_toggle_problems(self) -> None:
        self.problems_only = not self.problems_only
        self.update_view()

    def _title_suffix(self) -> str:
        return " · problems only (p)" if self.problems_only else " · all (p: problems only)"


class FabricMatrixPane(_FabricPane):
    """One row per IB node; one glyph per HCA port, coloured by health; the leaf it uses."""

    def compose_body(self) -> ComposeResult:
        self.table = LineTable(
            [
                Column("", 1),
                Column("node", 8),
                Column("ports", 17),
                Column("leaf", 10),
                Column("worst", 0),
            ]
        )
        self.node_rows: PerNode[Row] = PerNode("infiniband")
        self._ib_of: object = None
        self._has_ib = False
        yield self.table

    def _node_row(self, name: str) -> Row:
        node = self.ctx.inventory.nodes[name]
        config = config_of(self.ctx.inventory)
        expected = expected_rate(self.ctx.inventory, name)
        sts = [
            port_status(self.ctx.store, t, config, expected)
            for t in port_targets(self.ctx.store, name)
        ]
        sev = max((s.severity for s in sts), default=Severity.UNKNOWN)
        if len(sts) < node.hardware.ib_ports:
            sev = max(sev, Severity.WARNING if sts else Severity.UNKNOWN)
        cells = Text()
        for s in sts:
            cells.append(GLYPH[s.severity], style=STYLE[s.severity])
        cells.append("·" * max(0, node.hardware.ib_ports - len(sts)), style="dim")
        leaves = sorted({s.peer.split(" [")[0] for s in sts if s.peer})
        worst = max(sts, key=lambda s: s.severity, default=None)
        text = ""
        if worst is not None and worst.problems:
            text = f"{worst.port}: " + "; ".join(p.text for p in worst.problems)
        elif len(sts) < node.hardware.ib_ports:
            text = f"{len(sts)} of {node.hardware.ib_ports} ports read"
        return Row(
            key=name,
            cells=(GLYPH[sev], name, cells, clean(",".join(leaves)) or "—", clean(text)),
            node=name,
            severity=sev,
            data=(("kind", "node"), ("target", name)),
        )

    def update_view(self) -> None:
        # Rows are rebuilt only for nodes whose readings changed (8 ports x 1,000 nodes).
        per_node = self.node_rows.refresh(
            self.ctx,
            lambda: [n.name for n in ib_nodes(self.ctx.inventory) if self.ctx.node_filter(n.name)],
            self._node_row,
        )
        rows = [
            r for r in per_node.values() if not (self.problems_only and r.severity is Severity.OK)
        ]
        rows.sort(key=lambda r: (-r.severity, r.key))
        self.table.set_rows(rows)
        self.border_title = self.ctx.spec.title + self._title_suffix()
        if self._ib_of is not self.ctx.inventory:  # asked once per inventory, not per refresh
            self._ib_of, self._has_ib = self.ctx.inventory, bool(ib_nodes(self.ctx.inventory))
        if not self._has_ib:
            self.set_empty(True, "no node declares ib_ports in the inventory")
        else:
            self.set_empty(
                not rows,
                "no port problems" if self.problems_only else "no IB nodes on the filtered nodes",
            )


class FabricPortsPane(_FabricPane):
    """One row per port: state, rate, the switch port it plugs into, error trend."""

    def compose_body(self) -> ComposeResult:
        self.table = LineTable(
            [
                Column("", 1),
                Column("node", 8),
                Column("port", 9),
                Column("state", 7),
                Column("rate", 11),
                Column("switch", 12),
                Column("sym/min", 8),
                Column("problem", 0),
            ]
        )
        yield self.table

    def update_view(self) -> None:
        rows = []
        for st in all_ports(self.ctx.store, self.ctx.inventory):
            if self.ctx.node_filter.active and not self.ctx.node_filter(st.node):
                continue
            sev = st.severity
            if self.problems_only and sev is Severity.OK:
                continue
            hist = self.ctx.store.history(st.target, "infiniband.rate.symbol_error")
            rows.append(
                Row(
                    key=st.target,
                    cells=(
                        GLYPH[sev],
                        st.node,
                        clean(st.port),
                        clean((st.state or "?").lower()),
                        clean(st.rate_text),
                        clean(st.peer or "—"),
                        sparkline(hist, width=8),
                        clean("; ".join(p.text for p in st.problems)),
                    ),
                    node=st.node,
                    severity=sev,
                    data=(("kind", "ib_port"), ("target", st.target)),
                )
            )
        rows.sort(key=lambda r: (-r.severity, r.key))
        self.table.set_rows(rows)
        self.border_title = self.ctx.spec.title + self._title_suffix()
        self.set_empty(
            not rows, "no port problems" if self.problems_only else "no IB/RoCE port read yet"
        )
