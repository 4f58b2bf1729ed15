"""The ``infiniband`` plugin: InfiniBand and RoCE link health, the fabric, port actions.

Importing this module imports neither Textual (panes are named by dotted
path) nor the lab emulation (imported when the lab starts).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from console.plugin import PaneSpec, Plugin
from plugins.infiniband.actions import ACTIONS
from plugins.infiniband.checks import CARD_TITLE, CHECKS, card, fabric_alerts, node_alerts
from plugins.infiniband.collect import COLLECTORS
from plugins.infiniband.config import InfinibandConfig
from plugins.infiniband.prom import PROM_COLLECTOR

if TYPE_CHECKING:  # pragma: no cover
    from console.plugin import LabEmulation


def _lab() -> LabEmulation:
    from plugins.infiniband.lab import InfinibandLab

    return InfinibandLab()


_COLLECTORS = (*COLLECTORS, PROM_COLLECTOR)
"""The direct collectors (SSH) and the Prometheus one; the inventory's ``source`` picks."""
_ALL = tuple(c.id for c in _COLLECTORS)

RUNBOOKS = tuple(sorted((Path(__file__).parent / "runbooks").glob("*.yaml")))
"""On-call runbooks for this subsystem's incidents (a site may override them by id)."""

plugin = Plugin(
    name="infiniband",
    description="InfiniBand/RoCE ports (sysfs, ibstat, perfquery), the fabric "
    "(iblinkinfo), clear counters and switch-port actions",
    config_model=InfinibandConfig,
    collectors=_COLLECTORS,
    panes=(
        PaneSpec(
            id="infiniband.matrix",
            title="Fabric",
            factory="plugins.infiniband.panes:FabricMatrixPane",
            collectors=("infiniband.ports", "infiniband.prom"),
        ),
        PaneSpec(
            id="infiniband.ports",
            title="IB/RoCE ports",
            factory="plugins.infiniband.panes:FabricPortsPane",
            collectors=_ALL,
        ),
    ),
    actions=ACTIONS,
    checks=CHECKS,
    card=card,
    card_title=CARD_TITLE,
    alerts=fabric_alerts,
    node_alerts=node_alerts,  # re-judged per node, only when its readings change
    lab=_lab,
    runbooks=RUNBOOKS,
)
