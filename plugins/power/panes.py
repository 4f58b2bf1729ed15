"""The rack elevation and room summary panes (the plugin's only Textual module)."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from console.inventory.model import Node
from console.plugin import Severity
from console.widgets.line_table import Column, LineTable, Row
from console.widgets.pane import Pane
from plugins.power.checks import (
    GLYPH,
    RackPower,
    _num,
    inlet_severity,
    node_severity,
    rack_power,
)
from plugins.power.config import PowerConfig, config_of

RACKS_PER_BAND = 8
"""8 racks of 8 cells side by side fit an 80-column screen; more go in bands below."""
CELL = 8
"""The narrowest rack column: glyph, 4-character name, space, 2-digit value."""
LABEL = 3
"""The U number column (``42`` right-aligned) and its gap."""
CONTINUED = "│"
"""Under a node's first line, the U it also fills (readable without colour)."""
FREE = "·"
"""An empty U slot in a rack."""
_STYLE = {Severity.CRITICAL: "bold red", Severity.WARNING: "yellow", Severity.UNKNOWN: "dim"}


def short_name(name: str) -> str:
    """``gpu001`` -> ``g001``: first letter and trailing digits, to fit an 8-cell slot."""
    m = re.search(r"(\d+)$", name)
    return (name[0] + m.group(1))[:4] if m else name[:4]


def _fit(text: Text, width: int) -> Text:
    """``text`` cut or padded to exactly ``width`` cells (the rack columns line up)."""
    out = text.copy()
    out.truncate(width, overflow="ellipsis")
    out.pad_right(width - out.cell_len)
    return out


def _u_range(hi: int, lo: int) -> str:
    return f"U{lo}" if hi == lo else f"U{lo}-U{hi}"


@dataclass(frozen=True, slots=True)
class Band:
    """Up to RACKS_PER_BAND racks drawn side by side, and where they start in the table."""

    first: int
    """Index of the band's first row (its in-table head for every band but the first)."""
    racks: tuple[str, ...]
    rooms: str
    head: tuple[Text, Text]
    """Rack names with PSU redundancy, and draw against budget, aligned to the columns."""


class RackElevationPane(Pane):
    """Racks side by side, nodes over their full U height, coloured by inlet or power (``t``).

    Each line is one U, highest at the top as racks are read; a node's first line
    carries its glyph, name and value, the U below it a continuation mark. U ranges
    empty in every rack of a band collapse into one line so a room fits the screen.

    The heads of the racks in view (name, PSU redundancy, draw/budget) stay above the
    scrolling U lines, and the bottom border says how many lines are scrolled off: at
    80x24 the U lines scroll, and with NO_COLOR the scrollbar alone is not readable.
    """

    DEFAULT_CSS = """
    RackElevationPane > .elevation--head { height: auto; }
    """

    BINDINGS = [Binding("t", "toggle_metric", "Inlet/power")]

    def compose_body(self) -> ComposeResult:
        self.metric = str(self.ctx.options.get("metric", "inlet"))
        # Flexible rack columns (at least CELL wide): 8 racks fill 80 columns, fewer racks
        # or a wider screen get room for full names. Lines are composed here, one cell
        # each, so that a collapsed empty range can span every rack.
        self.bands = max(1, min(RACKS_PER_BAND, len(list(self.ctx.inventory.racks()))))
        self.band_list: list[Band] = []
        """The bands as last drawn, in table order."""
        self.head = Static("", classes="elevation--head")
        """The heads of the band whose lines are at the top of the table (fixed)."""
        self._head_shown: Band | None = None
        self.table = LineTable([Column("", 0)], show_header=False)
        yield self.head
        yield self.table

    def on_mount(self) -> None:
        # Pane.on_mount (the first refresh) runs too: Textual calls each class's handler.
        self.watch(self.table, "scroll_y", self._scrolled, init=False)

    def on_resize(self) -> None:
        self.data_changed()
        self.call_after_refresh(self._follow_cursor)

    def _scrolled(self) -> None:
        self._show_head()
        self.show_subtitle()

    def _follow_cursor(self) -> None:
        """Keep the cursor's line on screen when the table shrank or rows moved."""
        table = self.table
        height, top = table.size.height, table.scroll_offset.y
        if not table.rows or height <= 0 or top <= table.cursor < top + height:
            return
        y = table.cursor if table.cursor < top else table.cursor - height + 1
        table.scroll_to(y=y, animate=False)

    def _band_at(self, index: int) -> int:
        return max(0, bisect_right([b.first for b in self.band_list], index) - 1)

    def _show_head(self) -> None:
        """Show the heads of the band at the top of the table, and its rooms in the title."""
        unit = "°C" if self.metric == "inlet" else "kW"
        if not self.band_list:
            self.head.display = False
            self.border_title = f"Rack elevation · {self.metric} {unit} (t)"
            return
        band = self.band_list[self._band_at(self.table.scroll_offset.y)]
        self.border_title = f"Rack elevation · {band.rooms} · {self.metric} {unit} (t)"
        if band is self._head_shown:
            return  # redone on every refresh and scroll: repaint only when it changed
        self._head_shown = band
        text = Text("\n").join(band.head)
        text.no_wrap, text.overflow = True, "ellipsis"
        self.head.update(text)
        self.head.display = True

    def subtitle_note(self) -> str:
        """How many lines are above and below the view, and the racks entirely below."""
        table = self.table
        height = table.size.height
        if height <= 0:
            return ""
        top = table.scroll_offset.y
        below = max(0, len(table.rows) - top - height)
        parts = [f"↑ {top} above"] if top else []
        if below:
            parts.append(f"↓ {below} more line{'s' if below > 1 else ''}")
            later = [b for b in self.band_list if b.first >= top + height]
            if later:
                parts[-1] += f" ({later[0].racks[0]}-{later[-1].racks[-1]})"
        return " · ".join(parts)

    def _cell_width(self) -> int:
        width = self.table.size.width or 78
        return max(CELL, (width - LABEL - self.bands) // self.bands)

    def _config(self) -> PowerConfig:
        cfg = self.ctx.config
        return cfg if isinstance(cfg, PowerConfig) else config_of(self.ctx.inventory)

    def action_toggle_metric(self) -> None:
        self.metric = "power" if self.metric == "inlet" else "inlet"
        self.data_changed()

    def lines(self) -> list[str]:
        """The elevation as the operator reads it, without colour (for tests and copy):
        the first band's heads, then every line of the table."""
        head = [t.plain for t in self.band_list[0].head] if self.band_list else []
        return head + [
            "".join(c.plain if isinstance(c, Text) else c for c in row.cells)
            for row in self.table.rows
        ]

    def _cell(self, node: Node, c: PowerConfig) -> Text:
        store = self.ctx.store
        sev = node_severity(store, c, node.name)
        v: float | None = None
        w: float | None = None
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
        if width < 2 + len(name) + len(val) and val != "off" and w is not None:
            # Whole kW in a narrow slot ("6.5" -> "7"), under 1 kW in tenths (".5").
            val = f".{round(w / 100)}" if w < 950 else f"{w / 1000:.0f}"
        text.append(f"{name:<{width - 1 - len(val)}}")
        text.append(val, style=_STYLE.get(vsev, ""))
        return text

    def _rack_head(self, rp: RackPower, cell: int, c: PowerConfig) -> tuple[Text, Text]:
        """The rack's name with its PSU redundancy, and its draw against its budget."""
        wide = cell >= 14
        # PSU redundancy beside the rack name: "R01 ●N+1" (glyph readable without colour).
        rsev = {"ok": Severity.OK, "lost": Severity.CRITICAL}.get(
            rp.redundancy or "", Severity.UNKNOWN
        )
        word = {"ok": "N+1", "lost": "lost"}.get(rp.redundancy or "", "?")
        state = f"{'PSU ' if wide else ''}{GLYPH[rsev]}{word}"
        if word == "?" and len(rp.name) + len(state) + 7 <= cell:
            state = state[:-1] + "unknown"  # "??" reads as a typo where the word fits
        # The state before the name: in an 8-cell slot "R01✖lost", a long name shortened.
        gap = " " if len(rp.name) + 1 + len(state) <= cell else ""
        room = max(1, cell - len(gap) - len(state))
        name = rp.name if len(rp.name) <= room else rp.name[: room - 1] + "…"
        head = Text(name, style="bold")
        head.append(f"{gap}{state}", _STYLE.get(rsev, ""))
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
        return head, Text(load, style=_STYLE.get(sev, ""))

    def _line(self, label: str, cells: list[Text], cell: int) -> Text:
        line = Text(f"{label:>{LABEL - 1}} ")
        for i, text in enumerate(cells):
            line.append_text(_fit(text, cell))
            if i < len(cells) - 1:
                line.append(" ")
        return line

    def _band(
        self, start: int, band: list[str], racks: dict[str, RackPower], c: PowerConfig
    ) -> tuple[tuple[Text, Text], list[Row]]:
        """The band's two head lines, and its U lines."""
        inv, cell = self.ctx.inventory, self._cell_width()
        heads = [self._rack_head(racks[n], cell, c) for n in band]
        head = (
            self._line("", [h for h, _ in heads], cell),
            self._line("", [k for _, k in heads], cell),
        )
        rows: list[Row] = []
        # Per rack, what fills each U: (node, first line?); filtered-out nodes apart.
        fill: dict[str, dict[int, tuple[Node, bool]]] = {n: {} for n in band}
        hidden: dict[int, set[str]] = {}
        top = max((r.units for _room, r in inv.racks() if r.name in band), default=1)
        for n in band:
            for node in inv.nodes_in_rack(n):
                if node.u is None:
                    continue
                high = node.u + node.u_height - 1
                top = max(top, high)
                shown = not self.ctx.node_filter.active or self.ctx.node_filter(node.name)
                for u in range(node.u, high + 1):
                    if not shown:
                        hidden.setdefault(u, set()).add(node.name)
                    else:
                        # Two nodes declared in one slot: the first keeps it.
                        fill[n].setdefault(u, (node, u == high))
        units = {r.name: r.units for _room, r in inv.racks()}

        def gap(hi: int, lo: int) -> Row:
            names = set().union(*(hidden.get(u, set()) for u in range(lo, hi + 1)))
            what = f"{len(names)} filtered out" if names else "empty"
            return Row(
                f"gap:{start}:{hi}",
                (Text(f"{FREE:>{LABEL - 1}} {_u_range(hi, lo)} {what}", style="dim"),),
            )

        run: list[int] = []
        for u in [*range(top, 0, -1), 0]:  # 0 closes the last run
            if u and not any(u in fill[n] for n in band):
                run.append(u)
                continue
            if len(run) > 1:
                rows.append(gap(run[0], run[-1]))
            elif run:  # one free U takes a line either way: draw it as slots
                rows.append(self._slots(start, run[0], band, fill, units, cell, c))
            run = []
            if u:
                rows.append(self._slots(start, u, band, fill, units, cell, c))
        return head, rows

    def _slots(
        self,
        start: int,
        u: int,
        band: list[str],
        fill: dict[str, dict[int, tuple[Node, bool]]],
        units: dict[str, int],
        cell: int,
        c: PowerConfig,
    ) -> Row:
        cells: list[Text] = []
        first: Node | None = None
        for n in band:
            slot = fill[n].get(u)
            if slot is None:
                cells.append(Text(FREE if u <= units.get(n, 0) else "", style="dim"))
                continue
            node, head = slot
            first = first or node  # enter on the line opens the first rack's node
            cells.append(self._cell(node, c) if head else Text(CONTINUED, style="dim"))
        return Row(
            f"u:{start}:{u}",
            (self._line(str(u), cells, cell),),
            node=first.name if first else None,
            data=(("kind", "node"), ("target", first.name if first else "")),
        )

    def update_view(self) -> None:
        c = self._config()
        inv = self.ctx.inventory
        racks = {r.name: r for r in rack_power(self.ctx.store, inv)}
        room_of = {rack.name: room.name for room, rack in inv.racks()}
        names = list(room_of)
        rows: list[Row] = []
        bands: list[Band] = []
        for start in range(0, len(names), RACKS_PER_BAND):
            band = names[start : start + self.bands]
            head, lines = self._band(start, band, racks, c)
            if bands:  # later bands keep their heads in the table, above their own lines
                rows.append(Row(f"hdr:{start}", (head[0],)))
                rows.append(Row(f"kw:{start}", (head[1],)))
            rooms = ", ".join(dict.fromkeys(room_of[n] for n in band))
            bands.append(Band(len(rows) - (2 if bands else 0), tuple(band), rooms, head))
            rows.extend(lines)
        if bands != self.band_list:
            self.band_list = bands
        moved = len(rows) != len(self.table.rows)
        self.table.set_rows(rows)
        if moved:
            self.call_after_refresh(self._follow_cursor)
        self._show_head()
        self.set_empty(not names, "no racks in the inventory (rooms.racks)")


class RoomSummaryPane(Pane):
    """Total IT load, hottest inlets, fans and PSUs in fault, BMCs unreachable."""

    def compose_body(self) -> ComposeResult:
        self.table = LineTable(
            [Column("", 1), Column("what", 11), Column("", 0)], show_header=False
        )
        yield self.table

    _since: int | None = None

    def update_view(self) -> None:
        store, inv = self.ctx.store, self.ctx.inventory
        # A summary of every BMC: redone only when a power reading changed (the other
        # plugins' readings arrive far more often at fleet size).
        since, self._since = self._since, store.version
        if since is not None and not store.changed_nodes(since, "power"):
            return
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
