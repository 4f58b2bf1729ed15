"""The rack elevation and room summary panes (the plugin's only Textual module)."""

from __future__ import annotations

import re

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding

from console.inventory.model import Node
from console.plugin import Severity
from console.widgets.line_table import Column, LineTable, Row
from console.widgets.pane import Pane
from plugins.power.checks import GLYPH, _num, inlet_severity, node_severity, rack_power
from plugins.power.config import PowerConfig, config_of

RACKS_PER_BAND = 8
"""8 racks of 8 cells side by side fit an 80-column screen; more go in bands below."""
CELL = 8
"""The narrowest rack column: glyph, 4-character name, space, 2-digit value."""
_STYLE = {Severity.CRITICAL: "bold red", Severity.WARNING: "yellow", Severity.UNKNOWN: "dim"}


def short_name(name: str) -> str:
    """``gpu001`` -> ``g001``: first letter and trailing digits, to fit an 8-cell slot."""
    m = re.search(r"(\d+)$", name)
    return (name[0] + m.group(1))[:4] if m else name[:4]


class RackElevationPane(Pane):
    """Racks side by side, nodes in their U slots, coloured by inlet or power (``t``)."""

    BINDINGS = [Binding("t", "toggle_metric", "Inlet/power")]

    def compose_body(self) -> ComposeResult:
        self.metric = str(self.ctx.options.get("metric", "inlet"))
        # Flexible rack columns (at least CELL wide): 8 racks fill 80 columns, fewer racks
        # or a wider screen get room for full names.
        racks = max(1, min(RACKS_PER_BAND, len(list(self.ctx.inventory.racks()))))
        self.bands = racks
        cols = [Column("U", 2, "right")] + [Column("", 0) for _ in range(racks)]
        self.table = LineTable(cols, show_header=False)
        yield self.table

    def on_resize(self) -> None:
        self.data_changed()

    def _cell_width(self) -> int:
        width = self.table.size.width or 78
        return max(CELL, (width - 3 - self.bands) // self.bands)

    def _config(self) -> PowerConfig:
        cfg = self.ctx.config
        return cfg if isinstance(cfg, PowerConfig) else config_of(self.ctx.inventory)

    def action_toggle_metric(self) -> None:
        self.metric = "power" if self.metric == "inlet" else "inlet"
        self.data_changed()

    def _cell(self, node: Node, c: PowerConfig) -> Text:
        store = self.ctx.store
        sev = node_severity(store, c, node.name)
        if self.metric == "inlet":
            v = _num(store, node.name, "power.inlet_c")
            val = "?" if v is None else f"{v:.0f}°"
            vsev = inlet_severity(c, v)
        else:
            w = _num(store, node.name, "power.power_w")
            val = "?" if w is None else (f"{w / 1000:.1f}" if w < 9950 else f"{w / 1000:.0f}")
            vsev = Severity.UNKNOWN if w is None else Severity.OK
            if store.value(node.name, "power.state") == "off":
                val = "off"
        width = min(self._cell_width(), 16)  # on a wide screen the value stays by its name
        if self.metric == "inlet" and val != "?" and width >= 14 and v is not None:
            val = f"{v:.1f}°"
        elif self.metric == "power" and val not in ("?", "off") and width >= 14:
            val += "kW"
        name = node.name if width >= 2 + len(node.name) + len(val) else short_name(node.name)
        text = Text(GLYPH[sev], style=_STYLE.get(sev, ""))
        # Name and value apart even in an 8-cell slot: "●g004 21" (the title gives the unit).
        if width < 2 + len(name) + len(val):
            val = val.rstrip("°")
        text.append(f"{name:<{width - 1 - len(val)}}")
        text.append(val, style=_STYLE.get(vsev, ""))
        return text

    def update_view(self) -> None:
        c = self._config()
        inv = self.ctx.inventory
        racks = {r.name: r for r in rack_power(self.ctx.store, inv)}
        names = [rack.name for _room, rack in inv.racks()]
        rows: list[Row] = []
        for start in range(0, len(names), RACKS_PER_BAND):
            band = names[start : start + self.bands]
            pad = [""] * (self.bands - len(band))
            wide = self._cell_width() >= 14
            hdr: list[str | Text] = []
            kw: list[str | Text] = []
            for n in band:
                rp = racks[n]
                # PSU redundancy beside the rack name: "R01 ●N+1" (glyph readable without colour).
                rsev = {"ok": Severity.OK, "lost": Severity.CRITICAL}.get(
                    rp.redundancy or "", Severity.UNKNOWN
                )
                word = {"ok": "N+1", "lost": "lost"}.get(rp.redundancy or "", "?")
                head = Text(n, style="bold")
                head.append(f" {'PSU ' if wide else ''}{GLYPH[rsev]}{word}", _STYLE.get(rsev, ""))
                hdr.append(head)
                over = rp.draw_kw is not None and rp.draw_kw > rp.budget_kw
                near = rp.draw_kw is not None and rp.draw_kw > c.budget_warn_fraction * rp.budget_kw
                sev = (
                    Severity.CRITICAL
                    if over
                    else Severity.WARNING
                    if near
                    else Severity.OK
                    if rp.draw_kw is not None
                    else Severity.UNKNOWN
                )
                draw = "?" if rp.draw_kw is None else f"{rp.draw_kw:.{1 if wide else 0}f}"
                load = f"{GLYPH[sev]}{draw}/{rp.budget_kw:g}kW"
                if wide and rp.known < rp.nodes:
                    load += f" {rp.known}/{rp.nodes}"  # some nodes' draw is unknown
                kw.append(Text(load, style=_STYLE.get(sev, "")))
            rows.append(Row(f"hdr:{start}", ("", *hdr, *pad)))
            rows.append(Row(f"kw:{start}", ("", *kw, *pad)))
            slots: dict[int, dict[str, Node]] = {}
            for n in band:
                for node in inv.nodes_in_rack(n):
                    if node.u is None or (
                        self.ctx.node_filter.active and not self.ctx.node_filter(node.name)
                    ):
                        continue
                    slots.setdefault(node.u, {})[n] = node
            for u in sorted(slots, reverse=True):
                cells: list[str | Text] = [str(u)]
                first: Node | None = None
                worst = Severity.OK
                for n in band:
                    slot = slots[u].get(n)
                    if slot is None:
                        cells.append("")
                        continue
                    first = first or slot
                    worst = max(worst, node_severity(self.ctx.store, c, slot.name))
                    cells.append(self._cell(slot, c))
                rows.append(
                    Row(
                        f"u:{start}:{u}",
                        (*cells, *pad),
                        node=first.name if first else None,
                        data=(("kind", "node"), ("target", first.name if first else "")),
                    )
                )
        self.table.set_rows(rows)
        self.border_title = f"Rack elevation · {self.metric} (t)"
        self.set_empty(not names, "no racks in the inventory (rooms.racks)")


class RoomSummaryPane(Pane):
    """Total IT load, hottest inlets, fans and PSUs in fault, BMCs unreachable."""

    def compose_body(self) -> ComposeResult:
        self.table = LineTable(
            [Column("", 1), Column("what", 11), Column("", 0)], show_header=False
        )
        yield self.table

    def update_view(self) -> None:
        store, inv = self.ctx.store, self.ctx.inventory
        c = self.ctx.config if isinstance(self.ctx.config, PowerConfig) else config_of(inv)
        racks = rack_power(store, inv)
        nodes = [n for n in inv.nodes.values() if n.bmc is not None]
        draw = [r.draw_kw for r in racks if r.draw_kw is not None]
        budget = sum(r.budget_kw for r in racks)
        rows: list[Row] = []

        def add(key: str, sev: Severity, label: str, text: str, node: str | None = None) -> None:
            rows.append(Row(key, (GLYPH[sev], label, text), node=node, severity=sev))

        over = [r.name for r in racks if r.draw_kw is not None and r.draw_kw > r.budget_kw]
        load = f"{sum(draw):.1f} of {budget:g} kW" if draw else "unknown"
        if draw and budget:
            load += f" ({sum(draw) / budget:.0%})"
        if draw and len(draw) < len(racks):
            load += f", {len(racks) - len(draw)} racks unknown"
        add(
            "load",
            Severity.CRITICAL if over else Severity.OK if draw else Severity.UNKNOWN,
            "IT load",
            load,
        )
        if over:
            add("over", Severity.CRITICAL, "over budget", ", ".join(over))
        inlets = sorted(
            ((v, n.name) for n in nodes if (v := _num(store, n.name, "power.inlet_c")) is not None),
            reverse=True,
        )
        hot = ", ".join(f"{name} {v:.1f}°" for v, name in inlets[:3]) or "unknown"
        add(
            "hot",
            inlet_severity(c, inlets[0][0]) if inlets else Severity.UNKNOWN,
            "hot inlets",
            hot,
            inlets[0][1] if inlets else None,
        )

        def listing(metric: str) -> tuple[list[str], int]:
            """Nodes with a non-zero count, and how many nodes have no known count."""
            out, unknown = [], 0
            for n in nodes:
                r = store.latest(n.name, metric)
                if r is None or not isinstance(r.value, int) or isinstance(r.value, bool):
                    unknown += 1
                elif r.value > 0:
                    out.append(f"{n.name} ({r.detail})" if r.detail else n.name)
            return out, unknown

        def none_or_unknown(unknown: int) -> tuple[Severity, str]:
            # "none" only when every BMC said so: no data is not good news.
            if unknown == len(nodes):
                return Severity.UNKNOWN, "unknown"
            return Severity.OK, "none" + (f" ({unknown} unknown)" if unknown else "")

        fans, fans_unknown = listing("power.fans_failed")
        quiet_sev, quiet = none_or_unknown(fans_unknown)
        add(
            "fans", Severity.WARNING if fans else quiet_sev, "fans failed", ", ".join(fans) or quiet
        )
        psus, psus_unknown = listing("power.psus_failed")
        lost = [n.name for n in nodes if store.value(n.name, "power.redundancy") == "lost"]
        quiet_sev, quiet = none_or_unknown(psus_unknown)
        add(
            "psus",
            Severity.CRITICAL if psus or lost else quiet_sev,
            "PSUs failed",
            ", ".join(psus) or ("redundancy lost: " + ", ".join(lost) if lost else quiet),
        )
        answered = [n.name for n in nodes if store.value(n.name, "power.bmc_ok") is not None]
        silent = [n.name for n in nodes if store.value(n.name, "power.bmc_ok") is False]
        quiet_sev, quiet = none_or_unknown(len(nodes) - len(answered))
        add(
            "bmc",
            Severity.CRITICAL if silent else quiet_sev,
            "BMCs silent",
            ", ".join(silent) or quiet,
            silent[0] if silent else None,
        )
        states = [store.value(n.name, "power.state") for n in nodes]
        off = [n.name for n, st in zip(nodes, states, strict=True) if st == "off"]
        quiet_sev, quiet = none_or_unknown(sum(1 for st in states if st is None))
        add("off", quiet_sev if not off else Severity.OK, "powered off", ", ".join(off) or quiet)
        self.table.set_rows(rows)
        self.set_empty(not nodes, "no node declares a BMC (nodes[].bmc)")
