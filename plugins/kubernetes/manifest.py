"""The ``kubernetes`` plugin: nodes, GPUs and pending pods of Kubernetes clusters, live.

Registered through the entry point ``dcconsole.plugins: kubernetes =
plugins.kubernetes.manifest:plugin``. Importing this module imports neither
Textual (the pane is named by its dotted path) nor the lab emulation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from console.plugin import PaneSpec, Plugin
from plugins.kubernetes.actions import ACTIONS
from plugins.kubernetes.card import CARD_TITLE, card
from plugins.kubernetes.checks import CHECKS, alerts
from plugins.kubernetes.collect import COLLECTORS
from plugins.kubernetes.config import KubernetesConfig
from plugins.kubernetes.prom import PROM_COLLECTOR
from plugins.kubernetes.watch import stop_all

if TYPE_CHECKING:  # pragma: no cover
    from console.plugin import LabEmulation


def _lab() -> LabEmulation:
    from plugins.kubernetes.lab import KubernetesLab

    return KubernetesLab()


plugin = Plugin(
    name="kubernetes",
    description="Kubernetes: nodes, GPUs (MIG), pending pods, GPU Operator; cordon/drain",
    config_model=KubernetesConfig,
    collectors=(*COLLECTORS, PROM_COLLECTOR),
    panes=(
        PaneSpec(
            id="kubernetes.queue",
            title="Kubernetes queue",
            factory="plugins.kubernetes.panes:KubernetesQueuePane",
            collectors=(*(c.id for c in COLLECTORS), PROM_COLLECTOR.id),
        ),
    ),
    actions=ACTIONS,
    checks=CHECKS,
    card=card,
    card_title=CARD_TITLE,
    alerts=alerts,
    lab=_lab,
    shutdown=stop_all,
)
