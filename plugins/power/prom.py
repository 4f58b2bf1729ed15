"""Power and thermal from Prometheus: ipmi_exporter's series -> the same readings as a BMC poll.

One instant query per ``ipmi_*`` family per refresh for the fleet, plus
``timestamp(ipmi_up)`` (dates each BMC's last scrape). ipmi_exporter's sensor
states are 0 nominal, 1 warning, 2 critical (NaN: not readable); a sensor's
kind (inlet, exhaust, fan, PSU) is read from its name as for ``ipmitool sdr``
(``plugins.power.parse_ipmi.classify``). ``ipmi_up == 0`` for a collector is the
BMC not answering (``power.bmc_ok`` False, like a direct poll that failed).

A series maps to a node by ``console.sources.fleet.NodeMatcher``: the exporter's
``instance`` is the BMC address in ipmi_exporter's multi-target mode (matched to
the node's ``bmc.address``) or the node itself in local mode, or what the node
group declares under ``exporters.ipmi``. Not exported (so unknown here): the
identify LED and the SEL entries' texts (their count by state is).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from console.plugin import Absent, CollectContext, FleetResult, Reading, Target
from console.sources.config import prom_client, uses_prometheus
from console.sources.fleet import (
    LIVE,
    NO_SERIES,
    Frame,
    NodeMatcher,
    PromPlan,
    fetch,
    no_series_error,
)
from console.transports.prometheus import Sample
from plugins.power.config import bmc_nodes, cfg
from plugins.power.model import Psu, Sensor, redundancy_from_psus
from plugins.power.parse_ipmi import classify

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory

STATE = {0: "ok", 1: "warning", 2: "critical"}
#: value family -> (its state family, unit, what classify() is told the unit is)
SENSORS: dict[str, tuple[str, str, str]] = {
    "ipmi_temperature_celsius": ("ipmi_temperature_state", "°C", "degrees C"),
    "ipmi_fan_speed_rpm": ("ipmi_fan_speed_state", "RPM", "RPM"),
    "ipmi_power_watts": ("ipmi_power_state", "W", "Watts"),
    "ipmi_voltage_volts": ("ipmi_voltage_state", "V", "Volts"),
    "ipmi_current_amperes": ("ipmi_current_state", "A", "Amps"),
}
PSU_TYPES = "Power Supply|Power Unit"
METRICS = (
    "power.bmc_ok",
    "power.state",
    "power.inlet_c",
    "power.exhaust_c",
    "power.power_w",
    "power.fans",
    "power.fans_failed",
    "power.psus",
    "power.psus_failed",
    "power.redundancy",
    "power.sel_critical",
    "power.identify",
    "power.sensors",
    "power.sel",
)

PLAN = PromPlan(
    exporter="ipmi",
    families={
        "ipmi_up": "ipmi_up",
        "ipmi_chassis_power_state": "ipmi_chassis_power_state",
        "ipmi_dcmi_power_consumption_watts": "ipmi_dcmi_power_consumption_watts",
        **{name: name for name in SENSORS},
        **{state: state for state, _, _ in SENSORS.values()},
        "ipmi_sensor_state": f'ipmi_sensor_state{{type=~"{PSU_TYPES}"}}',
        "ipmi_sel_events_count_by_state": "ipmi_sel_events_count_by_state",
    },
    liveness="ipmi_up",
    history={
        "power.power_w": "max by (instance) (ipmi_dcmi_power_consumption_watts)",
    },
)


def prom_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    if not uses_prometheus(config):
        return []
    interval = cfg(config).prometheus_interval
    return [
        Target("node", n.name, node=n.name, attrs={"interval": interval})
        for n in bmc_nodes(inventory)
    ]


def _by_node(samples: Sequence[Sample], matcher: NodeMatcher) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for s in samples:
        node = matcher.node_of(s.labels)
        if node is not None:
            out.setdefault(node, []).append(s)
    return out


def _state(v: float | None) -> str:
    return "unknown" if v is None else STATE.get(int(v), "unknown")


def sensors_of(node_families: Mapping[str, list[Sample]]) -> tuple[list[Sensor], list[Psu]]:
    """Sensors (temperature, fan, power, voltage, current) and PSUs of one node."""
    sensors: list[Sensor] = []
    for family, (state_family, unit, ipmi_unit) in SENSORS.items():
        states = {
            (s.labels.get("id", ""), s.labels.get("name", "")): s.value
            for s in node_families.get(state_family, [])
        }
        for s in node_families.get(family, []):
            name = s.labels.get("name", "") or s.labels.get("id", "?")
            state = _state(states.get((s.labels.get("id", ""), s.labels.get("name", ""))))
            kind = classify(name, ipmi_unit)
            sensors.append(Sensor(name, kind, s.value, unit, state))  # type: ignore[arg-type]
    psus: list[Psu] = []
    for s in node_families.get("ipmi_sensor_state", []):
        name = s.labels.get("name", "") or "PSU"
        if "redundan" in name.lower() or s.labels.get("type") not in PSU_TYPES.split("|"):
            continue
        psus.append(Psu(name, _state(s.value)))  # type: ignore[arg-type]
    return sensors, psus


def _first(sensors: Sequence[Sensor], kind: str) -> float | None:
    return next((s.value for s in sensors if s.kind == kind and s.value is not None), None)


def _power(sensors: Sequence[Sensor], dcmi: float | None) -> float | None:
    if dcmi is not None:
        return dcmi
    power = [s for s in sensors if s.kind == "power" and s.value is not None]
    for s in power:
        if any(w in s.name.lower() for w in ("total", "system", "consumption", "sys power")):
            return s.value
    values = [s.value for s in power if s.value is not None]
    return sum(values) if values else None


def node_readings(node: str, fams: Mapping[str, list[Sample]], ts: float) -> list[Reading]:
    """One BMC's readings from its series (the families of this node only)."""
    up = {s.labels.get("collector", "?"): s.value for s in fams.get("ipmi_up", [])}
    down = sorted(c for c, v in up.items() if v != 1)
    bmc_ok: bool | None = True if up else None  # without ipmi_up, not known
    if up and len(down) == len(up):
        why = "ipmi_exporter could not reach the BMC (ipmi_up 0: " + ", ".join(down) + ")"
        return [Reading(node, "power.bmc_ok", False, ts=ts, source="prometheus", detail=why)]
    sensors, psus = sensors_of(fams)
    chassis = [s.value for s in fams.get("ipmi_chassis_power_state", []) if s.value is not None]
    dcmi = [s.value for s in fams.get("ipmi_dcmi_power_consumption_watts", [])]
    sel = {
        s.labels.get("state", ""): s.value for s in fams.get("ipmi_sel_events_count_by_state", [])
    }
    fans = [s for s in sensors if s.kind == "fan"]
    failed_fans = [s for s in fans if s.state == "critical"]
    failed_psus = [p for p in psus if p.state == "critical"]
    rows = [[s.name, s.value, s.unit, s.state, s.text] for s in sensors]
    rows += [[p.name, p.input_w, "", p.state, p.text] for p in psus]
    values: list[tuple[str, Any, str]] = [
        ("power.bmc_ok", bmc_ok, f"collectors down: {', '.join(down)}" if down else ""),
        ("power.state", ("on" if chassis[0] else "off") if chassis else None, ""),
        ("power.inlet_c", _first(sensors, "inlet"), ""),
        ("power.exhaust_c", _first(sensors, "exhaust"), ""),
        ("power.power_w", _power(sensors, dcmi[0] if dcmi else None), ""),
        ("power.fans", len(fans) if fans else None, ""),
        (
            "power.fans_failed",
            len(failed_fans) if fans else None,
            ", ".join(f.name for f in failed_fans),
        ),
        ("power.psus", len([p for p in psus if p.state != "absent"]) if psus else None, ""),
        (
            "power.psus_failed",
            len(failed_psus) if psus else None,
            ", ".join(p.name for p in failed_psus),
        ),
        ("power.redundancy", redundancy_from_psus(tuple(psus), None), ""),
        ("power.sel_critical", int(sel.get("Critical") or 0) if sel else None, ""),
        ("power.identify", None, "not exported by ipmi_exporter"),
        ("power.sensors", json.dumps(rows, ensure_ascii=False) if rows else None, ""),
        ("power.sel", None, "SEL entries are not exported (their counts are)"),
    ]
    return [
        Reading(node, m, v, ts=ts, source="prometheus", detail=d, node=node) for m, v, d in values
    ]


def map_ipmi(
    frame: Frame,
    inventory: Inventory,
    targets: Sequence[Target],
    *,
    stale_after: float,
    now: float | None = None,
) -> FleetResult:
    """Every target node's readings from one refresh (pure)."""
    now = time.time() if now is None else now
    wanted = [t.name for t in targets]
    matcher = NodeMatcher(inventory, PLAN.exporter, (), wanted)
    live: dict[str, float] = {}
    for s in frame.family(LIVE):
        node = matcher.node_of(s.labels)
        if node is not None and s.value is not None:
            live[node] = max(live.get(node, 0.0), s.value)
    per_family = {key: _by_node(frame.family(key), matcher) for key in PLAN.families}
    for nodes in per_family.values():
        for node in nodes:
            live.setdefault(node, frame.at)  # present, not dated by the liveness query: now
    out: list[Reading] = []
    for metric, series in frame.history.items():
        for labels, points in series:
            node = matcher.node_of(labels)
            if node is not None:
                out += [
                    Reading(node, metric, v, ts=t, source="prometheus", node=node)
                    for t, v in points
                ]
    out.sort(key=lambda r: r.ts)
    absent: list[Absent] = []
    errors: dict[str, str] = {}
    for node in wanted:
        ts = live.get(node)
        if ts is None or now - ts > stale_after:
            why = "stale in Prometheus" if ts is not None else NO_SERIES
            errors[node] = no_series_error("ipmi_exporter", node)
            absent.append(Absent(node, METRICS, why, ts, node, "prometheus"))
            continue
        fams = {key: per_family[key].get(node, []) for key in PLAN.families}
        out += node_readings(node, fams, ts)
    return FleetResult(out, absent, errors)


async def collect_prom(ctx: CollectContext, targets: Sequence[Target]) -> FleetResult:
    """One refresh of every BMC from Prometheus (one query per ipmi_exporter family)."""
    c = cfg(ctx.config)
    frame = await fetch(
        prom_client(ctx),
        PLAN,
        backfill=(ctx.transports, "power.prom", c.prometheus_interval, c.backfill_points),
    )
    return map_ipmi(frame, ctx.inventory, targets, stale_after=c.stale_after_s)
