"""What a runbook run works with: the plugins' checks and actions, targets, a probe,
its state, and (when the console has them) the two-person approvals and incidents.

``Approvals`` and ``Incidents`` are described here as protocols so the engine does
not depend on how they are stored (``console.approvals``, ``console.incidents``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from console.plugin import ActionSpec, CheckSpec, Plugin, Target
from console.wizards.drill_env import Probe, known_targets

if TYPE_CHECKING:  # pragma: no cover
    from console.actions import ActionRunner
    from console.inventory.model import Inventory, Node
    from console.poller import Job, Poller
    from console.store import StoreView
    from console.wizards.runbook_state import RunbookState

log = logging.getLogger(__name__)


class Approvals(Protocol):
    """The two-person rule's requests, shared by every console on one audit database."""

    async def request(
        self,
        subject: str,
        detail: str,
        *,
        incident_id: int | None = None,
        targets: Sequence[str] = (),
    ) -> Any: ...

    async def wait(self, request_id: int, timeout: float | None = None) -> Any: ...  # noqa: ASYNC109

    async def withdraw(self, request_id: int, why: str) -> Any: ...


class Incidents(Protocol):
    """Open incidents and their timelines."""

    def current_for(self, target: str) -> Any: ...

    async def add_entry(
        self,
        incident_id: int,
        kind: str,
        text: str,
        *,
        about_event: int | None = None,
        about_action: str = "",
    ) -> Any: ...


async def maybe_await(value: Any) -> Any:
    """``value``, awaited if it is awaitable (an API may be sync or async)."""
    if inspect.isawaitable(value):
        return await value
    return value


@dataclass(slots=True)
class IncidentLink:
    """The open incident a run belongs to, and its timeline.

    The incident's timeline already shows the audit rows that name its target or
    something on it (``gpu007`` shows ``gpu007/2``): then nothing is added twice;
    otherwise (a service on a node's incident, say) each step is added as an entry.
    """

    incidents: Incidents | None
    id: int | None = None
    target: str | None = None
    """The incident's own target; None when not known."""

    async def join(self, names: Sequence[str]) -> None:
        """The newest open incident on the first of ``names`` that has one."""
        if self.incidents is None:
            return
        for name in dict.fromkeys(names):
            try:
                found = await maybe_await(await asyncio.to_thread(self.incidents.current_for, name))
            except Exception:  # no incident is no reason to stop an on-call runbook
                log.exception("could not look up the incident of %s", name)
                return
            if found is not None:
                self.id = getattr(found, "id", None)
                self.target = str(getattr(found, "target", "") or "")
                return

    async def load_target(self) -> None:
        get = getattr(self.incidents, "get_async", None)
        if self.id is None or get is None:
            return
        try:
            self.target = str(getattr(await get(self.id), "target", "") or "")
        except Exception:  # then entries are added: a duplicate line is better than none
            log.exception("could not read incident %s", self.id)

    def shows(self, name: str) -> bool:
        t = self.target
        return bool(t) and (name == t or name.startswith((f"{t}:", f"{t}/")))

    async def add(
        self, name: str, kind: str, text: str, *, event: int | None = None, action_uid: str = ""
    ) -> None:
        """An entry about ``event`` (the audit row it narrates) or the action ``action_uid``:
        the timeline shows that event once, should it merge the row in as well."""
        if self.incidents is None or self.id is None or self.shows(name):
            return
        try:
            await self.incidents.add_entry(
                self.id, kind, text[:1000], about_event=event, about_action=action_uid
            )
        except Exception:  # the audit log has it; the timeline is a convenience
            log.exception("could not add to incident %s", self.id)


@dataclass(slots=True)
class RunbookEnv:
    runner: ActionRunner
    store: StoreView
    checks: Mapping[str, CheckSpec]
    actions: Mapping[str, ActionSpec]
    targets: Mapping[tuple[str, str], Target]
    """(kind, name) -> the plugins' own Target."""
    probe: Probe
    state: RunbookState
    approvals: Approvals | None = None
    incidents: Incidents | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] | None = None

    @property
    def inventory(self) -> Inventory:
        return self.runner.inventory

    def target(self, kind: str, name: str) -> Target | None:
        """The known target of this kind by name (``svc:minio`` and ``rack:R01`` are
        also found as ``minio`` and ``R01``); a node is always known; else None."""
        found = self.targets.get((kind, name))
        if found is None and ":" in name:
            found = self.targets.get((kind, name.split(":", 1)[1]))
        if found is None and kind == "node" and name in self.inventory.nodes:
            found = Target("node", name, node=name)
        return found

    def node_of(self, target: Target) -> Node | None:
        name = target.node or (target.name if target.kind == "node" else None)
        return self.inventory.nodes.get(name) if name else None

    def candidates(self, kind: str) -> list[Target]:
        """Every known target of a kind (for choosing one by hand)."""
        return sorted((t for (k, _), t in self.targets.items() if k == kind), key=lambda t: t.name)


@dataclass(slots=True)
class PollerProbe:
    """Refreshes what a step looks at through the console's Poller: the jobs about the
    target or its node, and those about no node (a scheduler's cluster, a service), since
    a node's state in its scheduler is read from the cluster."""

    poller: Poller

    async def refresh(self, names: frozenset[str]) -> bool:
        def about(t: Target) -> bool:
            return t.name in names or (t.node or "") in names or t.kind not in ("node", "fleet")

        def relevant(job: Job) -> bool:
            return any(about(t) for t in (getattr(job, "targets", ()) or (job.target,)))

        return await self.poller.poll_once(relevant) > 0


def rack_targets(inventory: Inventory) -> dict[tuple[str, str], Target]:
    """Racks as targets, carrying their budget and nodes (checks see no inventory)."""
    out: dict[tuple[str, str], Target] = {}
    for _room, rack in inventory.racks():
        nodes = tuple(n.name for n in inventory.nodes_in_rack(rack.name))
        out[("rack", rack.name)] = Target(
            "rack", rack.name, attrs={"budget_kw": rack.power_budget_kw, "nodes": nodes}
        )
    return out


def build_env(
    plugins: Sequence[Plugin],
    runner: ActionRunner,
    store: StoreView,
    probe: Probe,
    state: RunbookState,
    *,
    approvals: Approvals | None = None,
    incidents: Incidents | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> RunbookEnv:
    targets = known_targets(plugins, runner.inventory)
    targets.update(rack_targets(runner.inventory))
    return RunbookEnv(
        runner=runner,
        store=store,
        checks={c.id: c for p in plugins for c in p.checks},
        actions={a.id: a for p in plugins for a in p.actions},
        targets=targets,
        probe=probe,
        state=state,
        approvals=approvals,
        incidents=incidents,
        clock=clock,
        sleep=sleep,
    )
