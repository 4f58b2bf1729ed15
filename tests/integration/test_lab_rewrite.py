"""An emulation may point more than its plugin section at the lab (BMCs, cluster APIs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from console.inventory import load_inventory
from console.lab import Lab
from console.plugin import Plugin
from tests.integration.conftest import LabTestEmulation, small_inventory


class BmcEmulation(LabTestEmulation):
    """Serves every node's BMC on one loopback port (as a Redfish emulation would)."""

    def rewrite_inventory(self, data: dict[str, Any]) -> dict[str, Any]:
        for group in data["nodes"]:
            group["bmc"] = {"address": "127.0.0.1", "port": 18443, "protocol": "redfish"}
        data["clusters"] = {"slurm": {"lab": {"controller": "cpu01"}}}
        return data


async def test_rewrite_inventory_reaches_nodes_clusters_and_the_written_file(
    tmp_path: Path,
) -> None:
    emu = BmcEmulation()
    plugin = Plugin(name="labtest", description="bmc test", lab=lambda: emu)
    lab = Lab(small_inventory(), tmp_path / "lab", [plugin])
    await lab.start()
    try:
        inv = lab.inventory
        assert {(n.bmc.address, n.bmc.port) for n in inv.nodes.values() if n.bmc} == {
            ("127.0.0.1", 18443)
        }
        assert len([n for n in inv.nodes.values() if n.bmc]) == len(inv.nodes)
        assert inv.doc.clusters.slurm["lab"].controller == "cpu01"
        assert inv.nodes["cpu01"].ssh.port != 22  # the frame's own rewrite still holds
        written = tmp_path / "lab" / "inventory.yaml"
        assert yaml.safe_load(written.read_text())["nodes"][0]["bmc"]["port"] == 18443
        assert load_inventory(written).nodes["gpu01"].bmc is not None
    finally:
        await lab.stop()
