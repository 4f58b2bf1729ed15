"""The ``slurm`` plugin: nodes, queue and partitions of Slurm clusters; drain/resume/reboot
and job actions.

Registered through the entry point ``dcconsole.plugins: slurm =
plugins.slurm.manifest:plugin``. Importing it imports neither Textual (the pane
is named by its dotted path) nor the lab.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from console.plugin import PaneSpec, Plugin
from plugins.slurm.actions import ACTIONS
from plugins.slurm.card import CARD_TITLE, card
from plugins.slurm.checks import CHECKS, alerts
from plugins.slurm.collect import COLLECTORS
from plugins.slurm.config import SlurmConfig
from plugins.slurm.prom import PROM_COLLECTOR

if TYPE_CHECKING:  # pragma: no cover
    from console.plugin import LabEmulation


def _lab() -> LabEmulation:
    from plugins.slurm.lab import SlurmLab

    return SlurmLab()


plugin = Plugin(
    name="slurm",
    description="Slurm: node states and reasons, the queue and GPU use; drain, resume, "
    "reboot, job hold/release/requeue/cancel",
    config_model=SlurmConfig,
    collectors=(*COLLECTORS, PROM_COLLECTOR),
    panes=(
        PaneSpec(
            id="slurm.queue",
            title="Slurm queue",
            factory="plugins.slurm.panes:SlurmQueuePane",
            collectors=(*(c.id for c in COLLECTORS), PROM_COLLECTOR.id),
        ),
    ),
    actions=ACTIONS,
    checks=CHECKS,
    card=card,
    card_title=CARD_TITLE,
    alerts=alerts,
    lab=_lab,
)
