"""Pure parsers for ipmitool and freeipmi output. They raise only ``ParseError``.

Formats (ipmitool 1.8.19, freeipmi 1.6): ``ipmitool sdr [elist]`` (3 or 5
columns, ``|``-separated, or ``-c`` CSV), ``ipmitool sensor`` (10 columns with
thresholds), ``ipmitool dcmi power reading``, ``ipmitool chassis status`` /
``chassis power status``, ``ipmitool sel elist``; freeipmi ``ipmi-sensors``,
``ipmi-dcmi --get-system-power-statistics``, ``ipmi-sel``, ``ipmi-power --stat``.
Readings the BMC calls ``na``, ``N/A``, ``Not Available``, ``No Reading`` or
``Disabled`` are unknown (None), never 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from console.plugin import ParseError
from plugins.power.model import LogEvent, Psu, Sensor, SensorKind, SensorState

_UNKNOWN_WORDS = {"", "na", "n/a", "not available", "no reading", "disabled", "not readable"}
_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(.*?)\s*$")
_PSU_BAD = ("failure", "fail", "ac lost", "input lost", "out-of-range", "predictive")
_REDUNDANCY_LOST = ("lost", "non-redundant", "insufficient", "degraded")

# IPMI entity ids (IPMI 2.0 table 43-13): power supply, cooling, air inlet.
_ENTITY_PSU = {"10"}
_ENTITY_FAN = {"29", "30"}
_ENTITY_INLET = {"55", "64"}


def _status(word: str) -> SensorState:
    """ipmitool's short status (ok, nc, cr, nr, ns, lnc, ucr ...) as a state."""
    w = word.strip().lower()
    if w in ("ok", "0x00"):
        return "ok"
    if w in ("ns", "na", ""):
        return "unknown"
    if w in ("nc", "lnc", "unc"):
        return "warning"
    if w in ("cr", "nr", "lcr", "ucr", "lnr", "unr"):
        return "critical"
    return "unknown"


def _number(text: str) -> tuple[float | None, str]:
    """``24 degrees C`` -> (24.0, "degrees C"); unknown words -> (None, "")."""
    t = text.strip()
    if t.lower() in _UNKNOWN_WORDS:
        return None, ""
    m = _NUMBER.match(t)
    if m is None or t.lower().startswith("0x"):
        return None, ""
    return float(m.group(1)), m.group(2)


def classify(name: str, unit: str, entity: str = "", text: str = "") -> SensorKind:
    """What a sensor is about, from its name, unit and entity id."""
    n = name.lower()
    u = unit.lower()
    ent = entity.split(".", 1)[0]
    if "redundan" in n or "redundan" in text.lower():
        return "redundancy"
    temp = "degrees c" in u or u in ("c", "°c", "celsius")
    if temp:
        if ent in _ENTITY_INLET or re.search(
            r"inlet|intake|ambient|front panel temp|sys(tem)? ?temp", n
        ):
            return "inlet"
        if re.search(r"exhaust|outlet", n):
            return "exhaust"
        return "temp"
    if "rpm" in u or (re.search(r"\bfan", n) and u in ("%", "percent")):
        return "fan"
    if u in ("watts", "w"):
        return "power"
    if ent in _ENTITY_PSU or re.search(r"\bps\d|psu|power supply|pwr supply", n):
        return "psu"
    if ent in _ENTITY_FAN and not u:
        return "fan"
    return "other"


def _psu_state(status: SensorState, text: str) -> SensorState:
    t = text.lower()
    if "absent" in t or "not present" in t:
        return "absent"
    if any(w in t for w in _PSU_BAD):
        return "critical"
    if "presence detected" in t or t in ("ok", "'ok'"):
        return "ok" if status != "critical" else "critical"
    return status


def _sensor(name: str, status_word: str, reading: str, entity: str = "") -> Sensor:
    value, unit = _number(reading)
    text = "" if value is not None else reading.strip()
    kind = classify(name, unit, entity, text)
    state = _status(status_word)
    if kind == "psu":
        state = _psu_state(state, text)
    elif kind == "redundancy":
        low = text.lower()
        state = "critical" if any(w in low for w in _REDUNDANCY_LOST) else state
    elif kind == "fan" and value is None and state == "ok" and text.lower() in _UNKNOWN_WORDS:
        state = "unknown"
    return Sensor(name.strip(), kind, value, unit, state, text)


def parse_sdr(text: str) -> list[Sensor]:
    """``ipmitool sdr`` / ``sdr list`` (3 columns), ``sdr elist`` (5) or ``sdr ... -c`` (CSV)."""
    sensors: list[Sensor] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        if "|" in line:
            cols = [c.strip() for c in line.split("|")]
        else:
            cols = [c.strip() for c in line.split(",")]
        if len(cols) == 3:
            name, reading, status = cols
            sensors.append(_sensor(name, status, reading))
        elif len(cols) == 5:
            name, _sid, status, entity, reading = cols
            sensors.append(_sensor(name, status, reading, entity))
        elif len(cols) >= 10 and "|" in line:
            sensors.append(_sensor_list_row(cols))
        else:
            raise ParseError(f"sdr line {lineno}: expected 3, 5 or 10 columns, got {len(cols)}")
    return sensors


def _sensor_list_row(cols: Sequence[str]) -> Sensor:
    name, reading, unit, status = cols[0], cols[1], cols[2], cols[3]
    value, _ = _number(reading)
    unit = "" if unit.lower() in _UNKNOWN_WORDS or unit.lower() == "discrete" else unit
    kind = classify(name, unit)
    state = _status(status)
    text = "" if value is not None else reading
    if kind == "psu":
        state = _psu_state(state, status)
    return Sensor(name, kind, value, unit, state, text)


def parse_sensor_list(text: str) -> list[Sensor]:
    """``ipmitool sensor`` (name | reading | unit | status | 6 thresholds)."""
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        cols = [c.strip() for c in line.split("|")]
        if len(cols) < 4:
            raise ParseError(f"sensor line {lineno}: expected 10 columns, got {len(cols)}")
        out.append(_sensor_list_row(cols))
    return out


def parse_freeipmi_sensors(text: str) -> list[Sensor]:
    """freeipmi ``ipmi-sensors``: ID | Name | Type | [State] | Reading | Units | ... | Event."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    header = [c.strip().lower() for c in lines[0].split("|")]
    try:
        i_name, i_type = header.index("name"), header.index("type")
        i_read, i_unit, i_event = (
            header.index("reading"),
            header.index("units"),
            header.index("event"),
        )
    except ValueError:
        raise ParseError("ipmi-sensors: header without Name/Type/Reading/Units/Event") from None
    out = []
    for lineno, line in enumerate(lines[1:], 2):
        cols = [c.strip() for c in line.split("|")]
        if len(cols) != len(header):
            raise ParseError(
                f"ipmi-sensors line {lineno}: {len(cols)} columns, header has {len(header)}"
            )
        name, stype, unit = cols[i_name], cols[i_type], cols[i_unit]
        event = cols[i_event].strip("'")
        value, _ = _number(cols[i_read])
        unit = "" if unit.lower() in _UNKNOWN_WORDS else unit
        kind = classify(name, unit)
        if stype.lower() == "power supply":
            kind = "psu"
        elif stype.lower() == "fan" and kind == "other":
            kind = "fan"
        ev = event.lower()
        state: SensorState
        sstate = cols[header.index("state")].lower() if "state" in header else ""
        if sstate in ("warning", "critical"):
            state = sstate  # type: ignore[assignment]
        elif ev == "ok" or (sstate == "nominal" and ev in _UNKNOWN_WORDS):
            state = "ok"
        elif "critical" in ev or "non-recoverable" in ev or any(w in ev for w in _PSU_BAD):
            state = "critical"
        elif "non-critical" in ev or "warning" in ev:
            state = "warning"
        elif ev in _UNKNOWN_WORDS:
            state = "unknown"
        else:
            state = "ok" if kind in ("psu", "redundancy") else "unknown"
        if kind == "psu":
            state = _psu_state(state, event)
        if kind == "redundancy" and any(w in ev for w in _REDUNDANCY_LOST):
            state = "critical"
        out.append(Sensor(name, kind, value, unit, state, event if value is None else ""))
    return out


def psus_from(sensors: Sequence[Sensor]) -> list[Psu]:
    """PSU status sensors (and PSU power sensors by name) grouped as PSUs."""
    psus: dict[str, Psu] = {}
    for s in sensors:
        if s.kind == "psu":
            psus[s.name] = Psu(s.name, s.state, text=s.text)
    return list(psus.values())


def redundancy_from(sensors: Sequence[Sensor]) -> Literal["ok", "lost"] | None:
    for s in sensors:
        if s.kind == "redundancy":
            if s.state == "critical":
                return "lost"
            low = s.text.lower()
            if "fully redundant" in low or s.state == "ok":
                return "ok"
    return None


def parse_dcmi_power(text: str) -> float | None:
    """Instantaneous watts from ``ipmitool dcmi power reading`` or freeipmi's ``ipmi-dcmi``.

    None when the BMC says the measurement is not available (or it reads 0 while
    deactivated: a deactivated meter's zero is not a reading).
    """
    current: float | None = None
    found = False
    active = True
    for line in text.splitlines():
        key, sep, val = line.partition(":")
        if not sep:
            continue
        k = key.strip().lower()
        v = val.strip()
        if k in ("instantaneous power reading", "current power"):
            found = True
            m = re.match(r"^(-?\d+(?:\.\d+)?)\s*watts?$", v, re.IGNORECASE)
            current = float(m.group(1)) if m else None
        elif k in ("power reading state is", "power measurement"):
            active = v.lower() in ("activated", "active", "available")
    if not found:
        raise ParseError("no instantaneous power reading in the DCMI output")
    if not active and current == 0:
        return None
    return current


def parse_power_state(text: str) -> Literal["on", "off"] | None:
    """``Chassis Power is on``, ``System Power : off``, freeipmi ``127.0.0.1: on``."""
    for line in text.splitlines():
        m = re.search(
            r"(?:chassis power is|system power\s*:|^[^:]+:)\s*(on|off)\s*$", line.strip(), re.I
        )
        if m:
            return "on" if m.group(1).lower() == "on" else "off"
    raise ParseError("no power state in the output")


def parse_chassis_status(text: str) -> dict[str, str]:
    """``ipmitool chassis status`` / ``ipmi-chassis --get-chassis-status`` as key -> value."""
    out = {}
    for line in text.splitlines():
        key, sep, val = line.partition(":")
        if sep and key.strip():
            out[key.strip()] = val.strip()
    if not out:
        raise ParseError("chassis status: no 'key : value' lines")
    return out


_SEL_CRIT = (
    "critical",
    "non-recoverable",
    "failure",
    "fault",
    "uncorrectable",
    "ac lost",
    "going high",
    "thermal trip",
)


def _sel_severity(text: str) -> Literal["ok", "warning", "critical"]:
    t = text.lower()
    if "deasserted" in t:
        return "ok"
    if "non-critical" in t:
        return "warning"
    if any(w in t for w in _SEL_CRIT):
        return "critical"
    return "ok"


def parse_sel(text: str) -> list[LogEvent]:
    """``ipmitool sel elist`` (``1 | date | time | sensor | event | Asserted``) or ``ipmi-sel``."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    if lines[0].lower().startswith("sel has no entries"):
        return []
    head = [c.strip().lower() for c in lines[0].split("|")]
    events: list[LogEvent] = []
    if head and head[0] == "id" and "event" in head:
        i_date, i_time, i_name = head.index("date"), head.index("time"), head.index("name")
        i_state = head.index("state") if "state" in head else None
        i_event = head.index("event")
        for lineno, line in enumerate(lines[1:], 2):
            cols = [c.strip() for c in line.split("|")]
            if len(cols) != len(head):
                raise ParseError(
                    f"ipmi-sel line {lineno}: {len(cols)} columns, expected {len(head)}"
                )
            state = cols[i_state].lower() if i_state is not None else ""
            sev: Literal["ok", "warning", "critical"]
            if state in ("critical",):
                sev = "critical"
            elif state == "warning":
                sev = "warning"
            elif state == "nominal":
                sev = "ok"
            else:
                sev = _sel_severity(cols[i_event])
            events.append(
                LogEvent(
                    cols[0],
                    f"{cols[i_date]} {cols[i_time]}",
                    sev,
                    f"{cols[i_name]}: {cols[i_event]}",
                )
            )
        return events
    for lineno, line in enumerate(lines, 1):
        cols = [c.strip() for c in line.split("|")]
        if len(cols) < 5:
            raise ParseError(f"sel line {lineno}: expected 5 or 6 columns, got {len(cols)}")
        msg = " ".join(c for c in cols[4:] if c)
        events.append(
            LogEvent(cols[0], f"{cols[1]} {cols[2]}", _sel_severity(msg), f"{cols[3]}: {msg}")
        )
    return events
