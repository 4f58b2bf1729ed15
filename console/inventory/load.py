"""Loading an inventory: YAML -> checked document -> resolved nodes.

Everything wrong is collected and raised together as one InventoryError, each
problem naming file, line and field, so one run of ``dcc check`` shows all of
them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from console.inventory.check import TRAILING_NUMBER, check_document
from console.inventory.model import BmcAccess, Inventory, InventoryDoc, Node, SshAccess
from console.inventory.problems import InventoryError, Problem, did_you_mean
from console.inventory.validate import problems_from_validation, validate_document
from console.inventory.yamlio import LineMap, read_yaml_file

_NO_FILE = "<inventory>"


def load_inventory(path: str | Path) -> Inventory:
    """Load, check and resolve the inventory at ``path``.

    Raises:
        InventoryError: with every problem found (file, line, field, hint).
    """
    given = Path(path)
    data, lines = read_yaml_file(given, str(given))
    return _resolve_all(data, lines, str(given), given.absolute())


def inventory_from_data(data: dict[str, Any], source: Path | None = None) -> Inventory:
    """Check and resolve an inventory given as plain data (no line numbers).

    ``source`` is where relative paths inside are relative to (its folder).
    """
    label = str(source) if source is not None else _NO_FILE
    return _resolve_all(data, LineMap(), label, source.absolute() if source else None)


def _resolve_all(data: Any, lines: LineMap, label: str, source: Path | None) -> Inventory:
    doc = validate_document(
        data,
        InventoryDoc,
        lines,
        label,
        what="the inventory must be a mapping (site:, rooms:, nodes: ...)",
        example="inventory/example-site.yaml",
    )
    problems, names = check_document(doc, lines, label)
    if problems:
        raise InventoryError(problems)
    inventory = Inventory(source=source, doc=doc, nodes=_nodes(doc, names, source))
    inventory._lines = dict(lines.lines)
    inventory._label = label
    return inventory


def _nodes(doc: InventoryDoc, names: list[list[str]], source: Path | None) -> dict[str, Node]:
    base = source.parent if source is not None else Path.cwd()
    room_of = {rack.name: room.name for room in doc.rooms for rack in room.racks}
    nodes: dict[str, Node] = {}
    for group, members in zip(doc.nodes, names, strict=True):
        ssh = _absolute_ssh(_overlay(doc.ssh, group.ssh), base)
        bmc = _absolute_bmc(group.bmc, base) if group.bmc is not None else None
        for i, name in enumerate(members):
            values = _template_values(name, i + 1)
            u = group.u_start + i * group.u_height if group.u_start is not None else None
            nodes[name] = Node(
                name=name,
                role=group.role,
                room=room_of.get(group.rack) if group.rack else None,
                rack=group.rack,
                u=u,
                u_height=group.u_height,
                index=i + 1,
                ssh=ssh.model_copy(update={"host": _fill(ssh.host, values)}),
                bmc=bmc.model_copy(update={"address": _fill(bmc.address, values)})
                if bmc is not None
                else None,
                hardware=group.hardware,
                clusters=group.clusters,
                labels=group.labels,
                exporters={k: _fill(v, values) for k, v in group.exporters.items()},
            )
    return nodes


def _overlay(defaults: SshAccess, group: SshAccess | None) -> SshAccess:
    """The inventory's SSH defaults with the fields the group wrote on top."""
    if group is None:
        return defaults
    return defaults.model_copy(update={k: getattr(group, k) for k in group.model_fields_set})


def _absolute(path: str, base: Path) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (base / p).absolute())


def _absolute_ref(ref: str | None, base: Path) -> str | None:
    if ref is None or not ref.startswith("file:"):
        return ref
    return "file:" + _absolute(ref.removeprefix("file:"), base)


def _absolute_ssh(ssh: SshAccess, base: Path) -> SshAccess:
    return ssh.model_copy(
        update={
            "identity": _absolute_ref(ssh.identity, base),
            "known_hosts": _absolute(ssh.known_hosts, base) if ssh.known_hosts else None,
        }
    )


def _absolute_bmc(bmc: BmcAccess, base: Path) -> BmcAccess:
    return bmc.model_copy(
        update={
            "password": _absolute_ref(bmc.password, base),
            "ca_file": _absolute(bmc.ca_file, base) if bmc.ca_file else None,
        }
    )


def _template_values(name: str, index: int) -> dict[str, str]:
    match = TRAILING_NUMBER.search(name)
    values = {"{name}": name, "{index}": str(index)}
    if match:
        values["{num}"] = str(int(match.group(1)))
    return values


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def prometheus_names(doc: InventoryDoc) -> frozenset[str]:
    """Names a plugin section's ``prometheus: NAME`` may use (``default``: the top-level block)."""
    names = set(doc.prometheus_servers)
    if doc.prometheus is not None:
        names.add("default")
    return frozenset(names)


def apply_plugin_configs(
    inventory: Inventory, models: Mapping[str, type[BaseModel] | None]
) -> Inventory:
    """Validate each ``plugins.<name>`` section with that plugin's config model.

    Returns a copy with ``plugin_configs`` filled: the validated model per
    plugin, or the model's defaults for a plugin without a section (when its
    model has defaults for everything).

    Raises:
        InventoryError: for a section that does not validate, or one for a
            plugin that is not installed.
    """
    label = inventory.label
    lines = LineMap(dict(inventory._lines))
    problems: list[Problem] = []
    configs: dict[str, Any] = {}
    for name, section in inventory.doc.plugins.items():
        loc = ("plugins", name)
        if name not in models:
            hint = did_you_mean(name, models, "installed plugins")
            if not models:
                hint = "no plugins are installed; run `dcc plugins` to see why"
            problems.append(
                Problem(
                    label,
                    lines.line(loc),
                    f"plugins.{name}",
                    f"plugin {name!r} is not installed",
                    hint,
                )
            )
            continue
        model = models[name]
        if model is None:
            if section:
                problems.append(
                    Problem(
                        label,
                        lines.line(loc),
                        f"plugins.{name}",
                        f"plugin {name!r} takes no configuration",
                        f"remove the plugins.{name} section",
                    )
                )
            continue
        try:
            # Node names go in as context so a plugin can refuse a dangling node reference
            # with the field's own path and line.
            configs[name] = model.model_validate(
                section if section is not None else {},
                context={
                    "nodes": frozenset(inventory.nodes),
                    "prometheus_servers": prometheus_names(inventory.doc),
                },
            )
        except ValidationError as exc:
            problems.extend(problems_from_validation(exc, model, lines, label, prefix=loc))
    for name, model in models.items():
        if model is not None and name not in configs and name not in inventory.doc.plugins:
            # A model without defaults for everything needs a section; without one the
            # plugin runs with no config (its collectors see None).
            with contextlib.suppress(ValidationError):
                configs[name] = model()
    if problems:
        raise InventoryError(problems)
    return inventory.model_copy(update={"plugin_configs": configs})
