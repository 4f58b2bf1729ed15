"""The "nodes out of service" pane: every scheduler's drained, cordoned or down nodes.

A core pane: it knows no scheduler, only the conventions of console.workloads
(``<plugin>.allocation``, ``.reason``, ``.reason_by``, ``.reason_since``), so
Slurm, Kubernetes and any later scheduler plugin show up side by side.
"""

from __future__ import annotations

import time

from textual.app import ComposeResult

from console.plugin import Severity
from console.widgets.core_panes import GLYPH
from console.widgets.line_table import Column, LineTable, Row
from console.widgets.pane import Pane, format_age
from console.workloads import out_of_service

_SEVERITY = {"down": Severity.CRITICAL, "not-ready": Severity.CRITICAL}


class OutOfServicePane(Pane):
    """Node, scheduler, state, since, by whom, reason; the oldest first."""

    def compose_body(self) -> ComposeResult:
        # The reason last: it takes the width that is left and is cut at 80 columns.
        self.table = LineTable(
            [
                Column("", 1),
                Column("node", 8),
                Column("sched", 5),
                Column("state", 8),
                Column("since", 5, "right"),
                Column("by", 8),
                Column("reason", 0),
            ]
        )
        yield self.table

    def update_view(self) -> None:
        now = (self.ctx.clock or time.time)()
        rows = []
        for item in out_of_service(self.ctx.store):
            if self.ctx.node_filter.active and not self.ctx.node_filter(item.node):
                continue
            severity = _SEVERITY.get(item.allocation or "", Severity.WARNING)
            sched = "k8s" if item.scheduler == "kubernetes" else item.scheduler
            rows.append(
                Row(
                    key=f"{item.scheduler}:{item.node}",
                    cells=(
                        GLYPH[severity],
                        item.node,
                        sched,
                        item.allocation or "?",
                        format_age(now - item.since) if item.since is not None else "—",
                        item.by or "—",
                        item.reason if item.reason else ("—" if item.reason is not None else "?"),
                    ),
                    node=item.node if item.node in self.ctx.inventory.nodes else None,
                    severity=severity,
                    data=(("kind", "node"), ("target", item.node), ("scheduler", item.scheduler)),
                )
            )
        self.table.set_rows(rows)
        if rows or not self.ctx.node_filter.active:
            self.set_empty(not rows, "every node is in service")
        else:
            self.set_empty(True, "no filtered node is out of service")
