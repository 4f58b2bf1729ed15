"""Collectors: every HCA port of a node in one SSH round trip; the fabric from one node.

Readings about a port have the target ``ib:<node>:<device>/<port>`` and
``node`` set; the node itself gets how many ports it has and is expected to
have. Error counters are kept as totals (``infiniband.err.<counter>``) and as
errors per minute over the rate window (``infiniband.rate.<counter>``).
An SSH failure raises (the poller records it): then we know nothing new.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from console.plugin import CollectContext, CollectorSpec, Reading, Target
from plugins.infiniband.config import InfinibandConfig, as_config, ib_nodes
from plugins.infiniband.dump import (
    NodeDump,
    fabric_script,
    node_script,
    parse_fabric_dump,
    parse_node_dump,
)
from plugins.infiniband.health import SEVERITY_WORD, CounterTracker, judge, worst
from plugins.infiniband.parse import ERROR_COUNTERS, Port
from plugins.infiniband.parse_fabric import FabricPort

log = logging.getLogger(__name__)


def tracker(ctx: CollectContext, source: str, window_s: float) -> CounterTracker:
    """The session's tracker for one source (``ssh``, ``prometheus``) and rate window.

    Rates need the previous totals, so the tracker outlives a run: it lives in the
    poller's memory for this plugin, as long as the session, and each source has its
    own (a total from one is no baseline for the other).
    """
    key = f"counters:{source}:{window_s}"
    found = ctx.memory.get(key)
    if not isinstance(found, CounterTracker):
        found = ctx.memory[key] = CounterTracker(window_s)
    return found


def port_target(node: str, port_key: str) -> str:
    # Interned: each of the port's readings holds it (see gpu_target).
    return sys.intern(f"ib:{node}:{port_key}")


def split_port_target(target: str) -> tuple[str, str, int] | None:
    """``ib:gpu001:mlx5_0/1`` -> (gpu001, mlx5_0, 1)."""
    try:
        _, node, rest = target.split(":", 2)
        dev, port = rest.rsplit("/", 1)
        return node, dev, int(port)
    except ValueError:
        return None


def switch_port_target(switch: str, port: int) -> str:
    return sys.intern(f"ibsw:{switch}/{port}")


# --------------------------------------------------------------------------- targets


def node_targets(inventory: Any, config: Any) -> Sequence[Target]:
    if as_config(config).source == "prometheus":
        return []  # read from node_exporter through Prometheus: plugins.infiniband.prom
    return [
        Target(
            "node",
            n.name,
            node=n.name,
            attrs={
                "ib_ports": n.hardware.ib_ports,
                "ib_rate_gbps": n.hardware.ib_rate_gbps,
                "interval": as_config(config).interval,
            },
        )
        for n in ib_nodes(inventory)
    ]


def fabric_targets(inventory: Any, config: Any) -> Sequence[Target]:
    cfg = as_config(config)
    if cfg.fabric_node is None:
        return []
    if cfg.fabric_node not in inventory.nodes:
        raise LookupError(f"plugins.infiniband.fabric_node {cfg.fabric_node!r} is not a node")
    return [
        Target("ib_fabric", "fabric", node=cfg.fabric_node, attrs={"interval": cfg.fabric_interval})
    ]


# --------------------------------------------------------------------------- readings


def port_readings(
    node: str,
    port: Port,
    cfg: InfinibandConfig,
    expected_gbps: float | None,
    now: float,
    counters: CounterTracker,
) -> list[Reading]:
    """The readings of one port, with rates and the judged health."""
    target = port_target(node, port.key)
    values: dict[str, Any] = {
        "infiniband.state": port.state,
        "infiniband.phys_state": port.phys_state,
        "infiniband.rate_gbps": port.rate.gbps,
        "infiniband.width": port.rate.width,
        "infiniband.speed": port.rate.speed,
        "infiniband.link_layer": port.link_layer,
        "infiniband.lid": port.lid,
    }
    events: list[str] = []
    for counter in ERROR_COUNTERS:
        total = port.counters.get(counter)
        step = counters.update(target, counter, total, now)
        values[f"infiniband.err.{counter}"] = total
        values[f"infiniband.rate.{counter}"] = (
            round(step.rate_per_min, 4) if step.rate_per_min is not None else None
        )
        if step.event:
            events.append(f"{counter} {step.event}")
    for counter, metric in (("port_xmit_data", "xmit_gbps"), ("port_rcv_data", "rcv_gbps")):
        gbps = counters.throughput_gbps(target, counter, port.counters.get(counter), now)
        values[f"infiniband.{metric}"] = round(gbps, 3) if gbps is not None else None
    problems = judge(values, cfg, expected_gbps if port.link_layer != "Ethernet" else None)
    values["infiniband.health"] = SEVERITY_WORD[worst(problems)]
    detail = "; ".join(p.text for p in problems)
    if events:
        values["infiniband.counter_events"] = ", ".join(events)
    return [
        Reading(
            target,
            metric,
            value,
            ts=now,
            source="ssh",
            detail=detail if metric == "infiniband.health" else "",
            node=node,
        )
        for metric, value in values.items()
    ]


def node_readings(
    node: str,
    dump: NodeDump,
    cfg: InfinibandConfig,
    expected_ports: int,
    expected_gbps: float | None,
    now: float,
    counters: CounterTracker | None = None,
) -> list[Reading]:
    """A node's port readings; without the session's ``counters``, no rates (no baseline)."""
    counters = counters if counters is not None else CounterTracker(cfg.rate_window_s)
    out: list[Reading] = []
    for port in dump.ports:
        out += port_readings(node, port, cfg, expected_gbps, now, counters)
    fabric_ports = [p for p in dump.ports if cfg.roce or p.link_layer != "Ethernet"]
    active = [p for p in fabric_ports if p.state == "ACTIVE"]
    errors = "; ".join(dump.tool_errors)
    out += [
        Reading(node, "infiniband.ports_found", len(fabric_ports), ts=now, source="ssh"),
        Reading(node, "infiniband.ports_active", len(active), ts=now, source="ssh"),
        Reading(node, "infiniband.ports_expected", expected_ports, ts=now, source="ssh"),
        Reading(node, "infiniband.tool_error", errors or None, ts=now, source="ssh", detail=errors),
    ]
    return out


async def collect_node(ctx: CollectContext, target: Target) -> Sequence[Reading]:
    """sysfs + ibstat + perfquery of every port of one node, one SSH round trip."""
    node = ctx.inventory.nodes.get(target.name)
    if node is None:
        raise LookupError(f"node {target.name!r} is not in the inventory")
    cfg = as_config(ctx.config)
    async with asyncio.timeout(cfg.timeout + 1.0):
        result = await ctx.transports.ssh.run(
            node, node_script(cfg.sysfs_root, cfg.tools), timeout=cfg.timeout
        )
    dump = parse_node_dump(result.stdout, cfg.sysfs_root)
    if not dump.ports and node.hardware.ib_ports > 0 and result.exit_status not in (0, None):
        raise RuntimeError(
            f"reading {cfg.sysfs_root} on {node.name} exited {result.exit_status}: "
            f"{result.stderr.strip()[:200] or 'no output'}"
        )
    expected = float(node.hardware.ib_rate_gbps) if node.hardware.ib_rate_gbps else None
    counters = tracker(ctx, "ssh", cfg.rate_window_s)
    return node_readings(
        node.name, dump, cfg, node.hardware.ib_ports, expected, time.time(), counters
    )


def fabric_readings(ports: Sequence[FabricPort], inventory: Any, now: float) -> list[Reading]:
    """Switch ports (``ibsw:<switch>/<port>``) and, on each HCA port, what it plugs into."""
    out: list[Reading] = []
    for p in ports:
        if p.kind == "SW":
            target = switch_port_target(p.name, p.port)
            peer = f"{p.peer_name} [{p.peer_port}]" if p.peer_name else None
            values: dict[str, Any] = {
                "infiniband.sw_state": p.state,
                "infiniband.sw_phys_state": p.phys_state,
                "infiniband.sw_width": p.width,
                "infiniband.sw_speed": p.speed,
                "infiniband.sw_lid": p.lid,
                "infiniband.sw_guid": p.guid,
                "infiniband.sw_peer": peer,
            }
            host = p.peer_name.split()[0] if p.peer_name and p.peer_name.split() else None
            node = host if host in inventory.nodes else None
            dev = p.peer_name.split()[1] if p.peer_name and len(p.peer_name.split()) > 1 else None
            if node is not None and dev is not None and p.peer_port is not None:
                # The HCA's side of the same cable: which leaf and port it plugs into.
                out.append(
                    Reading(
                        port_target(node, f"{dev}/{p.peer_port}"),
                        "infiniband.peer",
                        f"{p.name} [{p.port}]",
                        ts=now,
                        source="fabric",
                        node=node,
                    )
                )
            out += [
                Reading(target, m, v, ts=now, source="fabric", node=node) for m, v in values.items()
            ]
        elif p.kind == "CA" and p.host and p.host in inventory.nodes and p.device and p.peer_name:
            target = port_target(p.host, f"{p.device}/{p.port}")
            out.append(
                Reading(
                    target,
                    "infiniband.peer",
                    f"{p.peer_name} [{p.peer_port}]",
                    ts=now,
                    source="fabric",
                    node=p.host,
                )
            )
    return out


async def collect_fabric(ctx: CollectContext, target: Target) -> Sequence[Reading]:
    """iblinkinfo (or ibnetdiscover -p) from the fabric node, one round trip."""
    cfg = as_config(ctx.config)
    node = ctx.inventory.nodes.get(target.node or "")
    if node is None:
        raise LookupError(f"fabric node {target.node!r} is not in the inventory")
    async with asyncio.timeout(cfg.timeout * 4 + 1.0):
        result = await ctx.transports.ssh.run(node, fabric_script(), timeout=cfg.timeout * 4)
    return fabric_readings(parse_fabric_dump(result.stdout), ctx.inventory, time.time())


COLLECTORS = (
    CollectorSpec(
        id="infiniband.ports",
        targets=node_targets,
        collect=collect_node,
        interval=15.0,
        timeout=15.0,
        label="IB/RoCE ports (sysfs, ibstat, perfquery)",
    ),
    CollectorSpec(
        id="infiniband.fabric",
        targets=fabric_targets,
        collect=collect_fabric,
        interval=60.0,
        timeout=45.0,
        label="IB fabric (iblinkinfo from the fabric node)",
    ),
)
