"""The power section of the node card: every sensor compactly, the last SEL entries, sparklines."""

from __future__ import annotations

from console.inventory.load import inventory_from_data
from console.plugin import Reading, Severity
from console.store import Store
from plugins.power.card import card
from plugins.power.collect import readings_of
from plugins.power.model import BmcSnapshot, LogEvent, Psu, Sensor


def _node():  # type: ignore[no-untyped-def]
    inv = inventory_from_data(
        {
            "site": {"name": "t"},
            "ssh": {"user": "ops"},
            "nodes": [{"nodes": "gpu01", "role": "gpu-train", "bmc": {"address": "gpu01-bmc"}}],
        },
        None,
    )
    return inv.nodes["gpu01"]


SNAP = BmcSnapshot(
    power_state="on",
    inlet_c=24.0,
    exhaust_c=None,
    power_w=None,
    sensors=(
        Sensor("Inlet Temp", "inlet", 24.0, "°C", "ok"),
        Sensor("FAN2", "fan", 0.0, "RPM", "critical"),
        Sensor("PS Redundancy", "redundancy", None, "", "ok", "Fully Redundant"),
    ),
    psus=(Psu("PSU1", "ok", 410.0), Psu("PSU2", "critical", None, text="input lost")),
    events=tuple(LogEvent(str(i), f"2025-01-0{i} 10:00", "ok", f"event {i}") for i in range(1, 8)),
)


def test_the_card_lists_every_sensor_with_reading_unit_and_state_the_failed_first():
    store = Store()
    store.put(readings_of("gpu01", SNAP, "redfish", 0.1))
    lines = card(store, _node())
    first = next(i for i, ln in enumerate(lines) if ln.label == "sensors")
    end = next(i for i, ln in enumerate(lines) if ln.label == "SEL")
    sensor_lines = lines[first:end]
    text = "\n".join(ln.text for ln in sensor_lines)
    assert sensor_lines[0].label == "sensors"
    assert sensor_lines[0].text.startswith("✖ ")  # the failures lead
    assert sensor_lines[0].severity == Severity.CRITICAL
    for piece in ("Inlet Temp", "24 °C", "FAN2", "0 RPM", "Fully Redundant", "PSU1", "410 W"):
        assert piece in text
    assert all(len(ln.text) <= 66 for ln in sensor_lines)  # two per line, fits 80 columns


def test_the_card_shows_the_last_five_sel_entries_and_unknown_power_as_a_dash():
    store = Store()
    store.put(readings_of("gpu01", SNAP, "redfish", 0.1))
    lines = card(store, _node())
    sel = [ln.text for ln in lines[lines.index(next(ln for ln in lines if ln.label == "SEL")) :]]
    assert len(sel) == 5 and "event 7" in sel[-1] and "event 3" in sel[0]
    draw = next(ln for ln in lines if ln.label == "draw")
    assert draw.text.startswith("? —") and draw.severity == Severity.UNKNOWN
    psus = next(ln for ln in lines if ln.label == "PSUs")
    assert psus.text.startswith("2 PSUs")


def test_the_card_keeps_inlet_sparkline_history():
    store = Store()
    for i, v in enumerate((22.0, 23.0, 26.0)):
        store.put(
            [
                Reading("gpu01", "power.bmc_ok", True, ts=float(i)),
                Reading("gpu01", "power.inlet_c", v, ts=float(i)),
            ]
        )
    inlet = next(ln for ln in card(store, _node()) if ln.label == "inlet")
    assert "26.0 °C" in inlet.text
    assert any(ch in inlet.text for ch in "▁▂▃▄▅▆▇█")
