"""Collectors: one SSH round trip per node for each of the fast and the full reads.

Readings are about ``<node>/<index>`` (one GPU, ``node`` set) or the node
itself (driver, CUDA, XIDs). A transport failure raises (the poller records
it); a driver that does not answer is itself the observation
(``gpu.smi`` says why) and the GPUs' values are then unknown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from console.plugin import (
    CollectContext,
    CollectorSpec,
    ParseError,
    Reading,
    Target,
    fleet_collector,
)
from plugins.gpu.config import GpuConfig, cfg, expected_versions, gpu_nodes, gpu_target
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
from plugins.gpu.parse import (
    LEGACY_NAMES,
    QUERY_FIELDS,
    bus_order_indexes,
    lost_bus_ids,
    parse_mig_list,
    parse_nvlink_status,
    parse_os_release,
    parse_query_csv,
    parse_xids,
    same_bus,
    split_sections,
)
from plugins.gpu.parse_smi_q import parse_smi_q
from plugins.gpu.parse_text import TopoMatrix, parse_smi_table, parse_topo
from plugins.gpu.parse_xml import parse_smi_xml
from plugins.gpu.prom import collect_prom, prom_targets

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, Node

log = logging.getLogger(__name__)

NO_DRIVER = "couldn't communicate with the NVIDIA driver"


def query_command(fields: Sequence[str] = QUERY_FIELDS) -> str:
    return f"nvidia-smi --query-gpu={','.join(fields)} --format=csv,noheader,nounits"


LEGACY_FIELDS = tuple(LEGACY_NAMES.get(f, f) for f in QUERY_FIELDS)


def xid_command(since_minutes: int) -> str:
    since = shlex.quote(f"-{int(since_minutes)}min")
    return (
        "if command -v journalctl >/dev/null 2>&1; then "
        f"journalctl -k -q -o short-iso --no-pager --since {since} 2>/dev/null"
        " | grep -F 'NVRM: Xid'; "
        "else dmesg --time-format iso 2>/dev/null | grep -F 'NVRM: Xid'; fi"
    )


OS_COMMAND = "uname -r; grep -E '^PRETTY_NAME=' /etc/os-release"
"""The kernel release and the distribution: with the driver and CUDA, the stack that must
be uniform across GPU nodes (framework/driver/CUDA conflicts are a named risk)."""


def full_parts(since_minutes: int = 60) -> tuple[tuple[str, str], ...]:
    """The full round trip's parts: (section name, shell command)."""
    return (
        ("xml", "nvidia-smi -q -x"),
        ("lgi", "nvidia-smi mig -lgi"),
        ("lci", "nvidia-smi mig -lci"),
        ("nvlink", "nvidia-smi nvlink -s"),
        ("topo", "nvidia-smi topo -m"),
        ("xid", xid_command(since_minutes)),
        ("dcgm", "command -v dcgmi"),
        ("os", OS_COMMAND),
    )


def full_command(since_minutes: int = 60) -> str:
    """One script: each part, then a marker line with its exit status."""
    return "\n".join(
        f'{{ {cmd}; }} 2>&1; echo "@@dcc-gpu {name} rc=$?@@"'
        for name, cmd in full_parts(since_minutes)
    )


# --------------------------------------------------------------------------- targets


def _ssh_targets(inventory: Inventory, config: Any, interval: float) -> list[Target]:
    # The poller reads a target's own interval from attrs["interval"] (Job.interval):
    # that is how the inventory's fast_interval/full_interval take effect.
    if cfg(config).source not in ("ssh", "direct"):
        return []  # NVML or Prometheus: see _nvml_targets and plugins.gpu.prom
    return [
        Target("node", n.name, node=n.name, attrs={"interval": interval})
        for n in gpu_nodes(inventory)
    ]


def node_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    """GPU nodes read over SSH, polled every ``fast_interval``."""
    return _ssh_targets(inventory, config, cfg(config).fast_interval)


def full_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    """GPU nodes read over SSH, polled every ``full_interval``."""
    return _ssh_targets(inventory, config, cfg(config).full_interval)


def _node(ctx: Any, name: str) -> Node:
    node: Node | None = ctx.inventory.nodes.get(name)
    if node is None:
        raise LookupError(f"node {name!r} is not in the inventory")
    return node


async def _run(ctx: Any, node: Node, command: str, limit: float) -> tuple[int, str, str]:
    async with asyncio.timeout(limit + 1.0):
        result = await ctx.transports.ssh.run(node, command, timeout=limit)
    return result.exit_status, result.stdout, result.stderr


# --------------------------------------------------------------------------- fast


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
        out += [
            Reading(
                target,
                m,
                v,
                ts=now,
                source=source,
                detail=detail if m == "gpu.state" else "",
                node=node,
            )
            for m, v in values.items()
        ]
    return out


@dataclass
class _Legacy:
    nodes: set[str]


_LEGACY = _Legacy(set())
"""Nodes whose driver refused the new field names (drivers before 535)."""


async def read_fast(ctx: Any, node: Node, limit: float) -> tuple[list[GpuFast], str]:
    """(GPUs, "ok" or why nvidia-smi gave nothing). Raises on transport failure."""
    fields = LEGACY_FIELDS if node.name in _LEGACY.nodes else QUERY_FIELDS
    rc, out, err = await _run(ctx, node, query_command(fields), limit)
    if rc != 0 and "is not a valid field" in (out + err) and fields is QUERY_FIELDS:
        _LEGACY.nodes.add(node.name)
        fields = LEGACY_FIELDS
        rc, out, err = await _run(ctx, node, query_command(fields), limit)
    try:
        gpus = parse_query_csv(out, fields)
    except ParseError:
        if rc == 0:
            raise
        gpus = []
    if not gpus and rc != 0 and NO_DRIVER not in out + err:
        # Drivers too old for these --query-gpu fields: the default table has the basics.
        table_rc, table_out, _ = await _run(ctx, node, "nvidia-smi", limit)
        try:
            table = parse_smi_table(table_out) if table_rc == 0 else None
        except ParseError:
            table = None
        if table is not None and table.gpus:
            return [replace(g, driver=table.driver) for g in table.gpus], "ok"
    if not gpus and rc != 0:
        text = (out + err).strip().splitlines()
        why = next((t for t in text if NO_DRIVER in t), text[-1] if text else f"exit {rc}")
        return [], f"nvidia-smi exit {rc}: {why[:160]}"
    return gpus, "ok"


async def collect_fast(ctx: CollectContext, target: Target) -> Sequence[Reading]:
    node = _node(ctx, target.name)
    gpus, smi = await read_fast(ctx, node, cfg(ctx.config).timeout)
    return fast_readings(node.name, gpus, "ssh", smi)


# --------------------------------------------------------------------------- full


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


def parse_full(text: str) -> FullRead:
    """The full round trip's output (see ``full_command``)."""
    sections = split_sections(text)
    if "xml" not in sections:
        raise ParseError("the full GPU read printed no section markers")
    rc, xml = sections["xml"]
    start = xml.find("<?xml")
    if start < 0:
        start = xml.find("<nvidia_smi_log")
    # stderr shares the section (2>&1): a lost GPU's line may follow the document.
    end = xml.rfind("</nvidia_smi_log>")
    document = xml[start : end + len("</nvidia_smi_log>")] if end > start else xml[start:]
    smi = parse_smi_xml(document) if start >= 0 else None
    if smi is not None:
        smi = _renumber_after_lost(smi, xml)
    error = "" if smi is not None else f"nvidia-smi -q -x exit {rc}: {xml.strip()[-160:]}"

    def part(name: str) -> str:
        return sections.get(name, (1, ""))[1]

    dcgm_rc = sections.get("dcgm", (None, ""))[0]
    topo_rc, topo_text = sections.get("topo", (1, ""))
    try:
        topo = parse_topo(topo_text) if topo_rc == 0 else None
    except ParseError:
        topo = None  # the affinity is a nicety: its absence must not lose the health read
    kernel, os_name = parse_os_release(part("os"))
    return FullRead(
        smi=smi,
        gis=tuple(g for g in parse_mig_list(part("lgi")) if g.gi is None),
        cis=tuple(g for g in parse_mig_list(part("lci")) if g.gi is not None),
        nvlink=tuple(parse_nvlink_status(part("nvlink")))
        if sections.get("nvlink", (1,))[0] == 0
        else (),
        xids=tuple(parse_xids(part("xid"))),
        dcgm=None if dcgm_rc is None else dcgm_rc == 0,
        error=error,
        topo=topo,
        kernel=kernel,
        os=os_name,
    )


def _renumber_after_lost(smi: SmiLog, text: str) -> SmiLog:
    """Give each reported GPU its real index when some GPU fell off the bus."""
    indexes = bus_order_indexes([g.pci_bus_id for g in smi.gpus], lost_bus_ids(text))
    if indexes is None:
        return smi
    gpus = tuple(replace(g, index=i) for g, i in zip(smi.gpus, indexes, strict=True))
    return replace(smi, gpus=gpus)


async def read_full(ctx: Any, node: Node, limit: float, since_minutes: int = 60) -> FullRead:
    _rc, out, _err = await _run(ctx, node, full_command(since_minutes), limit)
    full = parse_full(out)
    if full.smi is None and NO_DRIVER not in full.error:
        # -q -x failed (an old nvidia-smi without XML, a broken DTD path): the text report
        # carries the same fields. A second round trip, only on such nodes.
        rc, text, _ = await _run(ctx, node, "nvidia-smi -q", limit)
        try:
            smi = parse_smi_q(text) if rc == 0 else None
        except ParseError:
            smi = None
        if smi is not None:
            full = replace(full, smi=smi, error="")
    return full


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
        out += [
            Reading(
                gpu_target(node, g.index),
                m,
                v,
                ts=now,
                source=source,
                detail=detail if m == "gpu.xid_last" else "",
                node=node,
            )
            for m, v in values.items()
        ]
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


async def collect_full(ctx: CollectContext, target: Target) -> Sequence[Reading]:
    node = _node(ctx, target.name)
    c = cfg(ctx.config)
    full = await read_full(ctx, node, c.timeout, c.xid_since_minutes)
    driver, cuda = expected_versions(node, c)
    now = time.time()
    return [
        *full_readings(node.name, full),
        Reading(node.name, "gpu.expected_driver", driver, ts=now, source="inventory"),
        Reading(node.name, "gpu.expected_cuda", cuda, ts=now, source="inventory"),
    ]


def _nvml_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    c: GpuConfig = cfg(config)
    if c.source != "nvml" or c.nvml_node is None:
        return []
    return [Target("node", c.nvml_node, node=c.nvml_node, attrs={"interval": c.fast_interval})]


async def _collect_nvml(ctx: CollectContext, target: Target) -> Sequence[Reading]:
    from plugins.gpu.nvml import collect_nvml

    return await collect_nvml(target.name)


def collectors(config: GpuConfig | None = None) -> tuple[CollectorSpec, ...]:
    c = config or GpuConfig()
    return (
        CollectorSpec(
            "gpu.fast",
            node_targets,
            collect_fast,
            c.fast_interval,
            c.timeout + 5,
            "GPU util/memory/temperature/power (nvidia-smi --query-gpu)",
        ),
        CollectorSpec(
            "gpu.full",
            full_targets,
            collect_full,
            c.full_interval,
            c.timeout + 5,
            "GPU health, MIG, NVLink, XIDs (nvidia-smi -q -x, kernel log)",
        ),
        CollectorSpec(
            "gpu.nvml",
            _nvml_targets,
            _collect_nvml,
            c.fast_interval,
            c.timeout + 5,
            "Local GPUs through NVML",
        ),
        fleet_collector(
            "gpu.prom",
            prom_targets,
            collect_prom,
            c.prometheus_interval,
            c.timeout + 5,
            "GPUs from Prometheus (dcgm-exporter), one query per field for the fleet",
        ),
    )


COLLECTORS = collectors()
