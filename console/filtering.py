"""The `/` filter: which nodes an operator wants to see.

Terms are separated by spaces or commas and their matches are added up:
- a node set, ``gpu[001-004]`` or ``cpu01``;
- a group, ``@rack:R01``, ``@room:hall-a``, ``@role:gpu-train``, ``@slurm:train``,
  ``@k8s:prod``, ``@partition:batch``, ``@label:key=value``;
- anything else matches node names containing it (``gpu00``).
"""

from __future__ import annotations

from collections.abc import Callable

from console.inventory.model import Inventory, Node

GROUPS: dict[str, Callable[[Node, str], bool]] = {
    "rack": lambda n, v: (n.rack or "").lower() == v.lower(),
    "room": lambda n, v: (n.room or "").lower() == v.lower(),
    "role": lambda n, v: n.role == v.lower(),
    "slurm": lambda n, v: n.clusters.slurm == v,
    "k8s": lambda n, v: n.clusters.kubernetes == v,
    "kubernetes": lambda n, v: n.clusters.kubernetes == v,
    "partition": lambda n, v: v in n.clusters.partitions,
    "zone": lambda n, v: n.clusters.zone == v,
    "label": lambda n, v: "=" in v and n.labels.get(v.split("=", 1)[0]) == v.split("=", 1)[1],
}


class FilterError(ValueError):
    """The filter text cannot be understood; the message says which term and why."""


def _terms(text: str) -> list[str]:
    """Split on spaces and on commas outside brackets, so ``gpu[001,003]`` stays one term."""
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        if ch.isspace() or (ch == "," and depth == 0):
            if current:
                terms.append("".join(current))
            current = []
            depth = 0 if ch.isspace() else depth
        else:
            current.append(ch)
    if current:
        terms.append("".join(current))
    return terms


def parse_filter(text: str, inventory: Inventory) -> frozenset[str] | None:
    """The node names matching ``text``; None for an empty filter (everything)."""
    from console.inventory.nodeset import NodeSetError, expand

    terms = _terms(text)
    if not terms:
        return None
    names: set[str] = set()
    for term in terms:
        if term.startswith("@"):
            kind, _, value = term[1:].partition(":")
            match = GROUPS.get(kind)
            if match is None or not value:
                known = ", ".join(f"@{k}:" for k in GROUPS)
                raise FilterError(f"{term}: unknown group (known: {known})")
            names.update(n.name for n in inventory.nodes.values() if match(n, value))
        elif "[" in term:
            try:
                wanted = expand(term)
            except NodeSetError as exc:
                raise FilterError(f"{term}: not a node set ({exc})") from exc
            names.update(n for n in wanted if n in inventory.nodes)
        elif term in inventory.nodes:
            names.add(term)
        else:
            names.update(n for n in inventory.nodes if term.lower() in n.lower())
    return frozenset(names)
