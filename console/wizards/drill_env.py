"""What a drill runs against: checks, actions and targets from the plugins, and a probe.

Kept apart from the engine so tests (and the TUI later) build the same
environment from a registry of plugins, a Store and a Poller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from console.action_plan import ActionRefused
from console.filtering import FilterError, parse_filter
from console.plugin import ActionSpec, CheckSpec, DataProbeSpec, Plugin, Target

if TYPE_CHECKING:  # pragma: no cover
    from console.actions import ActionRunner
    from console.inventory.model import Inventory
    from console.poller import Job, Poller
    from console.store import StoreView
    from console.wizards.drill_report import DrillStore

log = logging.getLogger(__name__)


class Probe(Protocol):
    """Refreshes what the Store knows about some targets."""

    async def refresh(self, names: frozenset[str]) -> bool:
        """Read the targets (and their nodes) now; False when none of them answered."""


@dataclass(slots=True)
class PollerProbe:
    """A probe on the console's Poller: ``poll_once`` on the jobs of the drill's targets."""

    poller: Poller

    async def refresh(self, names: frozenset[str]) -> bool:
        def relevant(job: Job) -> bool:
            return job.target.name in names or (job.target.node or "") in names

        jobs = [j for j in self.poller.jobs if relevant(j)]
        if not jobs:
            return True  # nothing is collected for these targets: no contact to lose
        ok = await self.poller.poll_once(relevant)
        return ok > 0


@dataclass(slots=True)
class DrillEnv:
    """Everything the engine uses; the clocks are injectable for tests."""

    runner: ActionRunner
    store: StoreView
    checks: Mapping[str, CheckSpec]
    actions: Mapping[str, ActionSpec]
    known_targets: Mapping[tuple[str, str], Target]
    """(kind, name) -> Target, as the plugins' collectors and actions declare them."""
    probe: Probe
    drills: DrillStore
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Any] | None = None
    """``await sleep(seconds)``; None: asyncio.sleep."""
    wall: Callable[[], float] = time.time
    extra: dict[str, Any] = field(default_factory=dict)
    probes: Mapping[str, DataProbeSpec] = field(default_factory=dict)
    """Data probes by id (the RPO markers)."""

    def target(self, kind: str, name: str) -> Target:
        """The plugin's own Target for (kind, name), or a bare one (a node is its own node)."""
        found = self.known_targets.get((kind, name))
        if found is not None:
            return found
        return Target(kind, name, node=name if kind == "node" else None)

    def action_targets(self, name: str, kind: str) -> list[Target]:
        """One target, or each node of a node set / group (``gpu[005-008]``, ``@rack:R02``).

        Raises:
            ActionRefused: the set is not valid or names no node.
        """
        if not (name.startswith("@") or "[" in name or "," in name):
            return [self.target(kind, name)]
        try:
            nodes = parse_filter(name, self.runner.inventory)
        except FilterError as exc:
            raise ActionRefused(f"{name}: {exc}") from None
        if not nodes:
            raise ActionRefused(f"{name} names no node of the inventory")
        return [self.target(kind, n) for n in sorted(nodes)]


def known_targets(
    plugins: Sequence[Plugin], inventory: Inventory, extra_actions: Sequence[ActionSpec] = ()
) -> dict[tuple[str, str], Target]:
    """Every target the plugins' collectors and actions name (a broken one is skipped)."""
    out: dict[tuple[str, str], Target] = {}
    for plugin in plugins:
        config = inventory.plugin_configs.get(plugin.name)
        fns: list[Callable[[Inventory, Any], Sequence[Target]]] = [
            *(c.targets for c in plugin.collectors),
            *(a.targets for a in plugin.actions),
        ]
        for fn in fns:
            try:
                for t in fn(inventory, config):
                    out.setdefault((t.kind, t.name), t)
            except Exception as exc:  # one plugin's bad config must not stop a drill listing
                log.warning("targets of %s: %s", plugin.name, exc)
    for spec in extra_actions:
        for t in spec.targets(inventory, None):
            out.setdefault((t.kind, t.name), t)
    for name, node in inventory.nodes.items():
        out.setdefault(("node", name), Target("node", name, node=node.name))
    return out


def build_env(
    plugins: Sequence[Plugin],
    runner: ActionRunner,
    store: StoreView,
    probe: Probe,
    drills: DrillStore,
    *,
    extra_actions: Sequence[ActionSpec] = (),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] | None = None,
) -> DrillEnv:
    """A DrillEnv from the registry's plugins (plus e.g. the lab's fault actions)."""
    checks = {c.id: c for p in plugins for c in p.checks}
    actions = {a.id: a for p in plugins for a in p.actions}
    actions.update({a.id: a for a in extra_actions})
    probes = {d.id: d for p in plugins for d in p.data_probes}
    return DrillEnv(
        probes=probes,
        runner=runner,
        store=store,
        checks=checks,
        actions=actions,
        known_targets=known_targets(plugins, runner.inventory, extra_actions),
        probe=probe,
        drills=drills,
        clock=clock,
        sleep=sleep,
    )
