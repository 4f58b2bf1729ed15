"""The node card section: BMC, power state, sparklines, every sensor, the last SEL entries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from console.plugin import CardLine, Severity
from console.sparkline import sparkline
from plugins.power.checks import GLYPH, _num, inlet_severity
from plugins.power.config import PowerConfig

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Node
    from console.store import StoreView

CARD_TITLE = "Power and thermal"
MAX_SENSORS = 60
"""A card is read, not scrolled through: past this many sensors it says how many more."""
STATE_GLYPH = {"ok": "●", "warning": "▲", "critical": "✖", "absent": "-", "unknown": "?"}
STATE_SEVERITY = {"warning": Severity.WARNING, "critical": Severity.CRITICAL}
NAME_W = 14
CELL_W = 32
"""Two sensors a line: ``● Inlet Temp        24.0 °C`` fits twice in an 80-column card."""


def _fmt(v: float | None, unit: str, fmt: str = ".1f") -> str:
    return "—" if v is None else f"{v:{fmt}} {unit}"


def _rows(store: StoreView, node: str, metric: str) -> list[list[Any]]:
    """The JSON rows a collector stored (see ``collect.sensor_table``); [] if none or bad."""
    raw = store.value(node, metric)
    if not isinstance(raw, str):
        return []
    try:
        rows = json.loads(raw)
    except ValueError:
        return []
    return [r for r in rows if isinstance(r, list)] if isinstance(rows, list) else []


def _sensor_cell(row: list[Any]) -> tuple[str, Severity]:
    name, value, unit, state, text = (list(row) + [None] * 5)[:5]
    state = state if state in STATE_GLYPH else "unknown"
    if isinstance(value, int | float) and not isinstance(value, bool):
        reading = f"{value:>10g} {str(unit or '')[:4]:<4}"
    else:
        # Discrete sensors (presence, redundancy) say it in words; unknown is "—", never 0.
        reading = f"{str(text or '—')[:15]:>15}"
    cell = f"{STATE_GLYPH[state]} {str(name)[:NAME_W]:<{NAME_W}} {reading}"
    return cell, STATE_SEVERITY.get(state, Severity.OK)


def sensor_lines(store: StoreView, node: str) -> list[CardLine]:
    rows = _rows(store, node, "power.sensors")
    # The troubled first, so a long list still shows what matters at the top.
    order = {"critical": 0, "warning": 1, "unknown": 2, "ok": 3, "absent": 4}
    rows.sort(key=lambda r: order.get(str(r[3]) if len(r) > 3 else "", 2))
    shown = rows[:MAX_SENSORS]
    out: list[CardLine] = []
    for i in range(0, len(shown), 2):
        cells = [_sensor_cell(r) for r in shown[i : i + 2]]
        text = "  ".join(f"{c:<{CELL_W}}" for c, _ in cells).rstrip()
        label = "sensors" if i == 0 else ""
        out.append(CardLine(label, text, max(s for _, s in cells)))
    if len(rows) > MAX_SENSORS:
        out.append(CardLine("", f"… {len(rows) - MAX_SENSORS} more sensors", Severity.UNKNOWN))
    return out


def sel_lines(store: StoreView, node: str) -> list[CardLine]:
    out = []
    for i, row in enumerate(_rows(store, node, "power.sel")):
        when, sev, message = (list(row) + [""] * 3)[:3]
        severity = STATE_SEVERITY.get(str(sev), Severity.OK)
        glyph = STATE_GLYPH.get(str(sev), "●")
        out.append(
            CardLine("SEL" if i == 0 else "", f"{glyph} {str(when)[:19]}  {message}", severity)
        )
    return out


def card(store: StoreView, node: Node) -> Sequence[CardLine]:
    if node.bmc is None:
        return []
    n = node.name
    bmc = store.latest(n, "power.bmc_ok")
    if bmc is None:
        return [
            CardLine(
                "BMC", f"? not read yet ({node.bmc.protocol} {node.bmc.address})", Severity.UNKNOWN
            )
        ]
    lines = []
    if bmc.value is False:
        lines.append(CardLine("BMC", f"✖ unreachable: {bmc.detail}", Severity.CRITICAL))
    else:
        lines.append(
            CardLine("BMC", f"● {node.bmc.protocol} {node.bmc.address} answers ({bmc.detail})")
        )
    state = store.value(n, "power.state")
    lines.append(
        CardLine("power", str(state or "unknown"), Severity.OK if state else Severity.UNKNOWN)
    )
    inlet_sev = inlet_severity(PowerConfig(), _num(store, n, "power.inlet_c"))
    for label, metric, unit in (
        ("inlet", "power.inlet_c", "°C"),
        ("exhaust", "power.exhaust_c", "°C"),
        ("draw", "power.power_w", "W"),
    ):
        v = _num(store, n, metric)
        sev = inlet_sev if label == "inlet" else Severity.OK if v is not None else Severity.UNKNOWN
        spark = sparkline(store.history(n, metric), 24)
        text = _fmt(v, unit, ".0f" if unit == "W" else ".1f")
        lines.append(CardLine(label, f"{GLYPH[sev]} {text:<9} {spark}", sev))
    red = store.value(n, "power.redundancy")
    psus = store.value(n, "power.psus")
    psu_text = f"{psus if psus is not None else '?'} PSUs, redundancy {red or 'unknown'}"
    lines.append(CardLine("PSUs", psu_text, Severity.CRITICAL if red == "lost" else Severity.OK))
    lines += sensor_lines(store, n)
    sensors = store.latest(n, "power.sensors")
    if sensors is not None and sensors.detail:
        lines.append(CardLine("not read", sensors.detail, Severity.UNKNOWN))
    lines += sel_lines(store, n)
    return lines
