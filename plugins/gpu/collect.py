"""Collectors: one SSH round trip per node for each of the fast and the full reads.

Readings are about ``<node>/<index>`` (one GPU, ``node`` set) or the node
itself (driver, CUDA, XIDs). A transport failure raises (the poller records
it); a driver that does not answer is itself the observation
(``gpu.smi`` says why) and the GPUs' values are then unknown.
"""

from __future__ import annotations

import asyncio
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
from plugins.gpu.config import GpuConfig, cfg, expected_versions, gpu_nodes
from plugins.gpu.model import (
    GpuFast,
    SmiLog,
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
    split_sections,
)
from plugins.gpu.parse_smi_q import parse_smi_q
from plugins.gpu.parse_text import parse_smi_table, parse_topo
from plugins.gpu.parse_xml import parse_smi_xml
from plugins.gpu.prom import collect_prom, prom_targets
from plugins.gpu.readings import FullRead, fast_readings, full_readings

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
