"""A lab of N generated GPU hosts (`dcc lab --hosts N`) for tests: the `fleet_lab` fixture.

Every host has its own loopback address (127.1.x.y) and its BMC another
(127.2.x.y), as `dcc lab --hosts` runs them; the plugins' emulations answer
SSH, Redfish and the exporters. Ask for another size with
``@pytest.mark.parametrize("fleet_lab", [200], indirect=True)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from console.inventory import apply_plugin_configs
from console.inventory.load import inventory_from_data
from console.inventory.model import Inventory
from console.lab import Lab
from console.lab.fleet import fleet_document
from console.lab.limits import FDS_PER_HOST_WITH_CLIENT, ensure_fd_budget
from console.registry import discover

FLEET_HOSTS = 50


@asynccontextmanager
async def running_fleet(state_dir: Path, hosts: int = FLEET_HOSTS) -> AsyncIterator[Lab]:
    """A started fleet lab in this process (the test's clients share its open-file limit)."""
    ensure_fd_budget(hosts, FDS_PER_HOST_WITH_CLIENT)
    lab = Lab(
        inventory_from_data(fleet_document(hosts), None),
        state_dir,
        discover().plugins,
        scenario=None,
        spread=True,
    )
    await lab.start()
    try:
        yield lab
    finally:
        await lab.stop()


def configured(lab: Lab) -> Inventory:
    """The lab's inventory with every plugin's section validated, as a session has it."""
    return apply_plugin_configs(lab.inventory, {p.name: p.config_model for p in lab.plugins})
