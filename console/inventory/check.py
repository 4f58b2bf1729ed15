"""Checks across the inventory that a schema alone cannot make.

Node sets parse, nodes are unique, references point at something declared,
racks are not over-filled. Each problem names its field and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from console.inventory.model import InventoryDoc, NodeGroup
from console.inventory.nodeset import NodeSetError, expand, fold
from console.inventory.problems import Loc, Problem, did_you_mean, format_loc
from console.inventory.yamlio import LineMap

HOST_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62})$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
PLACEHOLDERS = ("name", "index", "num")
TRAILING_NUMBER = re.compile(r"(\d+)$")


@dataclass(slots=True)
class _Ctx:
    doc: InventoryDoc
    lines: LineMap
    file: str
    problems: list[Problem]

    def add(self, loc: Loc, message: str, hint: str = "") -> None:
        self.problems.append(
            Problem(self.file, self.lines.line(loc), format_loc(loc), message, hint)
        )

    def line(self, loc: Loc) -> int | None:
        return self.lines.line(loc)


def check_document(
    doc: InventoryDoc, lines: LineMap, file: str
) -> tuple[list[Problem], list[list[str]]]:
    """Problems with ``doc``, and each group's node names (empty where it did not parse)."""
    ctx = _Ctx(doc, lines, file, [])
    racks = _check_racks(ctx)
    names = _check_groups(ctx)
    _check_references(ctx, racks, names)
    _check_placement(ctx, racks, names)
    _check_templates(ctx, names)
    ctx.problems.sort(key=lambda p: (p.line or 0, p.field))
    return ctx.problems, names


def _check_racks(ctx: _Ctx) -> dict[str, int]:
    """Rack name -> its units; duplicates reported."""
    racks: dict[str, int] = {}
    where: dict[str, Loc] = {}
    rooms: dict[str, Loc] = {}
    for r, room in enumerate(ctx.doc.rooms):
        if room.name in rooms:
            first = rooms[room.name]
            ctx.add(
                ("rooms", r, "name"),
                f"room {room.name!r} is declared twice: {format_loc(first)} (line "
                f"{ctx.line(first)}) and here",
                "give each room its own name",
            )
        rooms.setdefault(room.name, ("rooms", r, "name"))
        for k, rack in enumerate(room.racks):
            loc: Loc = ("rooms", r, "racks", k, "name")
            if rack.name in where:
                first = where[rack.name]
                ctx.add(
                    loc,
                    f"rack {rack.name!r} is declared twice: {format_loc(first)} (line "
                    f"{ctx.line(first)}) and {format_loc(loc)}",
                    "rack names must be unique across the site",
                )
                continue
            where[rack.name] = loc
            racks[rack.name] = rack.units
    return racks


def _check_groups(ctx: _Ctx) -> list[list[str]]:
    names: list[list[str]] = []
    owner: dict[str, int] = {}
    for g, group in enumerate(ctx.doc.nodes):
        loc: Loc = ("nodes", g, "nodes")
        try:
            members = expand(group.nodes)
        except NodeSetError as exc:
            ctx.add(
                loc,
                f"the node set does not parse: {exc}",
                "write it like gpu[001-016] or cpu01,cpu02",
            )
            names.append([])
            continue
        bad = [n for n in members if not HOST_NAME.match(n)]
        if bad:
            ctx.add(
                loc,
                f"{bad[0]!r} is not a valid host name",
                "use ASCII letters, digits, '-', '.' and '_' (at most 63 characters)",
            )
            names.append([])
            continue
        clashes: dict[int, list[str]] = {}
        for name in members:
            if name in owner:
                clashes.setdefault(owner[name], []).append(name)
            else:
                owner[name] = g
        for first, dup in clashes.items():
            first_loc: Loc = ("nodes", first, "nodes")
            ctx.add(
                loc,
                f"node {fold(dup)} is declared twice: in {format_loc(first_loc)} (line "
                f"{ctx.line(first_loc)}) and in {format_loc(loc)} (line {ctx.line(loc)})",
                "each node belongs to exactly one group; remove it from one of them",
            )
        names.append(members)
    return names


def _check_references(ctx: _Ctx, racks: dict[str, int], names: list[list[str]]) -> None:
    clusters = ctx.doc.clusters
    for g, group in enumerate(ctx.doc.nodes):
        if group.rack is not None and group.rack not in racks:
            ctx.add(
                ("nodes", g, "rack"),
                f"rack {group.rack!r} is not declared under rooms",
                did_you_mean(group.rack, racks, "declared racks"),
            )
        if group.u_start is not None and group.rack is None:
            ctx.add(
                ("nodes", g, "u_start"),
                "u_start is set but the group has no rack",
                "add rack: NAME",
            )
        member = group.clusters
        if member.kubernetes is not None and member.kubernetes not in clusters.kubernetes:
            ctx.add(
                ("nodes", g, "clusters", "kubernetes"),
                f"kubernetes cluster {member.kubernetes!r} is not declared under "
                "clusters.kubernetes",
                did_you_mean(member.kubernetes, clusters.kubernetes, "declared clusters"),
            )
        if member.slurm is not None and member.slurm not in clusters.slurm:
            ctx.add(
                ("nodes", g, "clusters", "slurm"),
                f"slurm cluster {member.slurm!r} is not declared under clusters.slurm",
                did_you_mean(member.slurm, clusters.slurm, "declared clusters"),
            )
    all_names = {n for group in names for n in group}
    for cname, slurm in clusters.slurm.items():
        for key in ("controller", "backup_controller"):
            host = getattr(slurm, key)
            if host is not None and host not in all_names:
                ctx.add(
                    ("clusters", "slurm", cname, key),
                    f"the slurm {key.replace('_', ' ')} {host!r} is not a node of this inventory",
                    did_you_mean(host, all_names, "nodes"),
                )


def _check_placement(ctx: _Ctx, racks: dict[str, int], names: list[list[str]]) -> None:
    slots: dict[tuple[str, int], tuple[str, int]] = {}
    for g, group in enumerate(ctx.doc.nodes):
        if group.rack is None or group.u_start is None or group.rack not in racks:
            continue
        loc: Loc = ("nodes", g, "u_start")
        units, h = racks[group.rack], group.u_height
        overlapped: set[int] = set()
        for i, name in enumerate(names[g]):
            u = group.u_start + i * h
            if u + h - 1 > units:
                ctx.add(
                    loc,
                    f"{name} would sit at U{u}-U{u + h - 1}, beyond the {units} units of rack "
                    f"{group.rack}",
                    "lower u_start, or put some of these nodes in another rack",
                )
                break
            for slot in range(u, u + h):
                other = slots.get((group.rack, slot))
                if other is not None and other[1] not in overlapped:
                    overlapped.add(other[1])
                    other_loc: Loc = ("nodes", other[1], "u_start")
                    ctx.add(
                        loc,
                        f"{name} at U{u}-U{u + h - 1} overlaps {other[0]} of "
                        f"{format_loc(other_loc)} (line {ctx.line(other_loc)}) in rack "
                        f"{group.rack}",
                        "change u_start so the groups' U slots do not overlap",
                    )
                slots.setdefault((group.rack, slot), (name, g))


def _check_templates(ctx: _Ctx, names: list[list[str]]) -> None:
    def check(loc: Loc, text: str, members: list[str]) -> None:
        for ph in PLACEHOLDER.findall(text):
            if ph not in PLACEHOLDERS:
                ctx.add(loc, f"unknown placeholder {{{ph}}}", "use {name}, {index} or {num}")
                return
        if "{num}" in text:
            plain = [n for n in members if not TRAILING_NUMBER.search(n)]
            if plain:
                ctx.add(
                    loc,
                    f"{{num}} needs a number at the end of the node name; {plain[0]!r} has none",
                    "use {name} or {index} instead",
                )

    check(("ssh", "host"), ctx.doc.ssh.host, _inherits_host(ctx.doc.nodes, names))
    for g, group in enumerate(ctx.doc.nodes):
        if group.ssh is not None and "host" in group.ssh.model_fields_set:
            check(("nodes", g, "ssh", "host"), group.ssh.host, names[g])
        if group.bmc is not None:
            check(("nodes", g, "bmc", "address"), group.bmc.address, names[g])


def _inherits_host(groups: list[NodeGroup], names: list[list[str]]) -> list[str]:
    """Nodes whose SSH host comes from the inventory-level default."""
    return [
        n
        for group, members in zip(groups, names, strict=True)
        if group.ssh is None or "host" not in group.ssh.model_fields_set
        for n in members
    ]
