"""The ``power`` plugin: rack power and thermal through IPMI and Redfish BMCs.

Registered through the entry point ``dcconsole.plugins: power =
plugins.power.manifest:plugin``. Importing it imports neither Textual nor aiohttp.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from console.plugin import PaneSpec, Plugin
from plugins.power.actions import ACTIONS
from plugins.power.card import CARD_TITLE, card
from plugins.power.checks import CHECKS, node_alerts, rack_alerts
from plugins.power.collect import COLLECTORS
from plugins.power.config import PowerConfig

if TYPE_CHECKING:  # pragma: no cover
    from console.plugin import LabEmulation


def _lab() -> LabEmulation:
    from plugins.power.lab import PowerLab

    return PowerLab()


_COLLECTOR_IDS = tuple(c.id for c in COLLECTORS)

RUNBOOKS = tuple(sorted((Path(__file__).parent / "runbooks").glob("*.yaml")))
"""On-call runbooks for this subsystem's incidents (a site may override them by id)."""

LONG_HISTORY = frozenset({"power.power_w"})
"""Read far back: a node's typical draw (for the power-on budget) is its recent maximum."""

plugin = Plugin(
    name="power",
    description="Rack power and thermal through BMCs (IPMI, Redfish); power actions",
    config_model=PowerConfig,
    collectors=COLLECTORS,
    panes=(
        PaneSpec(
            id="power.racks",
            title="Rack elevation",
            factory="plugins.power.panes:RackElevationPane",
            collectors=_COLLECTOR_IDS,
        ),
        PaneSpec(
            id="power.room",
            title="Room power and thermal",
            factory="plugins.power.panes:RoomSummaryPane",
            collectors=_COLLECTOR_IDS,
        ),
    ),
    actions=ACTIONS,
    checks=CHECKS,
    card=card,
    card_title=CARD_TITLE,
    alerts=rack_alerts,
    node_alerts=node_alerts,  # re-judged per node, only when its readings change
    lab=_lab,
    runbooks=RUNBOOKS,
    long_history=LONG_HISTORY,
)
