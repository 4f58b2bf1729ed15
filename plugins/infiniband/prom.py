"""HCA ports from Prometheus: node_exporter's ``node_infiniband_*`` -> the same port readings.

node_exporter's infiniband collector reads the same sysfs files the direct
path reads (``/sys/class/infiniband/<device>/ports/<port>/...``): ``state_id``
(1 down, 2 init, 3 armed, 4 active, 5 active defer), ``physical_state_id`` (1
sleep, 2 polling, 3 disabled, 4 training, 5 link up, 6 link error recovery, 7
phy test), ``rate_bytes_per_second`` and the counters as ``*_total`` (data in
octets, i.e. the sysfs value times 4). One instant query per family per refresh
for the fleet plus ``timestamp(node_infiniband_state_id)``; rates per minute go
through the same ``CounterTracker`` as the direct path, so alerts judge alike.
Not exported, so unknown here: width, speed name, link layer and LID.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from console.plugin import Absent, CollectContext, FleetResult, Reading, Target, fleet_collector
from console.sources.config import prom_client, uses_prometheus
from console.sources.fleet import (
    LIVE,
    Frame,
    NodeMatcher,
    PromPlan,
    fetch,
    group,
    liveness,
    no_series,
    no_series_error,
)
from plugins.infiniband.collect import port_target, tracker
from plugins.infiniband.config import InfinibandConfig, as_config, ib_nodes
from plugins.infiniband.health import SEVERITY_WORD, CounterTracker, judge, worst
from plugins.infiniband.parse import ERROR_COUNTERS

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory

STATES = {0: None, 1: "DOWN", 2: "INIT", 3: "ARMED", 4: "ACTIVE", 5: "ACTIVE_DEFER"}
PHYS = {
    0: None,
    1: "Sleep",
    2: "Polling",
    3: "Disabled",
    4: "PortConfigurationTraining",
    5: "LinkUp",
    6: "LinkErrorRecovery",
    7: "Phy Test",
}
#: sysfs counter name (the plugin's) -> node_exporter family
COUNTERS: dict[str, str] = {
    "symbol_error": "node_infiniband_symbol_error_total",
    "link_error_recovery": "node_infiniband_link_error_recovery_total",
    "link_downed": "node_infiniband_link_downed_total",
    "port_rcv_errors": "node_infiniband_port_errors_received_total",
    "port_rcv_remote_physical_errors": "node_infiniband_port_receive_remote_physical_errors_total",
    "port_xmit_discards": "node_infiniband_port_discards_transmitted_total",
    "excessive_buffer_overrun_errors": "node_infiniband_excessive_buffer_overrun_errors_total",
    "local_link_integrity_errors": "node_infiniband_local_link_integrity_errors_total",
}
DATA = {
    "port_xmit_data": ("node_infiniband_port_data_transmitted_bytes_total", "xmit_gbps"),
    "port_rcv_data": ("node_infiniband_port_data_received_bytes_total", "rcv_gbps"),
}
STATE = "node_infiniband_state_id"
PHYS_STATE = "node_infiniband_physical_state_id"
RATE = "node_infiniband_rate_bytes_per_second"
KEYS = ("device", "port")

PLAN = PromPlan(
    exporter="node",
    families={
        name: name
        for name in (STATE, PHYS_STATE, RATE, *COUNTERS.values(), *(f for f, _ in DATA.values()))
    },
    liveness=STATE,
)
PORT_METRICS = (
    "infiniband.state",
    "infiniband.phys_state",
    "infiniband.rate_gbps",
    "infiniband.health",
    "infiniband.xmit_gbps",
    "infiniband.rcv_gbps",
    *(f"infiniband.err.{c}" for c in ERROR_COUNTERS),
    *(f"infiniband.rate.{c}" for c in ERROR_COUNTERS),
)
NODE_METRICS = ("infiniband.ports_found", "infiniband.ports_active")


def prom_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    c = as_config(config)
    if not uses_prometheus(c):
        return []
    return [
        Target("node", n.name, node=n.name, attrs={"interval": c.prometheus_interval})
        for n in ib_nodes(inventory)
    ]


def _int(v: float | None) -> int | None:
    return None if v is None else int(v)


def port_values(
    key: tuple[str, ...],
    values: Mapping[str, Mapping[tuple[str, ...], float | None]],
    cfg: InfinibandConfig,
    expected_gbps: float | None,
    now: float,
    counters: CounterTracker,
) -> tuple[dict[str, Any], str]:
    """One port's readings (metric -> value) and the health detail, from its series."""
    node, device, port = key
    target = port_target(node, f"{device}/{port}")
    state = values[STATE].get(key)
    phys = values[PHYS_STATE].get(key)
    rate = values[RATE].get(key)
    out: dict[str, Any] = {
        "infiniband.state": None if state is None else STATES.get(int(state), f"STATE_{state:g}"),
        "infiniband.phys_state": None if phys is None else PHYS.get(int(phys), f"{phys:g}"),
        "infiniband.rate_gbps": None if rate is None else round(rate * 8 / 1e9, 3),
    }
    events: list[str] = []
    for counter in ERROR_COUNTERS:
        family = COUNTERS.get(counter)
        total = _int(values[family].get(key)) if family else None
        step = counters.update(target, counter, total, now)
        out[f"infiniband.err.{counter}"] = total
        out[f"infiniband.rate.{counter}"] = (
            round(step.rate_per_min, 4) if step.rate_per_min is not None else None
        )
        if step.event:
            events.append(f"{counter} {step.event}")
    for counter, (family, metric) in DATA.items():
        octets = values[family].get(key)
        raw = None if octets is None else int(octets) // 4  # back to the sysfs unit
        gbps = counters.throughput_gbps(target, counter, raw, now)
        out[f"infiniband.{metric}"] = round(gbps, 3) if gbps is not None else None
    problems = judge(out, cfg, expected_gbps)
    out["infiniband.health"] = SEVERITY_WORD[worst(problems)]
    if events:
        out["infiniband.counter_events"] = ", ".join(events)
    return out, "; ".join(p.text for p in problems)


def map_node_exporter(
    frame: Frame,
    inventory: Inventory,
    targets: Sequence[Target],
    cfg: InfinibandConfig,
    *,
    stale_after: float,
    now: float | None = None,
    counters: CounterTracker | None = None,
) -> FleetResult:
    """Every target node's port readings from one refresh (pure but for the rate tracker)."""
    now = time.time() if now is None else now
    counters = counters if counters is not None else CounterTracker(cfg.rate_window_s)
    wanted = [t.name for t in targets]
    matcher = NodeMatcher(inventory, PLAN.exporter, (), wanted)
    live, _ = liveness(frame.family(LIVE), matcher, KEYS)
    values = {name: group(frame.family(name), matcher, KEYS)[0] for name in PLAN.families}
    for name in (STATE, PHYS_STATE, RATE):
        for key in values[name]:
            live.setdefault(key, (frame.at, {}))  # present, not dated by liveness: now
    out: list[Reading] = []
    absent: list[Absent] = []
    errors: dict[str, str] = {}
    per_node: dict[str, dict[tuple[str, ...], tuple[float, Mapping[str, str]]]] = {}
    for key, dated in live.items():
        per_node.setdefault(key[0], {})[key] = dated
    for node_name in wanted:
        node = inventory.nodes.get(node_name)
        mine = per_node.get(node_name, {})
        fresh = {k: v for k, v in mine.items() if now - v[0] <= stale_after}
        for key, (ts, _labels) in mine.items():
            if key not in fresh:
                target = port_target(node_name, f"{key[1]}/{key[2]}")
                absent.append(
                    Absent(target, PORT_METRICS, "stale in Prometheus", ts, node_name, "prometheus")
                )
        if not fresh:
            last = max((v[0] for v in mine.values()), default=None)
            errors[node_name] = no_series_error("node_exporter (infiniband)", node_name)
            absent.append(no_series(node_name, NODE_METRICS, last, node_name))
            continue
        expected = (
            float(node.hardware.ib_rate_gbps) if node and node.hardware.ib_rate_gbps else None
        )
        active = 0
        for key, (ts, _labels) in sorted(fresh.items()):
            row, detail = port_values(key, values, cfg, expected, ts, counters)
            active += row["infiniband.state"] == "ACTIVE"
            target = port_target(node_name, f"{key[1]}/{key[2]}")
            out += [
                Reading(
                    target,
                    m,
                    v,
                    ts=ts,
                    source="prometheus",
                    detail=detail if m == "infiniband.health" else "",
                    node=node_name,
                )
                for m, v in row.items()
            ]
        ts = max(v[0] for v in fresh.values())
        out += [
            Reading(node_name, "infiniband.ports_found", len(fresh), ts=ts, source="prometheus"),
            Reading(node_name, "infiniband.ports_active", active, ts=ts, source="prometheus"),
            Reading(
                node_name,
                "infiniband.ports_expected",
                node.hardware.ib_ports if node else None,
                ts=ts,
                source="prometheus",
            ),
            Reading(node_name, "infiniband.tool_error", None, ts=ts, source="prometheus"),
        ]
    return FleetResult(out, absent, errors)


async def collect_prom(ctx: CollectContext, targets: Sequence[Target]) -> FleetResult:
    """One refresh of every HCA port from Prometheus (one query per node_exporter family)."""
    cfg = as_config(ctx.config)
    frame = await fetch(prom_client(ctx), PLAN)
    counters = tracker(ctx, "prometheus", cfg.rate_window_s)
    return map_node_exporter(
        frame, ctx.inventory, targets, cfg, stale_after=cfg.stale_after_s, counters=counters
    )


PROM_COLLECTOR = fleet_collector(
    "infiniband.prom",
    prom_targets,
    collect_prom,
    interval=15.0,
    timeout=30.0,
    label="IB/RoCE ports from Prometheus (node_exporter), one query per family",
)
