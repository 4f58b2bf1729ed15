"""Pure parsers for Redfish resources (DMTF schemas; Dell iDRAC, HPE iLO 4/5 quirks).

Legacy ``Chassis/*/Thermal`` and ``Power``; the newer ``ThermalSubsystem``,
``ThermalMetrics``, ``PowerSubsystem``, ``PowerSupplies/*``, ``EnvironmentMetrics``
and ``Sensors/*``; ``Systems/*`` (power state, reset types); log entries.
Missing properties and ``null`` are unknown (None). Raise only ``ParseError``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal

from console.plugin import ParseError
from plugins.power.model import LogEvent, Psu, Sensor, SensorKind, SensorState


def load(text: str | bytes) -> dict[str, Any]:
    """A JSON object, or ParseError."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ParseError("a Redfish resource must be a JSON object")
    return data


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _health(status: Any) -> SensorState:
    """Redfish ``Status`` -> state: Absent, OK, Warning, Critical."""
    st = _dict(status)
    state = _str(st.get("State"))
    if state in ("Absent",):
        return "absent"
    if state in ("UnavailableOffline", "Disabled") and st.get("Health") is None:
        return "unknown"
    health = _str(st.get("Health"))
    return {"OK": "ok", "Warning": "warning", "Critical": "critical"}.get(health, "unknown")  # type: ignore[return-value]


def _temp_kind(name: str, context: str) -> SensorKind:
    n = name.lower()
    if context == "Intake" or re.search(r"inlet|intake|ambient", n):
        return "inlet"
    if context == "Exhaust" or re.search(r"exhaust|outlet", n):
        return "exhaust"
    return "temp"


def parse_thermal(data: dict[str, Any]) -> list[Sensor]:
    """Legacy ``Thermal``: Temperatures (ReadingCelsius) and Fans (Reading/ReadingUnits,
    or iLO 4's CurrentReading/Units and FanName)."""
    out: list[Sensor] = []
    for t in _list(data.get("Temperatures")):
        t = _dict(t)
        name = _str(t.get("Name")) or _str(t.get("MemberId")) or "temperature"
        state = _health(t.get("Status"))
        if state == "absent":
            continue
        kind = _temp_kind(name, _str(t.get("PhysicalContext")))
        out.append(Sensor(name, kind, _num(t.get("ReadingCelsius")), "C", state))
    for f in _list(data.get("Fans")):
        f = _dict(f)
        name = _str(f.get("Name")) or _str(f.get("FanName")) or _str(f.get("MemberId")) or "fan"
        state = _health(f.get("Status"))
        value = _num(f.get("Reading")) if "Reading" in f else _num(f.get("CurrentReading"))
        unit = _str(f.get("ReadingUnits")) or _str(f.get("Units"))
        out.append(
            Sensor(name, "fan", value, "RPM" if unit == "RPM" else "%" if unit else "", state)
        )
    return out


def parse_power(
    data: dict[str, Any],
) -> tuple[float | None, list[Psu], Literal["ok", "lost"] | None]:
    """Legacy ``Power``: consumed watts (PowerControl[0]), PSUs, redundancy."""
    watts = None
    for pc in _list(data.get("PowerControl")):
        watts = _num(_dict(pc).get("PowerConsumedWatts"))
        if watts is not None:
            break
    psus = []
    for p in _list(data.get("PowerSupplies")):
        p = _dict(p)
        name = _str(p.get("Name")) or _str(p.get("MemberId")) or "PSU"
        psus.append(
            Psu(
                name,
                _health(p.get("Status")),
                input_w=_num(p.get("PowerInputWatts")),
                capacity_w=_num(p.get("PowerCapacityWatts")),
                text=_str(_dict(p.get("Status")).get("State")),
            )
        )
    redundancy: Literal["ok", "lost"] | None = None
    for r in _list(data.get("Redundancy")):
        st = _health(_dict(r).get("Status"))
        if st in ("warning", "critical"):
            redundancy = "lost"
        elif st == "ok" and redundancy is None:
            redundancy = "ok"
    return watts, psus, redundancy


def parse_thermal_metrics(data: dict[str, Any]) -> tuple[float | None, float | None]:
    """``ThermalMetrics``: (intake, exhaust) °C from TemperatureSummaryCelsius."""
    summary = _dict(data.get("TemperatureSummaryCelsius"))
    return (
        _num(_dict(summary.get("Intake")).get("Reading")),
        _num(_dict(summary.get("Exhaust")).get("Reading")),
    )


def parse_fan(data: dict[str, Any]) -> Sensor:
    """``ThermalSubsystem/Fans/<id>``: SpeedPercent.Reading (and SpeedRPM)."""
    name = _str(data.get("Name")) or _str(data.get("Id")) or "fan"
    speed = _dict(data.get("SpeedPercent"))
    rpm = _num(speed.get("SpeedRPM"))
    value, unit = (rpm, "RPM") if rpm is not None else (_num(speed.get("Reading")), "%")
    return Sensor(name, "fan", value, unit, _health(data.get("Status")))


def parse_fan_redundancy(
    data: dict[str, Any], key: str = "FanRedundancy"
) -> Literal["ok", "lost"] | None:
    """``FanRedundancy`` (ThermalSubsystem) or ``PowerSupplyRedundancy`` (PowerSubsystem)."""
    result: Literal["ok", "lost"] | None = None
    for group in _list(data.get(key)):
        status = _dict(_dict(group).get("Status"))
        health = _str(status.get("Health"))
        if health in ("Warning", "Critical"):
            return "lost"
        if health == "OK" and _str(status.get("State")) == "Enabled":
            result = "ok"
    return result


def parse_power_supply(data: dict[str, Any], metrics: dict[str, Any] | None = None) -> Psu:
    """``PowerSubsystem/PowerSupplies/<id>`` (+ its ``Metrics``)."""
    name = _str(data.get("Name")) or _str(data.get("Id")) or "PSU"
    state = _health(data.get("Status"))
    line = _str(data.get("LineInputStatus"))
    if line and line not in ("Normal", "Unknown"):
        state = "critical"
    input_w = _num(_dict(_dict(metrics).get("InputPowerWatts")).get("Reading")) if metrics else None
    return Psu(
        name, state, input_w=input_w, capacity_w=_num(data.get("PowerCapacityWatts")), text=line
    )


def parse_environment_metrics(data: dict[str, Any]) -> tuple[float | None, float | None]:
    """``EnvironmentMetrics``: (power watts, temperature °C)."""
    return (
        _num(_dict(data.get("PowerWatts")).get("Reading")),
        _num(_dict(data.get("TemperatureCelsius")).get("Reading")),
    )


def parse_sensor(data: dict[str, Any]) -> tuple[str, float | None, str]:
    """``Sensors/<id>``: (ReadingType, Reading, ReadingUnits)."""
    return _str(data.get("ReadingType")), _num(data.get("Reading")), _str(data.get("ReadingUnits"))


def parse_system(data: dict[str, Any]) -> dict[str, Any]:
    """``Systems/<id>``: power state, reset target and types, identify LED, health."""
    ps = _str(data.get("PowerState"))
    power: Literal["on", "off"] | None
    if ps in ("On", "PoweringOff"):
        power = "on"
    elif ps in ("Off", "PoweringOn"):
        power = "off"
    else:
        power = None
    reset = _dict(_dict(data.get("Actions")).get("#ComputerSystem.Reset"))
    allowed = [
        v for v in _list(reset.get("ResetType@Redfish.AllowableValues")) if isinstance(v, str)
    ]
    led = data.get("LocationIndicatorActive")
    identify: bool | None = led if isinstance(led, bool) else None
    if identify is None and isinstance(data.get("IndicatorLED"), str):
        identify = data["IndicatorLED"] in ("Lit", "Blinking")
    return {
        "power_state": power,
        "power_state_raw": ps,
        "reset_target": _str(reset.get("target")),
        "reset_types": tuple(allowed),
        "identify": identify,
        "health": _health(data.get("Status")),
        "name": _str(data.get("Name")),
    }


def members(data: dict[str, Any]) -> list[str]:
    """The ``@odata.id`` of each member of a collection."""
    out = []
    for m in _list(data.get("Members")):
        oid = _dict(m).get("@odata.id")
        if isinstance(oid, str) and oid.startswith("/"):
            out.append(oid)
    return out


def link(data: dict[str, Any], key: str) -> str | None:
    oid = _dict(data.get(key)).get("@odata.id")
    return oid if isinstance(oid, str) and oid.startswith("/") else None


def parse_log_entries(data: dict[str, Any]) -> list[LogEvent]:
    """A ``LogEntryCollection``: Severity OK/Warning/Critical and Message."""
    out = []
    for m in _list(data.get("Members")):
        m = _dict(m)
        sev = {"Critical": "critical", "Warning": "warning"}.get(_str(m.get("Severity")), "ok")
        out.append(
            LogEvent(
                _str(m.get("Id")),
                _str(m.get("Created")),
                sev,  # type: ignore[arg-type]
                _str(m.get("Message")) or _str(m.get("Name")),
            )
        )
    return out
