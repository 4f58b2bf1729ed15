"""The core's own panes: alerts, the node list and the collectors' health.

They know no subsystem: they read alerts, collector statuses and the
inventory, which every plugin feeds.
"""

from __future__ import annotations

import time
from collections import defaultdict

from textual.app import ComposeResult

from console.plugin import Severity
from console.widgets.line_table import Column, LineTable, Row
from console.widgets.pane import Pane, format_age

GLYPH = {
    Severity.OK: "●",
    Severity.UNKNOWN: "?",
    Severity.WARNING: "▲",
    Severity.CRITICAL: "✖",
}
"""State glyphs: readable without colour (NO_COLOR) and at a glance."""


class AlertsPane(Pane):
    """Current alerts, worst first, with their age."""

    def compose_body(self) -> ComposeResult:
        self.table = LineTable(
            [Column("", 1), Column("target", 12), Column("alert", 0), Column("age", 4, "right")],
            show_header=False,
        )
        yield self.table

    def update_view(self) -> None:
        now = (self.ctx.clock or time.time)()
        rows = []
        for alert in self.ctx.store.alerts():
            f = alert.finding
            node = f.node or (f.target if f.target in self.ctx.inventory.nodes else None)
            if self.ctx.node_filter.active and not self.ctx.node_filter(node):
                continue
            rows.append(
                Row(
                    key=alert.key,
                    cells=(GLYPH[f.severity], f.target, f.message, format_age(now - alert.since)),
                    node=node,
                    severity=f.severity,
                )
            )
        self.table.set_rows(rows)
        self.set_empty(
            not rows,
            "no alerts" if not self.ctx.node_filter.active else "no alerts for the filtered nodes",
        )


class NodesPane(Pane):
    """Every node: where it is, what it is, whether it answers, its worst alert."""

    def compose_body(self) -> ComposeResult:
        self.table = LineTable(
            [
                Column("", 1),
                Column("node", 8),
                Column("rack", 7),
                Column("role", 9),
                Column("reach", 6),
                Column("alerts", 0),
            ]
        )
        self._rows: dict[str, Row] = {}
        yield self.table

    def update_view(self) -> None:
        per_node: dict[str, list[tuple[Severity, str]]] = defaultdict(list)
        for alert in self.ctx.store.alerts():
            f = alert.finding
            per_node[f.node or f.target].append((f.severity, f.message))
        reach: dict[str, tuple[int, int]] = {}
        for st in self.ctx.store.collector_statuses():
            if st.target in self.ctx.inventory.nodes and st.last_attempt is not None:
                ok, bad = reach.get(st.target, (0, 0))
                reach[st.target] = (ok + (st.last_error is None), bad + (st.last_error is not None))
        rows = []
        for name, node in self.ctx.inventory.nodes.items():
            if not self.ctx.node_filter(name):
                continue
            alerts = sorted(per_node.get(node.name, []), key=lambda a: -a[0])
            worst = alerts[0][0] if alerts else Severity.OK
            ok, bad = reach.get(node.name, (0, 0))
            reach_text = "—" if ok + bad == 0 else "down" if ok == 0 else "up"
            if reach_text == "down":
                worst = max(worst, Severity.CRITICAL)
            text = alerts[0][1] if alerts else ""
            if len(alerts) > 1:
                text = f"{text} (+{len(alerts) - 1})"
            where = f"{node.rack or '—'}" + (f" U{node.u}" if node.u else "")
            cells = (GLYPH[worst], node.name, where, node.role, reach_text, text)
            row = self._rows.get(name)
            if row is None or row.cells != cells or row.severity != worst:
                # A new Row only when it changed: the table skips the others by identity.
                row = self._rows[name] = Row(
                    key=node.name, cells=cells, node=node.name, severity=worst
                )
            rows.append(row)
        self.table.set_rows(rows)
        self.set_empty(not rows, "no node matches the filter")


class CollectorsPane(Pane):
    """How each collector fares: targets answering, failing, and the last error."""

    def compose_body(self) -> ComposeResult:
        self.table = LineTable(
            [
                Column("", 1),
                Column("collector", 18),
                Column("ok", 4, "right"),
                Column("fail", 4, "right"),
                Column("last error", 0),
            ]
        )
        yield self.table

    def update_view(self) -> None:
        grouped: dict[str, list[tuple[str, str | None, float | None]]] = defaultdict(list)
        for st in self.ctx.store.collector_statuses():
            grouped[st.collector].append((st.target, st.last_error, st.last_ok))
        rows = []
        for collector in sorted(grouped):
            items = grouped[collector]
            failing = [(t, e) for t, e, _ in items if e is not None]
            sev = Severity.WARNING if failing else Severity.OK
            error = f"{failing[0][0]}: {failing[0][1]}" if failing else ""
            rows.append(
                Row(
                    key=collector,
                    cells=(
                        GLYPH[sev],
                        collector,
                        str(len(items) - len(failing)),
                        str(len(failing)),
                        error,
                    ),
                    severity=sev,
                )
            )
        self.table.set_rows(rows)
        self.set_empty(not rows, "no collectors: no plugin applies to this inventory")
