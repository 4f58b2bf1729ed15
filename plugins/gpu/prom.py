"""GPUs from Prometheus: dcgm-exporter's ``DCGM_FI_*`` series -> the same readings as SSH.

One instant query per DCGM field per refresh for the whole fleet, aggregated on
the server to one series per GPU (``max by (instance, Hostname, gpu)``: MIG
instances fold into their GPU, the long labels stay behind), plus
``timestamp(DCGM_FI_DEV_GPU_TEMP)``, whose answer dates each GPU's last sample
and carries its labels (``UUID``, ``modelName``, ``pci_bus_id``,
``DCGM_FI_DRIVER_VERSION``, MIG's ``GPU_I_ID``). A series maps to a node by
``console.sources.fleet.NodeMatcher`` (``Hostname`` is dcgm-exporter's host label).

A GPU the inventory expects (``hardware.gpu_count``) with no current series is
*absent*: its readings become unknown with the age of its last sample, never 0;
a node without any is failing ("no series ...").
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from console.plugin import Absent, CollectContext, FleetResult, Reading, Target
from console.sources.config import prom_client, uses_prometheus
from console.sources.fleet import (
    LIVE,
    Frame,
    NodeMatcher,
    PromPlan,
    by,
    date_absent,
    fetch,
    group,
    liveness,
    no_series,
    no_series_error,
    remember,
    selector,
)
from plugins.gpu.config import cfg, expected_versions, gpu_nodes, gpu_target
from plugins.gpu.model import throttle_names

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory

KEYS = ("instance", "Hostname", "gpu")
HOST_LABELS = ("Hostname",)
LIVENESS = "DCGM_FI_DEV_GPU_TEMP"
"""Reported for every GPU, MIG or not (utilisation is not, under MIG)."""
THROTTLE = "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"
THROTTLE_NEW = "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"
"""The same bitmask under its DCGM 3.3+ name."""

#: DCGM field -> (Store metric, how to turn the value).
FIELDS: dict[str, tuple[str, str]] = {
    "DCGM_FI_DEV_GPU_UTIL": ("gpu.util_pct", "float"),
    "DCGM_FI_DEV_FB_USED": ("gpu.mem_used_mib", "float"),
    "DCGM_FI_DEV_FB_FREE": ("", "float"),
    "DCGM_FI_DEV_FB_RESERVED": ("", "float"),
    "DCGM_FI_DEV_GPU_TEMP": ("gpu.temp_c", "float"),
    "DCGM_FI_DEV_POWER_USAGE": ("gpu.power_w", "float"),
    "DCGM_FI_DEV_POWER_MGMT_LIMIT": ("gpu.power_limit_w", "float"),
    "DCGM_FI_DEV_SM_CLOCK": ("gpu.sm_clock_mhz", "float"),
    "DCGM_FI_DEV_FAN_SPEED": ("gpu.fan_pct", "float"),
    "DCGM_FI_DEV_PSTATE": ("gpu.pstate", "pstate"),
    "DCGM_FI_DEV_XID_ERRORS": ("gpu.xid_last", "xid"),
    "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": ("gpu.ecc_unc_volatile", "int"),
    "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL": ("gpu.ecc_corr_volatile", "int"),
    "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL": ("gpu.ecc_unc_aggregate", "int"),
    "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL": ("gpu.ecc_corr_aggregate", "int"),
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS": ("gpu.remap_unc", "int"),
    "DCGM_FI_DEV_ROW_REMAP_PENDING": ("gpu.remap_pending", "bool"),
    "DCGM_FI_DEV_ROW_REMAP_FAILURE": ("gpu.remap_failure", "bool"),
    THROTTLE: ("gpu.throttle", "throttle"),
}

GPU_METRICS: tuple[str, ...] = (
    "gpu.state",
    *(m for m, _ in FIELDS.values() if m),
    "gpu.mem_total_mib",
    "gpu.mem_pct",
    "gpu.mig_current",
)
"""What an absent GPU's readings become unknown for."""
NODE_METRICS = ("gpu.smi", "gpu.count", "gpu.driver")


def _family_expr(name: str) -> str:
    if name == THROTTLE:
        return by(f'{{__name__=~"{THROTTLE}|{THROTTLE_NEW}"}}', KEYS)
    return by(name, KEYS)


PLAN = PromPlan(
    exporter="dcgm",
    families={name: _family_expr(name) for name in FIELDS},
    liveness=LIVENESS,
    history={"gpu.util_pct": by("DCGM_FI_DEV_GPU_UTIL", KEYS)},
)
ALIASES = {THROTTLE: (THROTTLE_NEW,)}
"""Family key -> other metric names answering it (for reading an exposition directly)."""


def prom_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    """GPU nodes, when the inventory says the gpu plugin reads Prometheus."""
    if not uses_prometheus(config):
        return []
    interval = cfg(config).prometheus_interval
    return [
        Target("node", n.name, node=n.name, attrs={"interval": interval})
        for n in gpu_nodes(inventory)
    ]


DCGM_BLANK = float(0x7FFFFFF0)
"""DCGM's sentinels (blank, not found, not supported, no permission) are the top of the
int32/int64 ranges and 2**47 for doubles; dcgm-exporter passes them through as numbers
(the README's ``DCGM_FI_DEV_MEMORY_TEMP ... 9223372036854775794``). No field read here
is legitimately that large, so anything from there up is unknown."""


def dcgm_value(value: float | None) -> float | None:
    return None if value is None or value >= DCGM_BLANK else value


def _convert(value: float | None, how: str) -> Any:
    value = dcgm_value(value)
    if value is None:
        return None
    if how == "int":
        return int(value)
    if how == "bool":
        return value != 0
    if how == "pstate":
        return f"P{int(value)}"
    if how == "xid":
        return int(value) or None  # 0: no XID since the exporter started
    if how == "throttle":
        names = throttle_names(int(value))
        return None if names is None else ",".join(names)
    return float(value)


def map_dcgm(
    frame: Frame,
    inventory: Inventory,
    targets: Sequence[Target],
    *,
    stale_after: float,
    now: float | None = None,
) -> FleetResult:
    """The readings of every target node from one refresh (pure; see the module docstring)."""
    now = time.time() if now is None else now
    config = cfg(inventory.plugin_configs.get("gpu"))
    wanted = [t.name for t in targets]
    matcher = NodeMatcher(inventory, PLAN.exporter, HOST_LABELS, wanted)
    live, unmatched = liveness(frame.family(LIVE), matcher, ("gpu",))
    values: dict[str, dict[tuple[str, ...], float | None]] = {}
    for name in FIELDS:
        values[name], _ = group(frame.family(name), matcher, ("gpu",))
        for key in values[name]:
            # Present in some family but not dated by the liveness query: now.
            live.setdefault(key, (frame.at, {}))
    frame.unmatched = unmatched
    out: list[Reading] = list(_history(frame, matcher))
    absent: list[Absent] = []
    errors: dict[str, str] = {}
    per_node: dict[str, dict[str, tuple[float, Mapping[str, str]]]] = {}
    for key, dated in live.items():
        per_node.setdefault(key[0], {})[key[1]] = dated
    for node_name in wanted:
        node = inventory.nodes.get(node_name)
        mine = per_node.get(node_name, {})
        fresh = {g: v for g, v in mine.items() if now - v[0] <= stale_after}
        expected = {str(i) for i in range(node.hardware.gpu_count)} if node else set()
        for gpu in sorted(expected | set(mine), key=_index):
            if gpu in fresh or not gpu.isdigit():
                continue
            last = mine[gpu][0] if gpu in mine else None
            why = "stale in Prometheus" if gpu in mine else "no series in Prometheus"
            absent.append(
                Absent(
                    gpu_target(node_name, int(gpu)),
                    GPU_METRICS,
                    why,
                    last,
                    node_name,
                    "prometheus",
                )
            )
        if not fresh:
            last = max((v[0] for v in mine.values()), default=None)
            errors[node_name] = no_series_error("dcgm-exporter", node_name)
            absent.append(no_series(node_name, NODE_METRICS, last, node_name))
            continue
        out += _node_readings(node_name, fresh, values, config, inventory)
    return FleetResult(out, absent, errors)


def _index(gpu: str) -> tuple[int, str]:
    return (int(gpu), "") if gpu.isdigit() else (1 << 30, gpu)


def _node_readings(
    node: str,
    fresh: Mapping[str, tuple[float, Mapping[str, str]]],
    values: Mapping[str, Mapping[tuple[str, ...], float | None]],
    config: Any,
    inventory: Inventory,
) -> list[Reading]:
    out: list[Reading] = []
    drivers: set[str] = set()
    for gpu, (ts, labels) in sorted(fresh.items(), key=lambda kv: _index(kv[0])):
        if not gpu.isdigit():
            continue
        target = gpu_target(node, int(gpu))
        row: dict[str, Any] = {"gpu.state": "ok"}
        for name, (metric, how) in FIELDS.items():
            if metric:
                row[metric] = _convert(values[name].get((node, gpu)), how)
        used = dcgm_value(values["DCGM_FI_DEV_FB_USED"].get((node, gpu)))
        free = dcgm_value(values["DCGM_FI_DEV_FB_FREE"].get((node, gpu)))
        reserved = dcgm_value(values["DCGM_FI_DEV_FB_RESERVED"].get((node, gpu))) or 0.0
        total = used + free + reserved if used is not None and free is not None else None
        row["gpu.mem_total_mib"] = total
        row["gpu.mem_pct"] = round(100.0 * used / total, 1) if used is not None and total else None
        # dcgm-exporter labels MIG devices' series with GPU_I_ID; a GPU without any is not in MIG.
        row["gpu.mig_current"] = "GPU_I_ID" in labels
        if labels.get("modelName"):
            row["gpu.name"] = labels["modelName"]
        if labels.get("UUID"):
            row["gpu.uuid"] = labels["UUID"]
        if labels.get("pci_bus_id"):
            row["gpu.bus"] = labels["pci_bus_id"]
        if labels.get("DCGM_FI_DRIVER_VERSION"):
            drivers.add(labels["DCGM_FI_DRIVER_VERSION"])
        out += [
            Reading(target, m, v, ts=ts, source="prometheus", node=node) for m, v in row.items()
        ]
    ts = max(v[0] for v in fresh.values())
    driver = sorted(drivers)[0] if len(drivers) == 1 else None
    n = inventory.nodes.get(node)
    exp_driver, exp_cuda = expected_versions(n, config) if n is not None else (None, None)
    out += [
        Reading(node, "gpu.smi", "ok", ts=ts, source="prometheus"),
        Reading(
            node, "gpu.count", sum(1 for g in fresh if g.isdigit()), ts=ts, source="prometheus"
        ),
        Reading(node, "gpu.driver", driver, ts=ts, source="prometheus"),
        Reading(node, "gpu.expected_driver", exp_driver, ts=ts, source="inventory"),
        Reading(node, "gpu.expected_cuda", exp_cuda, ts=ts, source="inventory"),
    ]
    return out


def _history(frame: Frame, matcher: NodeMatcher) -> list[Reading]:
    """Backfilled points (query_range), oldest first, so the Store's rings fill in order."""
    out: list[Reading] = []
    for metric, series in frame.history.items():
        for labels, points in series:
            node = matcher.node_of(labels)
            gpu = labels.get("gpu", "")
            if node is None or not gpu.isdigit():
                continue
            target = gpu_target(node, int(gpu))
            out += [
                Reading(target, metric, v, ts=ts, source="prometheus", node=node)
                for ts, v in points
            ]
    out.sort(key=lambda r: r.ts)
    return out


def _target_of(node: str, labels: Mapping[str, str]) -> str | None:
    gpu = labels.get("gpu", "")
    return gpu_target(node, int(gpu)) if gpu.isdigit() else None


async def collect_prom(ctx: CollectContext, targets: Sequence[Target]) -> FleetResult:
    """One refresh of every GPU node from Prometheus (one query per DCGM field).

    What went absent before this console saw it is dated with one more query per node
    (its raw samples over 10 minutes), once.
    """
    c = cfg(ctx.config)
    client = prom_client(ctx)
    frame = await fetch(
        client,
        PLAN,
        backfill=(ctx.transports, "gpu.prom", c.prometheus_interval, c.backfill_points),
    )
    result = map_dcgm(frame, ctx.inventory, targets, stale_after=c.stale_after_s)
    seen = {r.target: r.ts for r in result.readings if r.metric in ("gpu.state", "gpu.smi")}
    remember(ctx.transports, "gpu.prom", seen)
    if not result.absent:
        return result
    matcher = NodeMatcher(ctx.inventory, PLAN.exporter, HOST_LABELS)
    nodes = {a.node for a in result.absent if a.node}
    absent = await date_absent(
        client,
        result.absent,
        owner=ctx.transports,
        collector="gpu.prom",
        metric=LIVENESS,
        selectors={n: selector(matcher, n, ctx.inventory, PLAN.exporter) for n in nodes},
        target_of=_target_of,
    )
    return FleetResult(result.readings, absent, result.errors)
