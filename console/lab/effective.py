"""The inventory as the lab serves it: every address pointed at the lab.

Each node gets its own SSH port, so the written document declares one group
per node (a group has one port). Everything else (racks, roles, hardware,
clusters, labels) is kept; plugin sections go through the emulations'
``rewrite_config`` to get the lab's HTTP ports.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from console.inventory.model import Inventory, InventoryDoc, Node, NodeGroup, SshAccess

if TYPE_CHECKING:  # pragma: no cover
    from console.plugin import LabEmulation, Plugin

log = logging.getLogger(__name__)


def resolve_doc(doc: InventoryDoc, source: Path | None = None) -> Inventory:
    """Resolve a document through the inventory loader (node sets, SSH defaults, paths)."""
    from console.inventory.load import inventory_from_data

    return inventory_from_data(doc.model_dump(mode="json", exclude_none=True), source)


def lab_ssh(bind: str, port: int, user: str, state_dir: Path) -> SshAccess:
    return SshAccess(
        host=bind,
        port=port,
        user=user,
        identity=f"file:{state_dir / 'id_ed25519'}",
        known_hosts=str(state_dir / "known_hosts"),
    )


def effective_inventory(
    inv: Inventory,
    ports: Mapping[str, int],
    bind: str,
    state_dir: Path,
    emulations: Mapping[str, LabEmulation],
    plugins: Sequence[Plugin],
    *,
    addresses: Mapping[str, str] | None = None,
) -> Inventory:
    """The inventory a console uses to reach this lab.

    ``addresses`` gives each host's own loopback address (a spread lab);
    otherwise every host is on ``bind``.
    """
    nodes: dict[str, Node] = {}
    groups: list[NodeGroup] = []
    for name, node in inv.nodes.items():
        host = addresses.get(name, bind) if addresses is not None else bind
        ssh = lab_ssh(host, ports[name], node.ssh.user, state_dir)
        nodes[name] = node.model_copy(update={"ssh": ssh})
        groups.append(
            NodeGroup(
                nodes=name,
                role=node.role,
                rack=node.rack,
                u_start=node.u,
                u_height=node.u_height,
                ssh=ssh,
                bmc=node.bmc,
                hardware=node.hardware,
                clusters=node.clusters,
                labels=node.labels,
                exporters=node.exporters,
            )
        )
    sections: dict[str, dict[str, Any]] = {}
    for pname, section in inv.doc.plugins.items():
        emu = emulations.get(pname)
        sections[pname] = emu.rewrite_config(dict(section)) if emu is not None else dict(section)
    default_user = inv.doc.ssh.user
    doc = inv.doc.model_copy(
        update={
            "nodes": groups,
            "plugins": sections,
            "demo": True,
            "ssh": lab_ssh(bind, 22, default_user, state_dir),
        }
    )
    source = state_dir / "inventory.yaml"
    hooks = [e for e in emulations.values() if hasattr(e, "rewrite_inventory")]
    if hooks:
        # Emulations that serve more than their plugin section (BMC addresses on the
        # nodes, a cluster's API endpoint) rewrite the whole document; it is then
        # resolved again so nodes, clusters and sections agree.
        data = doc.model_dump(mode="json", exclude_none=True)
        for emu in hooks:
            data = emu.rewrite_inventory(data)
        resolved = resolve_doc(InventoryDoc.model_validate(data), source)
        doc, nodes, sections = resolved.doc, resolved.nodes, dict(resolved.doc.plugins)
    configs: dict[str, Any] = {}
    for plugin in plugins:
        if plugin.config_model is not None and plugin.name in sections:
            configs[plugin.name] = plugin.config_model.model_validate(
                sections[plugin.name], context={"nodes": frozenset(nodes)}
            )
    return Inventory(source=source, doc=doc, nodes=nodes, plugin_configs=configs)


def dump_inventory(inv: Inventory, path: Path) -> None:
    """Write the effective inventory as a YAML document ``dcc --inventory`` reads."""
    data = inv.doc.model_dump(mode="json", exclude_none=True)
    text = (
        "# Written by `dcc lab`: the simulated datacenter's addresses. Regenerated at\n"
        "# every start (the ports change); do not edit.\n"
        + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
