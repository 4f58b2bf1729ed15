"""The ``power.bmc`` collector: one poll of one node's BMC, by IPMI or Redfish.

Readings are about the node (target = node name). A BMC that does not answer
is itself the reading (``power.bmc_ok`` False, with why): that is what an
operator needs to see, and it drives the "BMC unreachable" alert. Each BMC
is a separate target of the poller, so one slow BMC never delays another.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from console.plugin import (
    CollectContext,
    CollectorSpec,
    ParseError,
    Reading,
    Target,
    fleet_collector,
)
from console.sources.config import uses_prometheus
from console.transports import TransportError
from plugins.power import parse_ipmi as pi
from plugins.power import parse_redfish as pr
from plugins.power.config import PowerConfig, SecretUnavailable, bmc_nodes, cfg
from plugins.power.ipmi import BmcRefused, run_ipmi
from plugins.power.model import BmcSnapshot, LogEvent, Psu, Sensor, redundancy_from_psus
from plugins.power.prom import collect_prom, prom_targets
from plugins.power.redfish import RedfishSession, redfish_session

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, Node
    from console.transports import Transports

log = logging.getLogger(__name__)

SEL_RECENT = 20


def bmc_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    if uses_prometheus(config):
        return []  # read from Prometheus instead: plugins.power.prom
    return [
        Target("node", n.name, node=n.name, attrs={"protocol": n.bmc.protocol})
        for n in bmc_nodes(inventory)
        if n.bmc is not None
    ]


# ---------------------------------------------------------------------- IPMI


async def read_ipmi(
    transports: Transports, inventory: Inventory, c: PowerConfig, node: Node
) -> BmcSnapshot:
    """Sensors, chassis status, DCMI power (when the BMC has it) and recent SEL."""
    notes: list[str] = []
    tool = c.tool_for(node.name)
    sdr = await run_ipmi(transports, inventory, c, node, "sdr")
    sensors = (
        pi.parse_freeipmi_sensors(sdr.stdout) if tool == "freeipmi" else pi.parse_sdr(sdr.stdout)
    )
    chassis = await run_ipmi(transports, inventory, c, node, "chassis")
    status = pi.parse_chassis_status(chassis.stdout)
    sp = status.get("System Power", "").lower()
    power_state = "on" if sp == "on" else "off" if sp == "off" else None
    power_w: float | None = None
    try:
        dcmi = await run_ipmi(transports, inventory, c, node, "dcmi")
        power_w = pi.parse_dcmi_power(dcmi.stdout)
    except (BmcRefused, ParseError) as exc:
        notes.append(f"no DCMI power reading ({exc})")
    if power_w is None:
        power_w = _power_from_sensors(sensors)
    events: list[LogEvent] = []
    try:
        extra = (
            ("last", str(c.sel_entries)) if tool == "ipmitool" else ("--tail", str(c.sel_entries))
        )
        sel = await run_ipmi(transports, inventory, c, node, "sel", extra=extra)
        events = pi.parse_sel(sel.stdout)
    except (BmcRefused, ParseError) as exc:
        notes.append(f"SEL not read ({exc})")
    psus = tuple(pi.psus_from(sensors))
    fans_fault = status.get("Cooling/Fan Fault", "").lower() == "true"
    if fans_fault and not any(s.kind == "fan" and s.state == "critical" for s in sensors):
        sensors.append(Sensor("Cooling/Fan Fault", "fan", None, "", "critical", "chassis status"))
    return BmcSnapshot(
        power_state=power_state,  # type: ignore[arg-type]
        inlet_c=_first(sensors, "inlet"),
        exhaust_c=_first(sensors, "exhaust"),
        power_w=power_w,
        sensors=tuple(sensors),
        psus=psus,
        redundancy=redundancy_from_psus(psus, pi.redundancy_from(sensors)),
        events=tuple(events[-c.sel_entries :]),
        notes=tuple(notes),
    )


def _first(sensors: Sequence[Sensor], kind: str) -> float | None:
    for s in sensors:
        if s.kind == kind and s.value is not None:
            return s.value
    return None


def _power_from_sensors(sensors: Sequence[Sensor]) -> float | None:
    """Without DCMI: a total/system power sensor, else the sum of PSU input sensors."""
    power = [s for s in sensors if s.kind == "power" and s.value is not None]
    for s in power:
        if any(
            w in s.name.lower()
            for w in ("total", "system", "consumption", "avg power", "sys power")
        ):
            return s.value
    psu = [s.value for s in power if s.value is not None]
    return sum(psu) if psu else None


# ---------------------------------------------------------------------- Redfish


async def read_redfish(
    transports: Transports, inventory: Inventory, c: PowerConfig, node: Node
) -> BmcSnapshot:
    async with redfish_session(transports, inventory, node, c) as rf:
        return await _read_redfish(rf)


async def system_uri(rf: RedfishSession) -> str:
    systems = pr.members(await rf.get("/redfish/v1/Systems"))
    if not systems:
        raise TransportError(f"{rf.node.name} BMC: no Systems member")
    return systems[0]


async def _read_redfish(rf: RedfishSession) -> BmcSnapshot:
    notes: list[str] = []
    system = pr.parse_system(await rf.get(await system_uri(rf)))
    chassis_list = pr.members(await rf.get("/redfish/v1/Chassis"))
    sensors: list[Sensor] = []
    psus: list[Psu] = []
    inlet = exhaust = power_w = None
    redundancy = None
    if chassis_list:
        ch = await rf.get(chassis_list[0])
        thermal_sub = await rf.try_get(pr.link(ch, "ThermalSubsystem"))
        if thermal_sub is not None:
            metrics = await rf.try_get(pr.link(thermal_sub, "ThermalMetrics"))
            if metrics is not None:
                inlet, exhaust = pr.parse_thermal_metrics(metrics)
            fans = await rf.try_get(pr.link(thermal_sub, "Fans"))
            for uri in pr.members(fans or {}):
                fan = await rf.try_get(uri)
                if fan is not None:
                    sensors.append(pr.parse_fan(fan))
        thermal = (
            await rf.try_get(pr.link(ch, "Thermal"))
            if thermal_sub is None or inlet is None
            else None
        )
        if thermal is not None:
            legacy = pr.parse_thermal(thermal)
            if not any(s.kind == "fan" for s in sensors):
                sensors += [s for s in legacy if s.kind == "fan"]
            sensors += [s for s in legacy if s.kind != "fan"]
            inlet = inlet if inlet is not None else _first(legacy, "inlet")
            exhaust = exhaust if exhaust is not None else _first(legacy, "exhaust")
        power_sub = await rf.try_get(pr.link(ch, "PowerSubsystem"))
        if power_sub is not None:
            redundancy = pr.parse_fan_redundancy(power_sub, "PowerSupplyRedundancy")
            supplies = await rf.try_get(pr.link(power_sub, "PowerSupplies"))
            for uri in pr.members(supplies or {}):
                psu = await rf.try_get(uri)
                if psu is not None:
                    metrics_psu = await rf.try_get(pr.link(psu, "Metrics"))
                    psus.append(pr.parse_power_supply(psu, metrics_psu))
        env = await rf.try_get(pr.link(ch, "EnvironmentMetrics"))
        if env is not None:
            power_w, _temp = pr.parse_environment_metrics(env)
        if power_sub is None or power_w is None:
            legacy_power = await rf.try_get(pr.link(ch, "Power"))
            if legacy_power is not None:
                watts, legacy_psus, red = pr.parse_power(legacy_power)
                power_w = power_w if power_w is not None else watts
                psus = psus or legacy_psus
                redundancy = redundancy or red
            elif power_sub is None:
                notes.append("the BMC has no Power or PowerSubsystem resource")
    events = await _redfish_log(rf, await system_uri(rf))
    return BmcSnapshot(
        power_state=system["power_state"],
        inlet_c=inlet,
        exhaust_c=exhaust,
        power_w=power_w,
        sensors=tuple(sensors),
        psus=tuple(psus),
        redundancy=redundancy_from_psus(tuple(psus), redundancy),
        events=events,
        identify=system["identify"],
        notes=tuple(notes),
    )


async def _redfish_log(rf: RedfishSession, system: str) -> tuple[LogEvent, ...]:
    services = await rf.try_get(system + "/LogServices")
    out: list[LogEvent] = []
    for uri in pr.members(services or {})[:2]:
        svc = await rf.try_get(uri)
        entries = await rf.try_get(pr.link(svc or {}, "Entries"))
        if entries is not None:
            out += pr.parse_log_entries(entries)
    return tuple(out[-SEL_RECENT:])


# ---------------------------------------------------------------------- readings


async def read_bmc(
    transports: Transports, inventory: Inventory, c: PowerConfig, node: Node
) -> BmcSnapshot:
    assert node.bmc is not None
    if node.bmc.protocol == "ipmi":
        return await read_ipmi(transports, inventory, c, node)
    return await read_redfish(transports, inventory, c, node)


def readings_of(node: str, snap: BmcSnapshot, source: str, elapsed: float) -> list[Reading]:
    now = time.time()
    failed_fans = snap.fans_failed
    failed_psus = snap.psus_failed
    crit = [e for e in snap.events if e.severity == "critical"]
    values: list[tuple[str, Any, str]] = [
        ("power.bmc_ok", True, f"{elapsed * 1000:.0f} ms"),
        ("power.state", snap.power_state, ""),
        ("power.inlet_c", snap.inlet_c, ""),
        ("power.exhaust_c", snap.exhaust_c, ""),
        ("power.power_w", snap.power_w, ""),
        ("power.fans", len(snap.fans) if snap.fans else None, ""),
        # No fan (PSU) known: how many failed is unknown too, not 0.
        (
            "power.fans_failed",
            len(failed_fans) if snap.fans else None,
            ", ".join(f.name for f in failed_fans),
        ),
        (
            "power.psus",
            len([p for p in snap.psus if p.state != "absent"]) if snap.psus else None,
            "",
        ),
        (
            "power.psus_failed",
            len(failed_psus) if snap.psus else None,
            ", ".join(p.name for p in failed_psus),
        ),
        ("power.redundancy", snap.redundancy, ""),
        ("power.sel_critical", len(crit), crit[-1].message if crit else ""),
        ("power.identify", snap.identify, ""),
        ("power.sensors", sensor_table(snap), "; ".join(snap.notes)),
        ("power.sel", sel_table(snap), ""),
    ]
    return [Reading(node, m, v, ts=now, source=source, detail=d, node=node) for m, v, d in values]


SEL_ON_CARD = 5


def sensor_table(snap: BmcSnapshot) -> str | None:
    """Every sensor and PSU as JSON rows ``[name, value, unit, state, text]`` for the card.

    One string reading (the Store keeps scalars); None when the BMC listed none.
    """
    rows: list[list[Any]] = [[s.name, s.value, s.unit, s.state, s.text] for s in snap.sensors]
    rows += [
        [p.name, p.input_w, "W" if p.input_w is not None else "", p.state, p.text]
        for p in snap.psus
    ]
    return json.dumps(rows, ensure_ascii=False) if rows else None


def sel_table(snap: BmcSnapshot) -> str | None:
    """The last few SEL/log entries as JSON rows ``[when, severity, message]``."""
    rows = [[e.when, e.severity, e.message] for e in snap.events[-SEL_ON_CARD:]]
    return json.dumps(rows, ensure_ascii=False) if snap.events else None


async def collect_bmc(ctx: CollectContext, target: Target) -> Sequence[Reading]:
    node = ctx.inventory.nodes.get(target.name)
    if node is None or node.bmc is None:
        raise LookupError(f"{target.name}: no BMC in the inventory")
    c = cfg(ctx.config)
    started = time.monotonic()
    source = node.bmc.protocol
    try:
        snap = await read_bmc(ctx.transports, ctx.inventory, c, node)
    except (TransportError, SecretUnavailable, LookupError, ParseError) as exc:
        # The BMC's silence (or refusal) is the observation.
        return [
            Reading(
                node.name, "power.bmc_ok", False, source=source, detail=str(exc), node=node.name
            )
        ]
    return readings_of(node.name, snap, source, time.monotonic() - started)


COLLECTORS = (
    CollectorSpec(
        id="power.bmc",
        targets=bmc_targets,
        collect=collect_bmc,
        interval=15.0,
        timeout=45.0,
        label="BMC sensors, power and SEL (IPMI / Redfish)",
    ),
    fleet_collector(
        "power.prom",
        prom_targets,
        collect_prom,
        interval=15.0,
        timeout=30.0,
        label="BMC sensors and power from Prometheus (ipmi_exporter), one query per family",
    ),
)
