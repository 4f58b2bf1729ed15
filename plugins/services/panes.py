"""The Services pane: one line per service, worst first.

The only module of the plugin that imports Textual; the manifest names it by
its dotted path so collectors and checks run without it.
"""

from __future__ import annotations

import time

from textual.app import ComposeResult

from console.sparkline import sparkline
from console.store import STALE_AFTER_INTERVALS
from console.widgets.line_table import Column, LineTable, Row
from console.widgets.pane import Pane, format_age
from plugins.services.config import ServicesConfig, config_of
from plugins.services.parse import STATE_RANK
from plugins.services.status import GLYPH, ServiceStatus, service_status


def _latency(st: ServiceStatus) -> str:
    if st.latency_ms is None:
        return "—"
    return f"{st.latency_ms:.0f}ms" if st.latency_ms < 10_000 else f"{st.latency_ms / 1000:.0f}s"


class ServicesPane(Pane):
    """Platform services: state glyph and word, node, latency, unit, age when stale."""

    def compose_body(self) -> ComposeResult:
        # The most telling columns first: in a half-width pane at 80x24 the state
        # and the latency stay visible and the rest is cut off.
        columns = [
            Column("", 1),
            Column("service", 14),
            Column("state", 8),
            Column("latency", 7, "right"),
            Column("trend", 8),
            Column("node", 7),
            Column("unit", 18),
            Column("age", 4, "right"),
            Column("detail", 0),
        ]
        self.compact = bool(self.ctx.options.get("compact"))
        """Layout option ``compact: true``: glyph, service, state and latency only."""
        self.table = LineTable(columns[:4] if self.compact else columns)
        yield self.table

    def _config(self) -> ServicesConfig:
        cfg = self.ctx.config
        return cfg if isinstance(cfg, ServicesConfig) else config_of(self.ctx.inventory)

    def update_view(self) -> None:
        now = (self.ctx.clock or time.time)()
        config = self._config()
        entries = []
        for check in config.checks:
            if self.ctx.node_filter.active and not self.ctx.node_filter(check.node):
                continue
            st = service_status(self.ctx.store, check)
            age = st.age(now)
            stale = age is not None and age > STALE_AFTER_INTERVALS * check.interval
            entries.append((st, stale, age))
        # Worst first; within a state, by name so the order does not jump around.
        entries.sort(key=lambda e: (-STATE_RANK.get(e[0].state, 1), e[0].name))
        rows = [
            Row(
                key=st.name,
                cells=(
                    GLYPH.get(st.state, "?"),
                    st.name,
                    st.state,
                    _latency(st),
                    sparkline(self.ctx.store.history(f"svc:{st.name}", "services.latency_ms")),
                    st.node or "—",
                    st.unit or "—",
                    format_age(age) if stale else "",
                    st.detail if st.state != "ok" else "",
                )[: 4 if self.compact else None],
                node=st.node,
                severity=st.severity,
                data=(("kind", "service"), ("target", st.name)),
            )
            for st, stale, age in entries
        ]
        self.table.set_rows(rows)
        if not config.checks:
            self.set_empty(True, "no services declared (plugins.services.checks)")
        else:
            self.set_empty(not rows, "no services on the filtered nodes")
