"""Alerts and checks: unhealthy GPUs, idle-but-allocated GPUs, version drift, no driver."""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from console.plugin import CheckSpec, Finding, Severity, Target
from console.store import StoreView
from plugins.gpu.collect import COLLECTORS
from plugins.gpu.config import GpuConfig, config_of, expected_versions, gpu_nodes
from plugins.gpu.status import (
    GpuView,
    allocation,
    drift,
    gpu_indexes,
    gpu_view,
    idle_seconds,
    node_views,
)

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, Node

FAST_INTERVAL = COLLECTORS[0].interval


@dataclass(frozen=True, slots=True)
class IdleGpu:
    node: str
    index: int
    seconds: float
    allocation: str
    processes: int | None


def idle_allocated(store: StoreView, inventory: Inventory) -> list[IdleGpu]:
    """GPUs allocated to work (scheduler alloc/mixed, or processes) but idle for N minutes."""
    c = config_of(inventory)
    return [i for node in gpu_nodes(inventory) for i in idle_on_node(store, node.name, c)]


def idle_on_node(
    store: StoreView, node: str, c: GpuConfig, views: Sequence[GpuView] | None = None
) -> list[IdleGpu]:
    """``idle_allocated`` for one node (from that node's readings only); ``views`` are
    its GPUs' views when the caller already has them."""
    alloc = allocation(store, node)
    if views is None:
        views = node_views(store, node, c.hot_c)
    out = []
    for v in views:
        i = v.index
        held = alloc in ("alloc", "mixed") or (alloc is None and (v.processes or 0) > 0)
        if not held or v.state == "lost":
            continue
        secs = idle_seconds(store, node, i, c.idle_util_pct, FAST_INTERVAL)
        if secs is not None and secs >= c.idle_minutes * 60:
            out.append(IdleGpu(node, i, secs, alloc or "processes", v.processes))
    return out


def alerts(store: StoreView, inventory: Inventory) -> Sequence[Finding]:
    """Every GPU finding of the fleet (the console itself runs ``node_alerts`` per node)."""
    return [f for node in gpu_nodes(inventory) for f in node_alerts(store, inventory, node)]


def node_alerts(store: StoreView, inventory: Inventory, node: Node) -> Sequence[Finding]:
    """The GPU findings of one node: driver, drift, each GPU's health, idle-but-allocated.

    Everything here is read from the node's own readings, so the console re-judges a
    node only when they change (``Plugin.node_alerts``).
    """
    if node.role not in ("gpu-train", "gpu-infer") and node.hardware.gpu_count <= 0:
        return ()
    c = config_of(inventory)
    name = node.name
    out: list[Finding] = []
    smi = store.value(name, "gpu.smi")
    if isinstance(smi, str) and smi != "ok":
        out.append(
            Finding(Severity.CRITICAL, name, f"{name}: {smi}", key=f"gpu.smi:{name}", node=name)
        )
    d = drift(store, name, *expected_versions(node, c))
    if d:
        out.append(
            Finding(Severity.WARNING, name, f"{name}: {d}", key=f"gpu.drift:{name}", node=name)
        )
    views = node_views(store, name, c.hot_c)
    for v in views:
        i = v.index
        for sev, text in v.problems:
            kind = text.split()[0].lower()
            out.append(
                Finding(
                    sev,
                    f"{name}/{i}",
                    f"{name} GPU {i}: {text}",
                    key=f"gpu.health:{name}/{i}:{kind}",
                    node=name,
                )
            )
    for idle in idle_on_node(store, name, c, views):
        out.append(
            Finding(
                Severity.WARNING,
                f"{idle.node}/{idle.index}",
                f"{idle.node} GPU {idle.index}: allocated ({idle.allocation}) but idle "
                f"{idle.seconds / 60:.0f} min",
                key=f"gpu.idle:{idle.node}/{idle.index}",
                node=idle.node,
            )
        )
    return out


def check_healthy(store: StoreView, target: Target) -> Finding:
    """OK when every GPU of the node answers and none has a health problem."""
    node = target.node or target.name
    indexes = gpu_indexes(store, node)
    if not indexes:
        return Finding(
            Severity.UNKNOWN,
            node,
            f"{node}: no GPU reading yet",
            key=f"gpu.healthy:{node}",
            node=node,
        )
    worst = Severity.OK
    texts = []
    for i in indexes:
        v = gpu_view(store, node, i)
        worst = max(worst, v.severity)
        texts += [f"GPU {i} {t}" for _, t in v.problems]
    msg = f"{node}: {len(indexes)} GPUs" + (": " + "; ".join(texts) if texts else " healthy")
    return Finding(worst, node, msg, key=f"gpu.healthy:{node}", node=node)


VERSION_FIELDS: tuple[tuple[str, str], ...] = (
    ("driver", "gpu.driver"),
    ("CUDA", "gpu.cuda"),
    ("OS", "gpu.os"),
    ("kernel", "gpu.kernel"),
)
"""(what the message calls it, the metric): the software stack compared across GPU nodes."""


_PEERS_CACHE: weakref.WeakKeyDictionary[Any, tuple[int, dict[str, dict[str, str]]]] = (
    weakref.WeakKeyDictionary()
)


def _peer_values(store: StoreView, metric: str) -> dict[str, str]:
    """node -> value of ``metric``, computed once per Store version: a scorecard asks for
    every GPU node in turn, and ``by_metric`` walks the whole Store."""

    def compute() -> dict[str, str]:
        return {
            n: r.value
            for n, r in store.by_metric(metric).items()
            if isinstance(r.value, str) and r.value
        }

    try:
        entry = _PEERS_CACHE.get(store)
    except TypeError:  # a Store that cannot be weakly referenced: no cache
        return compute()
    if entry is None or entry[0] != store.version:
        entry = (store.version, {})
        _PEERS_CACHE[store] = entry
    found = entry[1].get(metric)
    if found is None:
        found = entry[1][metric] = compute()
    return found


def _version_problem(label: str, mine: str, peers: dict[str, str], node: str) -> str | None:
    """Why ``mine`` is not the fleet's one value, or None when it is (or has no rival).

    The majority is the fleet's value; a node off it is the one to blame. With no
    majority (a tie), every tied value is reported: nobody can say which is right.
    """
    counts = Counter(v for n, v in peers.items() if n != node)
    if not counts or set(counts) == {mine}:
        return None
    everyone = counts + Counter([mine])
    (top, top_n), *rest = everyone.most_common()
    tie = bool(rest) and rest[0][1] == top_n
    if mine == top and not tie:
        return None
    if tie:
        split = ", ".join(f"{v} on {n}" for v, n in everyone.most_common(3))
        return f"{label} {mine}: no majority ({split})"
    return f"{label} {mine} ≠ {top} on {top_n} other{'s' if top_n != 1 else ''}"


def check_versions_uniform(store: StoreView, target: Target) -> Finding:
    """OK when the node runs the same driver, CUDA, OS and kernel as the other GPU nodes.

    Compared with ``attrs["peers"]`` (node names) when given, else with every node the
    Store has a reading for. A value the node did not report is skipped for OS and
    kernel (older hosts); without a driver version the answer is unknown.
    """
    node = target.node or target.name
    key = f"gpu.uniform:{node}"
    raw_peers = target.attrs.get("peers")
    wanted = set(raw_peers) if isinstance(raw_peers, list | tuple | set | frozenset) else None
    raw_fields = target.attrs.get("fields")
    fields = [
        (label, metric)
        for label, metric in VERSION_FIELDS
        if not isinstance(raw_fields, list | tuple) or label.lower() in map(str.lower, raw_fields)
    ]
    if not isinstance(store.value(node, "gpu.driver"), str):
        return Finding(
            Severity.UNKNOWN, node, f"{node}: no driver version read yet", key=key, node=node
        )
    problems: list[str] = []
    same: list[str] = []
    compared = 0
    for label, metric in fields:
        mine = store.value(node, metric)
        if not isinstance(mine, str) or not mine:
            continue
        known = _peer_values(store, metric)
        peers = known if wanted is None else {n: v for n, v in known.items() if n in wanted}
        compared = max(compared, len([n for n in peers if n != node]))
        text = _version_problem(label, mine, peers, node)
        if text is None:
            same.append(f"{label} {mine}")
        else:
            problems.append(text)
    if problems:
        return Finding(
            Severity.WARNING, node, f"{node}: " + "; ".join(problems), key=key, node=node
        )
    others = f"same as {compared} other{'s' if compared != 1 else ''}" if compared else "no peer"
    return Finding(Severity.OK, node, f"{node}: {', '.join(same)} ({others})", key=key, node=node)


def check_gpu_answers(store: StoreView, target: Target) -> Finding:
    """OK when this one GPU answers nvidia-smi with no uncorrectable ECC error and no
    pending or failed row remap. XIDs are events in the kernel log, not the GPU's state
    now: the last one is named but does not fail the check (after a reset it stays in
    the log for ``xid_since_minutes``)."""
    node, _, idx = target.name.partition("/")
    key = f"gpu.answers:{target.name}"
    readings = store.readings_for(target.name)
    state = readings.get("gpu.state")
    if state is None or state.value is None:
        return Finding(Severity.UNKNOWN, target.name, f"{node} GPU {idx}: not read yet",
                       key=key, node=node)  # fmt: skip
    r = {m: x.value for m, x in readings.items()}
    sev, texts = Severity.OK, []
    if r.get("gpu.state") == "lost":
        sev, texts = Severity.CRITICAL, ["lost (fallen off the bus)"]
    elif r.get("gpu.state") == "error":
        sev, texts = Severity.WARNING, ["nvidia-smi printed ERR!"]
    ecc = r.get("gpu.ecc_unc_volatile")
    if isinstance(ecc, int | float) and not isinstance(ecc, bool) and ecc > 0:
        sev = Severity.CRITICAL
        texts.append(f"{ecc:.0f} uncorrectable ECC errors")
    if r.get("gpu.remap_failure") is True:
        sev = Severity.CRITICAL
        texts.append("row remap failed")
    if r.get("gpu.remap_pending") is True:
        sev = max(sev, Severity.WARNING)
        texts.append("row remap pending (reset needed)")
    xid = r.get("gpu.xid_last")
    history = f" (last XID in the log: {xid})" if isinstance(xid, int) else ""
    text = "; ".join(texts) if texts else "answers, no ECC or remap problem"
    return Finding(sev, target.name, f"{node} GPU {idx}: {text}{history}", key=key, node=node)


CHECKS = (
    CheckSpec(
        "gpu.healthy", "Every GPU answers, no XID/ECC/remap/throttle problem", "node", check_healthy
    ),
    CheckSpec(
        "gpu.versions_uniform",
        "Driver, CUDA, OS and kernel the same as on the other GPU nodes",
        "node",
        check_versions_uniform,
    ),
    CheckSpec(
        "gpu.answers",
        "The GPU answers nvidia-smi, no uncorrectable ECC error, no pending row remap",
        "gpu",
        check_gpu_answers,
        metrics=(
            "gpu.state",
            "gpu.ecc_unc_volatile",
            "gpu.remap_pending",
            "gpu.xid_last",
            "gpu.processes",
        ),
        pane="gpu.grid",
    ),
)
