"""What the lab's ipmi_exporter serves for one BMC: sensors, chassis power, DCMI, SEL counts.

Shapes follow ipmi_exporter's documentation (``../shared/samples/prometheus/
ipmi-exporter-docs-metrics.txt``): ``ipmi_<kind>_<unit>`` and ``ipmi_<kind>_state``
(0 nominal, 1 warning, 2 critical) per sensor with ``id`` and ``name``, generic
sensors in ``ipmi_sensor_state``/``ipmi_sensor_value`` with a ``type``, and
``ipmi_up`` per collector. Values come from the same state the lab's Redfish BMC
serves (``plugins.power.lab_resources``), so both sources read the same numbers.
The exporter runs beside the BMC (on the management network's address): a powered-
off host's BMC still answers; a BMC that does not (``power.bmc_down``) gives
``ipmi_up 0`` and no sensors, as ipmi_exporter does when it cannot reach one.
"""

from __future__ import annotations

from typing import Any

from console.sources.exposition import format_family
from plugins.power.collect import SEL_RECENT

COLLECTORS = ("bmc", "chassis", "dcmi", "ipmi", "sel")


def ipmi_text(power_lab: Any, name: str) -> str:
    """One scrape of the ipmi_exporter for ``name``'s BMC."""
    from plugins.power.lab_resources import _fans, _psus

    host = power_lab.host(name)
    bmc = power_lab.bmcs[name]
    if host.fault("power.bmc_down") is not None:
        return format_family(
            "ipmi_up",
            "gauge",
            "'1' if a scrape of the IPMI device was successful, '0' otherwise.",
            [({"collector": c}, 0) for c in COLLECTORS],
        )
    fans = _fans(power_lab, name)
    psus = _psus(power_lab, name)
    watts = round(float(host.power_w), 1)
    temps = [
        ({"id": "1", "name": "Inlet Temp"}, power_lab.inlet(name)),
        ({"id": "2", "name": "Exhaust Temp"}, power_lab.exhaust(name)),
    ]
    fan_rows = [({"id": str(10 + i), "name": f["Name"]}, f["rpm"]) for i, f in enumerate(fans)]
    fan_states = [
        ({"id": str(10 + i), "name": f["Name"]}, 0 if f["health"] == "OK" else 2)
        for i, f in enumerate(fans)
    ]
    psu_labels = [
        {"id": str(30 + i), "name": p["Name"], "type": "Power Supply"} for i, p in enumerate(psus)
    ]
    recent = bmc.log[-SEL_RECENT:]
    by_state = {
        "Nominal": sum(1 for e in recent if e.get("Severity") == "OK"),
        "Warning": sum(1 for e in recent if e.get("Severity") == "Warning"),
        "Critical": sum(1 for e in recent if e.get("Severity") == "Critical"),
    }
    power_label = {"id": "90", "name": "Pwr Consumption"}
    parts = [
        format_family(
            "ipmi_up",
            "gauge",
            "'1' if a scrape of the IPMI device was successful, '0' otherwise.",
            [({"collector": c}, 1) for c in COLLECTORS],
        ),
        format_family(
            "ipmi_chassis_power_state",
            "gauge",
            "Current power state (1=on, 0=off).",
            [({}, 1 if host.powered else 0)],
        ),
        format_family(
            "ipmi_dcmi_power_consumption_watts",
            "gauge",
            "Current power consumption in Watts.",
            [({}, watts)],
        ),
        format_family(
            "ipmi_temperature_celsius",
            "gauge",
            "Temperature reading in degree Celsius.",
            temps,
        ),
        format_family(
            "ipmi_temperature_state",
            "gauge",
            "Reported state of a temperature sensor (0=nominal, 1=warning, 2=critical).",
            [(labels, 0) for labels, _ in temps],
        ),
        format_family(
            "ipmi_fan_speed_rpm", "gauge", "Fan speed in rotations per minute.", fan_rows
        ),
        format_family(
            "ipmi_fan_speed_state",
            "gauge",
            "Reported state of a fan speed sensor (0=nominal, 1=warning, 2=critical).",
            fan_states,
        ),
        format_family(
            "ipmi_power_watts", "gauge", "Power reading in Watts.", [(power_label, watts)]
        ),
        format_family(
            "ipmi_power_state",
            "gauge",
            "Reported state of a power sensor (0=nominal, 1=warning, 2=critical).",
            [(power_label, 0)],
        ),
        format_family(
            "ipmi_sensor_state",
            "gauge",
            "Indicates the severity of the state reported by an IPMI sensor "
            "(0=nominal, 1=warning, 2=critical).",
            [(labels, 0 if p["ok"] else 2) for labels, p in zip(psu_labels, psus, strict=True)],
        ),
        format_family(
            "ipmi_sensor_value",
            "gauge",
            "Generic data read from an IPMI sensor of unknown type, relying on labels for context.",
            [(labels, float("nan")) for labels in psu_labels],
        ),
        format_family(
            "ipmi_sel_events_count_by_state",
            "gauge",
            "Number of platform events per state",
            [({"state": k}, v) for k, v in by_state.items()],
        ),
    ]
    return "".join(parts)


async def start_exporters(power_lab: Any, lab: Any) -> None:
    """Serve an ipmi_exporter beside every BMC (on the BMC's address)."""
    from console.lab.exporters import ExporterSet, exporters_enabled

    if not exporters_enabled(lab) or not power_lab.bmcs:
        return

    def render(name: str) -> str | None:
        return ipmi_text(power_lab, name) if name in power_lab.bmcs else None

    exporter = ExporterSet("ipmi", render)
    power_lab.exporters["ipmi"] = exporter
    await exporter.start([(n, b.address) for n, b in power_lab.bmcs.items()])
