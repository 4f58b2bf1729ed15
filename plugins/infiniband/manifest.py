"""The ``infiniband`` plugin: InfiniBand and RoCE link health, the fabric, port actions.

Importing this module imports neither Textual (panes are named by dotted
path) nor the lab emulation (imported when the lab starts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from console.plugin import PaneSpec, Plugin
from plugins.infiniband.actions import ACTIONS
from plugins.infiniband.checks import CARD_TITLE, CHECKS, alerts, card
from plugins.infiniband.collect import COLLECTORS
from plugins.infiniband.config import InfinibandConfig

if TYPE_CHECKING:  # pragma: no cover
    from console.plugin import LabEmulation


def _lab() -> LabEmulation:
    from plugins.infiniband.lab import InfinibandLab

    return InfinibandLab()


_ALL = tuple(c.id for c in COLLECTORS)

plugin = Plugin(
    name="infiniband",
    description="InfiniBand/RoCE ports (sysfs, ibstat, perfquery), the fabric "
    "(iblinkinfo), clear counters and switch-port actions",
    config_model=InfinibandConfig,
    collectors=COLLECTORS,
    panes=(
        PaneSpec(
            id="infiniband.matrix",
            title="Fabric",
            factory="plugins.infiniband.panes:FabricMatrixPane",
            collectors=("infiniband.ports",),
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
    alerts=alerts,
    lab=_lab,
)
