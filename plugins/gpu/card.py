"""The node card's "GPUs" section: per GPU its state, and the MIG layout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from console.plugin import CardLine, Severity
from console.store import StoreView
from plugins.gpu.status import GLYPH, allocation, drift, gpu_indexes, gpu_view, mig_layout

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Node

CARD_TITLE = "GPUs"


def _f(v: float | None, unit: str) -> str:
    return "?" if v is None else f"{v:.0f}{unit}"


def _text(v: object) -> str | None:
    return v if isinstance(v, str) and v else None


def card(store: StoreView, node: Node) -> Sequence[CardLine]:
    name = node.name
    indexes = gpu_indexes(store, name)
    if not indexes:
        return []
    driver = store.value(name, "gpu.driver")
    cuda = store.value(name, "gpu.cuda")
    # The card sees no plugin config: the full collector publishes what it expected.
    d = drift(
        store,
        name,
        node.hardware.driver_version or _text(store.value(name, "gpu.expected_driver")),
        node.hardware.cuda_version or _text(store.value(name, "gpu.expected_cuda")),
    )
    models = {store.value(f"{name}/{i}", "gpu.name") for i in indexes} - {None}
    common = str(next(iter(models))) if len(models) == 1 else None
    lines = [
        CardLine(
            "driver",
            (f"{common} · " if common else "")
            + f"{driver or '?'} · CUDA {cuda or '?'}"
            + (f" · ▲ {d}" if d else ""),
            Severity.WARNING if d else Severity.OK,
        )
    ]
    alloc = allocation(store, name)
    if alloc:
        lines.append(CardLine("allocation", alloc))
    for i in indexes:
        v = gpu_view(store, name, i)
        model = store.value(f"{name}/{i}", "gpu.name")
        label = "" if common else f"{model or '?'} "  # the model is on the driver line
        head = (
            f"{GLYPH[v.severity]} {label}"
            f"util {_f(v.util, '%')} mem {_f(v.mem_pct, '%')} "
            f"{_f(v.temp, '°C')} {_f(v.power, 'W')}"
        )
        if v.processes is not None:
            head += f" · {v.processes} procs"
        if v.problems:
            head += " · " + "; ".join(t for _, t in v.problems)
        lines.append(CardLine(f"GPU {i}", head, v.severity))
        if v.mig or v.mig_pending:
            layout = mig_layout(store, name, i)
            pend = (
                ""
                if v.mig_pending == v.mig
                else (
                    f" · pending {'enable' if v.mig_pending else 'disable'}: waits for a GPU reset"
                )
            )
            text = (
                ", ".join(
                    f"gi{d.get('gi')} {d.get('profile') or '?'}"
                    + (" in use" if d.get("procs") else " free")
                    for d in layout
                )
                or "no instances"
            )
            lines.append(
                CardLine(
                    f"  MIG {i}",
                    f"{'on' if v.mig else 'off'}: {text}{pend}",
                    Severity.WARNING if pend else Severity.OK,
                )
            )
        elif v.mig_pending is not None and v.mig_pending != v.mig:
            lines.append(
                CardLine(f"  MIG {i}", "pending enable: waits for a GPU reset", Severity.WARNING)
            )
    lines += _topology(store, name, indexes)
    xids = store.value(name, "gpu.xids_unmatched")
    if isinstance(xids, str) and xids:
        lines.append(CardLine("XIDs", f"on no listed GPU: {xids}", Severity.WARNING))
    return lines


def _topology(store: StoreView, name: str, indexes: Sequence[int]) -> list[CardLine]:
    """One line per NUMA node: its GPUs with their nearest NIC (``nvidia-smi topo -m``)."""
    groups: dict[str, list[str]] = {}
    cpus: dict[str, str] = {}
    links: set[str] = set()
    for i in indexes:
        target = f"{name}/{i}"
        nic = store.value(target, "gpu.nic")
        numa = store.value(target, "gpu.numa")
        if nic is None and numa is None:
            continue
        key = str(numa) if numa is not None else "?"
        near = [n.split() for n in str(nic).split(",")] if isinstance(nic, str) else []
        links.update(part[1] for part in near if len(part) > 1)
        nic_names = "+".join(part[0] for part in near) or "no NIC"
        groups.setdefault(key, []).append(f"{i}→{nic_names}")
        cpu = store.value(target, "gpu.cpus")
        if isinstance(cpu, str):
            cpus.setdefault(key, cpu)
    via = f" ({'/'.join(sorted(links))})" if links else ""
    return [
        CardLine(
            f"NUMA {key}",
            "GPU " + " ".join(gpus) + via + (f" · CPU {cpus[key]}" if key in cpus else ""),
        )
        for key, gpus in sorted(groups.items())
    ]
