"""The ``services`` plugin: HTTP, TCP and systemd health of the platform services.

Registered through the entry point ``dcconsole.plugins: services =
plugins.services.manifest:plugin``, exactly as a third-party plugin would be.
Importing this module imports neither Textual (the pane is named by its dotted
path) nor aiohttp (the lab emulation is imported when the lab starts).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from console.plugin import PaneSpec, Plugin
from plugins.services.actions import ACTIONS
from plugins.services.card import CARD_TITLE, card
from plugins.services.checks import CHECKS, alerts
from plugins.services.collect import COLLECTORS
from plugins.services.config import ServicesConfig
from plugins.services.s3 import PROBES

if TYPE_CHECKING:  # pragma: no cover
    from console.plugin import LabEmulation


def _lab() -> LabEmulation:
    from plugins.services.lab import ServicesLab

    return ServicesLab()


RUNBOOKS = tuple(sorted((Path(__file__).parent / "runbooks").glob("*.yaml")))
"""On-call runbooks for this subsystem's incidents (a site may override them by id)."""

plugin = Plugin(
    name="services",
    description="Platform services: HTTP/TCP health endpoints and systemd units, restart action",
    config_model=ServicesConfig,
    collectors=COLLECTORS,
    panes=(
        PaneSpec(
            id="services.status",
            title="Services",
            factory="plugins.services.panes:ServicesPane",
            collectors=tuple(c.id for c in COLLECTORS),
        ),
    ),
    actions=ACTIONS,
    checks=CHECKS,
    card=card,
    card_title=CARD_TITLE,
    alerts=alerts,
    lab=_lab,
    data_probes=PROBES,
    runbooks=RUNBOOKS,
)
