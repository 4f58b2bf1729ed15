"""GPU panes: the fleet grid (one heat cell per GPU), idle-but-allocated, unhealthy, drift.

The only module of the plugin that imports Textual.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding

from console.plugin import Severity
from console.widgets.line_table import Column, LineTable, Row
from console.widgets.pane import Pane, PerNode
from plugins.gpu.checks import IdleGpu, idle_on_node
from plugins.gpu.config import config_of, expected_versions, gpu_nodes
from plugins.gpu.status import GLYPH, GpuView, allocation, drift, node_views

METRICS = ("util", "mem", "temp", "power")
LEVELS = "▁▂▃▄▅▆▇█"
# Colour is for state, never decoration (SCREENS.md): a busy GPU is not a problem,
# so load levels are drawn by height alone; heat and health get colour.
_HOT_C, _WARM_C = 85.0, 75.0


def _fraction(v: GpuView, metric: str) -> float | None:
    if metric == "util":
        return None if v.util is None else v.util / 100
    if metric == "mem":
        return None if v.mem_pct is None else v.mem_pct / 100
    if metric == "temp":
        return None if v.temp is None else (v.temp - 25) / 65
    return None if v.power is None else v.power / 700


def heat_cell(v: GpuView, metric: str) -> Text:
    """Two cells: a level glyph (height readable without colour) and a marker."""
    if v.state == "lost":
        return Text("✖ ", style="bold red")
    f = _fraction(v, metric)
    mark = "!" if v.severity >= Severity.WARNING else "m" if v.mig else " "
    if f is None:
        return Text("?" + mark, style="dim")
    level = max(0, min(len(LEVELS) - 1, int(f * len(LEVELS))))
    style = ""
    if metric == "temp" and v.temp is not None:
        style = "bold red" if v.temp >= _HOT_C else "yellow" if v.temp >= _WARM_C else ""
    cell = Text(LEVELS[level], style=style)
    mark_style = (
        "bold red"
        if v.severity >= Severity.CRITICAL
        else "yellow"
        if v.severity >= Severity.WARNING
        else ""
    )
    cell.append(mark, style=mark_style)
    return cell


def _avg(views: list[GpuView], metric: str) -> str:
    vals = [
        getattr(v, {"util": "util", "mem": "mem_pct", "temp": "temp", "power": "power"}[metric])
        for v in views
    ]
    known = [x for x in vals if x is not None]
    if not known:
        return "?"
    if metric == "power":
        return f"{sum(known) / 1000:.1f}k"
    unit = "°" if metric == "temp" else "%"
    return f"{(max(known) if metric == 'temp' else sum(known) / len(known)):.0f}{unit}"


def _shown_nodes(pane: Pane) -> list[str]:
    """The GPU nodes the filter lets through, in inventory order."""
    return [n.name for n in gpu_nodes(pane.ctx.inventory) if pane.ctx.node_filter(n.name)]


class GpuGridPane(Pane):
    """One row per node, one heat cell per GPU; ``m`` cycles util/mem/temp/power.

    Rows are rebuilt only for nodes whose readings changed (``PerNode``): with
    1,000 nodes a refresh costs the few rows that moved, not the fleet.
    """

    BINDINGS = [Binding("m", "next_metric", "GPU metric")]

    def compose_body(self) -> ComposeResult:
        self.rows: PerNode[Row] = PerNode()
        self.metric = str(self.ctx.options.get("metric", "util"))
        self.table = LineTable(
            [
                Column("", 1),
                Column("node", 7),
                Column("gpus", 16),
                Column("avg", 4, "right"),
                Column("alloc", 5),
                Column("flags", 0),
            ]
        )
        yield self.table

    def action_next_metric(self) -> None:
        self.metric = METRICS[(METRICS.index(self.metric) + 1) % len(METRICS)]
        self.rows.reset()
        self.data_changed()

    def _row(self, name: str) -> Row:
        store = self.ctx.store
        node = self.ctx.inventory.nodes[name]
        views = node_views(store, name)
        cells = Text()
        for v in views:
            cells.append_text(heat_cell(v, self.metric))
        flags = []
        smi = store.value(name, "gpu.smi")
        if isinstance(smi, str) and smi != "ok":
            flags.append("no smi")
        if drift(store, name, *expected_versions(node, config_of(self.ctx.inventory))):
            flags.append("drift")
        bad = [f"{v.index}:{v.problems[0][1].split()[0]}" for v in views if v.problems]
        flags += bad[:3]
        sev = max([v.severity for v in views], default=Severity.UNKNOWN)
        if isinstance(smi, str) and smi != "ok":
            sev = Severity.CRITICAL
        elif flags and sev < Severity.WARNING:
            sev = Severity.WARNING
        return Row(
            key=name,
            cells=(
                GLYPH[sev],
                name,
                cells if views else "?",
                _avg(views, self.metric),
                allocation(store, name) or "—",
                " ".join(flags),
            ),
            node=name,
            severity=sev,
            data=(("kind", "node"), ("target", name)),
        )

    def update_view(self) -> None:
        self.border_title = f"{self.ctx.spec.title} · {self.metric} (m)"
        rows = self.rows.refresh(self.ctx, lambda: _shown_nodes(self), self._row)
        self.table.set_rows(list(rows.values()))
        self.set_empty(not rows, "no GPU nodes (role gpu-* or hardware.gpu_count)")


class IdleAllocatedPane(Pane):
    """GPUs allocated to work but idle for N minutes: the seed's utilisation risk."""

    def compose_body(self) -> ComposeResult:
        self.table = LineTable(
            [
                Column("", 1),
                Column("gpu", 10),
                Column("idle", 5, "right"),
                Column("by", 10),
                Column("procs", 0),
            ]
        )
        self.idle: PerNode[list[IdleGpu]] = PerNode()
        yield self.table

    def update_view(self) -> None:
        c = config_of(self.ctx.inventory)
        per_node = self.idle.refresh(
            self.ctx, lambda: _shown_nodes(self), lambda n: idle_on_node(self.ctx.store, n, c)
        )
        rows = [
            Row(
                key=f"{i.node}/{i.index}",
                cells=(
                    "▲",
                    f"{i.node}/{i.index}",
                    f"{i.seconds / 60:.0f}m",
                    i.allocation,
                    "?" if i.processes is None else str(i.processes),
                ),
                node=i.node,
                severity=Severity.WARNING,
                data=(("kind", "gpu"), ("target", f"{i.node}/{i.index}")),
            )
            for idle in per_node.values()
            for i in idle
        ]
        self.table.set_rows(rows)
        self.set_empty(
            not rows, f"no allocated GPU under {c.idle_util_pct:g}% for {c.idle_minutes:g}m"
        )


class UnhealthyPane(Pane):
    """GPUs with XIDs, ECC errors, pending remaps or thermal/power throttling, worst first."""

    def compose_body(self) -> ComposeResult:
        self.table = LineTable(
            [Column("", 1), Column("gpu", 10), Column("util", 4, "right"), Column("problem", 0)]
        )
        self.unhealthy: PerNode[list[GpuView]] = PerNode()
        yield self.table

    def _unhealthy(self, name: str) -> list[GpuView]:
        return [v for v in node_views(self.ctx.store, name) if v.problems]

    def update_view(self) -> None:
        per_node = self.unhealthy.refresh(self.ctx, lambda: _shown_nodes(self), self._unhealthy)
        entries = [v for views in per_node.values() for v in views]
        entries.sort(key=lambda v: (-v.severity, v.node, v.index))
        rows = [
            Row(
                key=f"{v.node}/{v.index}",
                cells=(
                    GLYPH[v.severity],
                    f"{v.node}/{v.index}",
                    "?" if v.util is None else f"{v.util:.0f}%",
                    "; ".join(t for _, t in v.problems),
                ),
                node=v.node,
                severity=v.severity,
                data=(("kind", "gpu"), ("target", f"{v.node}/{v.index}")),
            )
            for v in entries
        ]
        self.table.set_rows(rows)
        self.set_empty(not rows, "no unhealthy GPU")


class DriftPane(Pane):
    """Nodes whose driver/CUDA differ from the inventory's expected versions."""

    def compose_body(self) -> ComposeResult:
        self.table = LineTable([Column("", 1), Column("node", 7), Column("drift", 0)])
        self.drifts: PerNode[str | None] = PerNode()
        yield self.table

    def _drift(self, name: str) -> str | None:
        config = config_of(self.ctx.inventory)
        node = self.ctx.inventory.nodes[name]
        return drift(self.ctx.store, name, *expected_versions(node, config))

    def update_view(self) -> None:
        per_node = self.drifts.refresh(self.ctx, lambda: _shown_nodes(self), self._drift)
        rows = [
            Row(
                key=name,
                cells=("▲", name, d),
                node=name,
                severity=Severity.WARNING,
                data=(("kind", "node"), ("target", name)),
            )
            for name, d in per_node.items()
            if d
        ]
        self.table.set_rows(rows)
        self.set_empty(not rows, "driver and CUDA as expected")
