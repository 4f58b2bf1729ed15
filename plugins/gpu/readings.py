"""Readings from what nvidia-smi printed: the Store's view of a node's GPUs.

Pure functions (no I/O): the SSH collectors, NVML and the benchmarks' synthetic
fleet build their readings here. Readings are about ``<node>/<index>`` (one GPU,
``node`` set) or the node itself (driver, CUDA, XIDs).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from console.plugin import Reading
from plugins.gpu.config import gpu_target
from plugins.gpu.model import (
    CRITICAL_XIDS,
    GpuDetail,
    GpuFast,
    GpuInstance,
    NvlinkState,
    SmiLog,
    XidEvent,
    throttle_names,
)
from plugins.gpu.parse import same_bus
from plugins.gpu.parse_text import TopoMatrix


def shared(value: Any) -> Any:
    """A text value as one shared copy: the same words ("P0", "Enabled", the GPU's name, the
    driver version) come back in every GPU's readings on every poll; at 1,000 hosts the
    copies were several MB. Other values pass through."""
    return sys.intern(value) if type(value) is str else value


def _gpu_readings(
    target: str,
    node: str,
    values: dict[str, Any],
    now: float,
    source: str,
    detail: tuple[str, str],
) -> list[Reading]:
    """One GPU's readings; ``detail`` = (metric, text): the one reading that carries a text."""
    on, text = detail
    return [
        Reading(
            target, m, shared(v), ts=now, source=source, detail=text if m == on else "", node=node
        )
        for m, v in values.items()
    ]


@dataclass(frozen=True, slots=True)
class FullRead:
    smi: SmiLog | None
    gis: tuple[GpuInstance, ...]
    cis: tuple[GpuInstance, ...]
    nvlink: tuple[NvlinkState, ...]
    xids: tuple[XidEvent, ...]
    dcgm: bool | None
    error: str = ""
    topo: TopoMatrix | None = None
    kernel: str | None = None
    os: str | None = None


def fast_readings(
    node: str, gpus: Sequence[GpuFast], source: str, smi: str = "ok"
) -> list[Reading]:
    now = time.time()
    out: list[Reading] = []
    driver = next((g.driver for g in gpus if g.driver), None)
    out.append(Reading(node, "gpu.smi", smi, ts=now, source=source))
    out.append(
        Reading(node, "gpu.count", len(gpus) if smi == "ok" else None, ts=now, source=source)
    )
    if driver is not None:
        out.append(Reading(node, "gpu.driver", driver, ts=now, source=source))
    for g in gpus:
        target = gpu_target(node, g.index)
        state = "lost" if g.lost else "error" if g.errors else "ok"
        mem_pct = (
            round(100.0 * g.mem_used_mib / g.mem_total_mib, 1)
            if g.mem_used_mib is not None and g.mem_total_mib
            else None
        )
        names = throttle_names(g.throttle_mask)
        values: dict[str, Any] = {
            "gpu.state": state,
            "gpu.util_pct": g.util_pct,
            "gpu.mem_used_mib": g.mem_used_mib,
            "gpu.mem_total_mib": g.mem_total_mib,
            "gpu.mem_pct": mem_pct,
            "gpu.temp_c": g.temp_c,
            "gpu.power_w": g.power_w,
            "gpu.power_limit_w": g.power_limit_w,
            "gpu.sm_clock_mhz": g.sm_clock_mhz,
            "gpu.mig_current": g.mig_current,
            "gpu.mig_pending": g.mig_pending,
            "gpu.ecc_unc_volatile": g.ecc_unc_volatile,
            "gpu.throttle": None if names is None else ",".join(names),
            "gpu.fan_pct": g.fan_pct,
            "gpu.pstate": g.pstate,
        }
        if not g.lost:
            values |= {"gpu.name": g.name, "gpu.uuid": g.uuid, "gpu.bus": g.pci_bus_id}
        else:
            values["gpu.bus"] = g.pci_bus_id
        detail = g.lost_reason if g.lost else ("ERR! in " + ", ".join(g.errors) if g.errors else "")
        out += _gpu_readings(target, node, values, now, source, ("gpu.state", detail))
    return out


def _affinity(topo: TopoMatrix | None, index: int) -> tuple[str | None, str | None, str | None]:
    """(nearest NICs with their link, NUMA node, CPU list) of GPU ``index``, from topo -m."""
    gpu = f"GPU{index}"
    if topo is None or gpu not in topo.links:
        return None, None, None
    nics = ",".join(f"{name} {link}" for name, link in topo.nearest_nics(gpu)) or None
    return nics, topo.numa.get(gpu), topo.cpu_affinity.get(gpu)


def mig_layout(gpu: GpuDetail, gis: Sequence[GpuInstance]) -> list[dict[str, Any]]:
    """The GPU's MIG devices with their profile names and the processes on each."""
    profiles = {g.instance_id: g for g in gis if g.gpu == gpu.index}
    layout: dict[int, dict[str, Any]] = {}
    for gi in profiles.values():
        layout[gi.instance_id] = {
            "gi": gi.instance_id,
            "profile": gi.profile,
            "placement": gi.placement,
            "mem_mib": None,
            "used_mib": None,
            "procs": 0,
        }
    for d in gpu.mig_devices:
        if d.gi is None:
            continue
        entry = layout.setdefault(
            d.gi, {"gi": d.gi, "profile": None, "placement": None, "procs": 0}
        )
        entry["mem_mib"] = d.mem_total_mib
        entry["used_mib"] = d.mem_used_mib
        entry["ci"] = d.ci
    for p in gpu.processes:
        if p.gi is not None and p.gi in layout:
            layout[p.gi]["procs"] += 1
    return [layout[k] for k in sorted(layout)]


def full_readings(node: str, full: FullRead, source: str = "ssh") -> list[Reading]:
    now = time.time()
    out = [Reading(node, "gpu.dcgm", full.dcgm, ts=now, source=source)]
    by_bus: dict[str, list[XidEvent]] = {}
    for x in full.xids:
        by_bus.setdefault(x.pci, []).append(x)
    out.append(Reading(node, "gpu.xid_count", len(full.xids), ts=now, source=source))
    out.append(Reading(node, "gpu.kernel", full.kernel, ts=now, source=source))
    out.append(Reading(node, "gpu.os", full.os, ts=now, source=source))
    if full.smi is None:
        out.append(Reading(node, "gpu.full", full.error or "no XML", ts=now, source=source))
        return out
    out.append(Reading(node, "gpu.full", "ok", ts=now, source=source))
    out.append(Reading(node, "gpu.cuda", full.smi.cuda, ts=now, source=source))
    out.append(Reading(node, "gpu.driver", full.smi.driver, ts=now, source=source))
    links = {n.gpu: n for n in full.nvlink}
    seen_bus: set[str] = set()
    for g in full.smi.gpus:
        xids = [x for bus, xs in by_bus.items() if same_bus(bus, g.pci_bus_id) for x in xs]
        seen_bus.update(bus for bus in by_bus if same_bus(bus, g.pci_bus_id))
        link = links.get(g.index)
        down = (
            None
            if link is None or not link.links
            else sum(1 for v in link.links.values() if v is None)
        )
        bad = [x for x in xids if x.xid in CRITICAL_XIDS]
        nics, numa, cpus = _affinity(full.topo, g.index)
        values: dict[str, Any] = {
            "gpu.nic": nics,
            "gpu.numa": numa,
            "gpu.cpus": cpus,
            "gpu.ecc_corr_volatile": g.ecc_corr_volatile,
            "gpu.ecc_unc_aggregate": g.ecc_unc_aggregate,
            "gpu.ecc_corr_aggregate": g.ecc_corr_aggregate,
            "gpu.retired_pages": None
            if g.retired_sbe is None and g.retired_dbe is None
            else (g.retired_sbe or 0) + (g.retired_dbe or 0),
            "gpu.retire_pending": g.retire_pending,
            "gpu.remap_unc": g.remap_unc,
            "gpu.remap_pending": g.remap_pending,
            "gpu.remap_failure": g.remap_failure,
            "gpu.mig": json.dumps(mig_layout(g, full.gis)) if g.mig_current else "",
            "gpu.processes": len(g.processes),
            "gpu.process_list": "; ".join(
                f"{p.pid} {(p.name or '?').rsplit('/', 1)[-1]} {p.used_mib or 0:.0f}MiB"
                + (f" gi{p.gi}" if p.gi is not None else "")
                for p in g.processes
            ),
            "gpu.max_sm_clock_mhz": g.max_sm_clock_mhz,
            "gpu.vbios": g.vbios,
            "gpu.serial": g.serial,
            "gpu.pcie": None
            if g.pcie_gen is None
            else f"gen{g.pcie_gen} x{g.pcie_width or '?'}/x{g.pcie_max_width or '?'}",
            "gpu.nvlink_down": down,
            "gpu.nvlink": (
                link.note if link and link.note else f"{len(link.links)} links" if link else None
            ),
            "gpu.throttle_full": None if g.throttle is None else ",".join(g.throttle),
            "gpu.xid_last": bad[-1].xid if bad else (xids[-1].xid if xids else None),
            "gpu.xids": "; ".join(f"{x.xid}@{x.ts or '?'}" for x in xids[-5:]),
        }
        detail = bad[-1].text if bad else ""
        target = gpu_target(node, g.index)
        out += _gpu_readings(target, node, values, now, source, ("gpu.xid_last", detail))
    orphans = [x for bus, xs in by_bus.items() if bus not in seen_bus for x in xs]
    out.append(
        Reading(
            node,
            "gpu.xids_unmatched",
            "; ".join(f"{x.xid}@{x.pci}" for x in orphans[-5:]),
            ts=now,
            source=source,
        )
    )
    return out
