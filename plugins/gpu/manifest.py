"""The ``gpu`` plugin: GPU and MIG state across the fleet (nvidia-smi over SSH, or NVML).

Importing this module imports neither Textual nor pynvml.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from console.plugin import PaneSpec, Plugin
from plugins.gpu.actions import ACTIONS
from plugins.gpu.card import CARD_TITLE, card
from plugins.gpu.checks import CHECKS, node_alerts
from plugins.gpu.collect import COLLECTORS
from plugins.gpu.config import GpuConfig

if TYPE_CHECKING:  # pragma: no cover
    from console.plugin import LabEmulation


def _lab() -> LabEmulation:
    from plugins.gpu.lab import GpuLab

    return GpuLab()


_IDS = tuple(c.id for c in COLLECTORS)


def _pane(pid: str, title: str, cls: str, collectors: tuple[str, ...] = _IDS) -> PaneSpec:
    return PaneSpec(id=pid, title=title, factory=f"plugins.gpu.panes:{cls}", collectors=collectors)


RUNBOOKS = tuple(sorted((Path(__file__).parent / "runbooks").glob("*.yaml")))
"""On-call runbooks for this subsystem's incidents (a site may override them by id)."""

LONG_HISTORY = frozenset({"gpu.util_pct"})
"""Read far back: how long a GPU has been idle is counted back through its utilisation."""

plugin = Plugin(
    name="gpu",
    description="GPU and MIG state: nvidia-smi over SSH or NVML, XIDs, ECC, resets and MIG actions",
    config_model=GpuConfig,
    collectors=COLLECTORS,
    panes=(
        _pane("gpu.grid", "GPU fleet", "GpuGridPane"),
        _pane("gpu.idle", "Idle but allocated", "IdleAllocatedPane"),
        _pane("gpu.unhealthy", "Busy but unhealthy", "UnhealthyPane"),
        _pane("gpu.drift", "Driver/CUDA drift", "DriftPane", ("gpu.full", "gpu.prom")),
    ),
    actions=ACTIONS,
    checks=CHECKS,
    card=card,
    card_title=CARD_TITLE,
    node_alerts=node_alerts,  # every GPU rule is about one node: re-judged only on change
    lab=_lab,
    runbooks=RUNBOOKS,
    long_history=LONG_HISTORY,
)
