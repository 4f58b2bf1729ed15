"""The rollout planner: pure functions from a rollout and an inventory to waves.

- The targets are resolved once (node set -> inventory nodes) and refused when
  empty, unknown, larger than declared, or the whole site without a typed count.
- A canary node goes first, alone. The rest is cut into waves by first-fit so
  that no wave takes more than the caps allow from one rack, one IB leaf switch
  (node label ``ib_leaf``), one Slurm partition or one Kubernetes zone, nor more
  than ``max_pool_pct`` of any pool (a role, a partition, a zone: counted over
  the whole inventory, not only the targets).
- The plan carries a hash over the resolved targets, their domains and the
  waves: the executor recomputes it and refuses to run a plan whose inventory
  changed since review.
- ``gate_fails`` is the threshold rule: halt when failures are *strictly more*
  than p% (exact rational arithmetic, so the boundary is exact).

Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from console.inventory.model import Inventory, Node
from console.inventory.nodeset import NodeSetError, expand
from console.inventory.problems import InventoryError, Problem, did_you_mean
from console.wizards.rollout_model import Caps, Gate, Rollout

IB_LEAF_LABEL = "ib_leaf"
"""The node label naming the InfiniBand leaf switch a node hangs off."""


@dataclass(frozen=True, slots=True)
class NodeDomains:
    """The failure domains and pools one target node belongs to (from the inventory)."""

    name: str
    rack: str | None = None
    ib_leaf: str | None = None
    partitions: tuple[str, ...] = ()
    """``<slurm cluster>/<partition>``."""
    zone: str | None = None
    """``<kubernetes cluster>/<zone>``."""
    pools: tuple[str, ...] = ()
    """``role:gpu-train``, ``partition:train/gpu``, ``zone:k8s/infer``."""
    slurm: str | None = None
    kubernetes: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "rack": self.rack,
            "ib_leaf": self.ib_leaf,
            "partitions": list(self.partitions),
            "zone": self.zone,
            "pools": list(self.pools),
            "slurm": self.slurm,
            "kubernetes": self.kubernetes,
        }


@dataclass(frozen=True, slots=True)
class Wave:
    index: int
    """0 is the canary."""
    nodes: tuple[str, ...]
    canary: bool = False

    @property
    def label(self) -> str:
        return "canary" if self.canary else f"wave {self.index}"


@dataclass(frozen=True, slots=True)
class Plan:
    """What will run, in which order; the same object the executor runs."""

    rollout: Rollout
    targets: tuple[NodeDomains, ...]
    waves: tuple[Wave, ...]
    pool_sizes: Mapping[str, int]
    pool_allowance: Mapping[str, int]
    """How many nodes of each pool one wave may hold."""
    warnings: tuple[str, ...] = ()
    plan_hash: str = field(default="")

    @property
    def name(self) -> str:
        return self.rollout.doc.name

    def domains(self, node: str) -> NodeDomains:
        return next(t for t in self.targets if t.name == node)


def node_domains(node: Node) -> NodeDomains:
    """The domains of one node, from the inventory's data only."""
    member = node.clusters
    partitions = tuple(f"{member.slurm or '-'}/{p}" for p in member.partitions)
    zone = f"{member.kubernetes or '-'}/{member.zone}" if member.zone else None
    pools = (
        f"role:{node.role}",
        *(f"partition:{p}" for p in partitions),
        *((f"zone:{zone}",) if zone else ()),
    )
    return NodeDomains(
        name=node.name,
        rack=node.rack,
        ib_leaf=node.labels.get(IB_LEAF_LABEL),
        partitions=partitions,
        zone=zone,
        pools=pools,
        slurm=member.slurm,
        kubernetes=member.kubernetes,
    )


def resolve_targets(rollout: Rollout, inventory: Inventory) -> list[str]:
    """The target node names, in written order; refuses what must not run.

    Raises:
        InventoryError: an unreadable node set, names not in the inventory, an
            empty or oversized set, a count that differs from ``expect_count``.
    """
    doc, label = rollout.doc, rollout.label

    def refuse(field_name: str, message: str, hint: str) -> InventoryError:
        line = rollout.line_of(field_name)
        return InventoryError([Problem(label, line, field_name, message, hint)])

    try:
        names = expand(doc.targets)
    except (NodeSetError, ValueError) as exc:
        if "names no node" in str(exc):  # operators that cancel out: an empty set
            names = []
        else:
            raise refuse("targets", f"not a node set: {exc}", "write e.g. gpu[001-008]") from None
    unknown = [n for n in names if n not in inventory.nodes]
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise refuse(
            "targets",
            f"{len(unknown)} target(s) not in the inventory {inventory.label}: {shown}",
            did_you_mean(unknown[0], inventory.nodes, "nodes"),
        )
    if not names:
        raise refuse("targets", "the targets match no node", "a rollout needs at least one node")
    count = len(names)
    if count > doc.max_targets:
        raise refuse(
            "targets",
            f"the targets match {count} nodes, more than max_targets {doc.max_targets}",
            "narrow the node set, or raise max_targets deliberately (it is reviewed)",
        )
    if doc.expect_count is not None and doc.expect_count != count:
        raise refuse(
            "expect_count",
            f"the targets match {count} nodes but expect_count says {doc.expect_count}",
            "check the node set for a typo before changing expect_count",
        )
    if doc.expect_count is None and count == len(inventory.nodes) and count > 1:
        raise refuse(
            "targets",
            f"the targets are every node of the site ({count})",
            f"write expect_count: {count} to confirm the whole site is meant",
        )
    if doc.canary is not None and doc.canary not in names:
        raise refuse(
            "canary",
            f"the canary {doc.canary!r} is not one of the targets",
            did_you_mean(doc.canary, names, "targets"),
        )
    return names


def pool_sizes(inventory: Inventory) -> dict[str, int]:
    """How many nodes each pool has in the whole inventory."""
    sizes: Counter[str] = Counter()
    for node in inventory.nodes.values():
        sizes.update(node_domains(node).pools)
    return dict(sizes)


def pool_allowance(sizes: Mapping[str, int], max_pct: float) -> tuple[dict[str, int], list[str]]:
    """Nodes per wave for each pool (at least one, with a warning when one is already more)."""
    allowance: dict[str, int] = {}
    warnings: list[str] = []
    for pool, size in sorted(sizes.items()):
        allowed = math.floor(Fraction(max_pct) * size / 100)
        if allowed < 1:
            allowed = 1
            warnings.append(
                f"pool {pool} has {size} node(s): one node at a time is "
                f"{100 / size:.0f}% of it, above max_pool_pct {max_pct:g}%"
            )
        allowance[pool] = allowed
    return allowance, warnings


def _fits(
    wave: list[NodeDomains], node: NodeDomains, caps: Caps, allowance: Mapping[str, int]
) -> bool:
    if len(wave) >= caps.max_wave:
        return False
    checks: list[tuple[Iterable[str], int]] = [
        ((n.rack for n in wave if n.rack is not None and n.rack == node.rack), caps.per_rack),
        (
            (n.ib_leaf for n in wave if n.ib_leaf is not None and n.ib_leaf == node.ib_leaf),
            caps.per_ib_leaf,
        ),
        ((n.zone for n in wave if n.zone is not None and n.zone == node.zone), caps.per_zone),
    ]
    if any(sum(1 for _ in same) + 1 > cap for same, cap in checks):
        return False
    for part in node.partitions:
        if sum(1 for n in wave if part in n.partitions) + 1 > caps.per_partition:
            return False
    return all(
        sum(1 for n in wave if pool in n.pools) + 1 <= allowance[pool] for pool in node.pools
    )


def cut_waves(
    targets: Sequence[NodeDomains], canary: str, caps: Caps, allowance: Mapping[str, int]
) -> list[list[NodeDomains]]:
    """The canary alone, then first-fit waves that keep every cap."""
    first = next(t for t in targets if t.name == canary)
    waves: list[list[NodeDomains]] = []
    for node in targets:
        if node.name == canary:
            continue
        home = next((w for w in waves if _fits(w, node, caps, allowance)), None)
        if home is None:
            waves.append([node])
        else:
            home.append(node)
    return [[first], *waves]


def _hash(
    rollout: Rollout,
    targets: Sequence[NodeDomains],
    waves: Sequence[Wave],
    sizes: Mapping[str, int],
) -> str:
    body = {
        "rollout": rollout.doc.model_dump(mode="json"),
        "targets": [t.as_dict() for t in targets],
        "pools": dict(sorted(sizes.items())),
        "waves": [list(w.nodes) for w in waves],
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def plan_rollout(rollout: Rollout, inventory: Inventory) -> Plan:
    """The waves for ``rollout`` on ``inventory``; raises InventoryError when refused."""
    names = resolve_targets(rollout, inventory)
    targets = [node_domains(inventory.nodes[n]) for n in names]
    sizes = pool_sizes(inventory)
    doc = rollout.doc
    allowance, warnings = pool_allowance(
        {p: s for p, s in sizes.items() if any(p in t.pools for t in targets)},
        doc.caps.max_pool_pct,
    )
    missing = [t.name for t in targets if t.rack is None]
    if missing:
        warnings.append(f"{len(missing)} target(s) have no rack; the rack cap cannot hold for them")
    canary = doc.canary or names[0]
    cut = cut_waves(targets, canary, doc.caps, allowance)
    waves = tuple(
        Wave(index=i, nodes=tuple(n.name for n in nodes), canary=i == 0)
        for i, nodes in enumerate(cut)
    )
    if doc.rollback is None:
        warnings.append("no rollback declared: a failed node can only be retried or skipped")
    return Plan(
        rollout=rollout,
        targets=tuple(targets),
        waves=waves,
        pool_sizes=sizes,
        pool_allowance=allowance,
        warnings=tuple(warnings),
        plan_hash=_hash(rollout, targets, waves, sizes),
    )


# --------------------------------------------------------------------------- gates


def gate_fails(failed: int, total: int, max_fail_pct: float) -> bool:
    """True when ``failed`` out of ``total`` is strictly more than ``max_fail_pct`` percent.

    Exact: ``Fraction`` of the float as given, so 1 of 4 at 25 passes and at
    24.999999 halts. ``max_fail_pct`` 0 halts on any failure.
    """
    if total <= 0 or failed <= 0:
        return False
    return Fraction(failed) * 100 > Fraction(max_fail_pct) * total


def gate_verdict(
    wave_failed: int, wave_total: int, done_failed: int, done_total: int, gate: Gate
) -> str | None:
    """Why the gate halts (the wave's share, or the cumulative share), or None to go on."""
    pct = gate.max_fail_pct
    if gate_fails(wave_failed, wave_total, pct):
        return f"{wave_failed} of {wave_total} node(s) failed in this wave: more than {pct:g}%"
    if gate_fails(done_failed, done_total, pct):
        return f"{done_failed} of {done_total} node(s) failed so far: more than {pct:g}%"
    return None
