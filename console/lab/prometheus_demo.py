"""``dcc --source prometheus``: the demo read through a real Prometheus, as a large site is.

The lab serves its exporters (one per simulated host); this starts the Debian
package's ``prometheus`` on loopback scraping them every second, and returns
the lab's inventory with a ``prometheus:`` block and ``source: prometheus`` in
the section of every plugin whose emulation serves an exporter. Actions still
go to the simulated hosts and BMCs directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from console.inventory.model import Inventory
from console.lab.exporters import lab_exporters
from console.lab.prometheus_peer import PeerError, PrometheusPeer, find_binary
from console.plugin import Plugin


def exporting_plugins(lab: Any) -> list[str]:
    """Plugins whose lab emulation serves at least one exporter."""
    return sorted(name for name, emu in lab.emulations.items() if getattr(emu, "exporters", None))


def with_prometheus(inventory: Inventory, url: str, plugins: Sequence[str]) -> Inventory:
    """``inventory`` reading ``plugins`` from the Prometheus at ``url``."""
    from console.inventory.load import inventory_from_data

    data = inventory.doc.model_dump(mode="json", exclude_none=True)
    data["prometheus"] = {"url": url}
    for name in plugins:
        data.setdefault("plugins", {}).setdefault(name, {})["source"] = "prometheus"
    return inventory_from_data(data, inventory.source)


async def behind_prometheus(
    lab: Any, plugins: Sequence[Plugin], folder: Path
) -> tuple[Inventory, PrometheusPeer]:
    """Start Prometheus on the lab's exporters; the inventory that reads through it.

    Raises:
        PeerError: prometheus is not installed or did not start.
    """
    if find_binary() is None:
        raise PeerError(
            "--source prometheus needs the prometheus package (sudo scripts/install-peers.sh)"
        )
    jobs = {job: exporter.instances for job, exporter in lab_exporters(lab).items()}
    peer = PrometheusPeer(folder, jobs)
    await asyncio.to_thread(peer.start)
    configurable = {p.name for p in plugins if p.config_model is not None}
    chosen = [n for n in exporting_plugins(lab) if n in configurable]
    return with_prometheus(lab.inventory, peer.url, chosen), peer
