"""The plugin contract: what a subsystem plugin declares, and what the core gives it.

A plugin is one `Plugin` object found through the entry-point group
`dcconsole.plugins`. It is a table of contents: collectors (async reads),
panes (widgets placed by layouts), actions (changes, run only by the
ActionRunner), checks (health checks over the Store), node-card sections,
and the emulation of its subsystem in the lab.

This module must never import Textual: collectors, parsers and the
`dcc check`/`dcc plugins` commands run without it. Panes are named by a
dotted path (``"plugins.services.panes:ServicesPane"``) and imported only by
the app when a layout places them.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # pragma: no cover - typing only
    from console.inventory.model import Inventory, Node
    from console.store import StoreView
    from console.transports import Transports

#: A reading's value. ``None`` means *unknown* (the tool said ``[N/A]``, the
#: field was missing, the host did not answer): never shown as 0.
Value = float | int | str | bool | None

CONTRACT_VERSION = 1
"""Bumped when the contract changes incompatibly; the registry refuses other versions."""


class ParseError(ValueError):
    """A parser could not make sense of a tool's output.

    Parsers raise only this; its message names what was wrong (field, line).
    """


# --------------------------------------------------------------------------- readings


@dataclass(frozen=True, slots=True)
class Reading:
    """One observed value about one target, as a collector returns it."""

    target: str
    """What it is about: a node name (``gpu007``) or a plugin-scoped id (``svc:minio``)."""
    metric: str
    """Namespaced by plugin and carrying its unit: ``services.latency_ms``."""
    value: Value
    """The value, or ``None`` for unknown."""
    ts: float = field(default_factory=time.time)
    """When it was observed (wall clock, seconds)."""
    source: str = ""
    """Where it came from: ``ssh``, ``http``, ``prometheus``, ``nvml``."""
    detail: str = ""
    """A short human text (an error message, a status word) shown beside the value."""
    node: str | None = None
    """The node this belongs to when ``target`` is not itself a node (a service on a host)."""


class Severity(enum.IntEnum):
    """How bad a health finding is; ordered so ``max()`` gives the worst."""

    OK = 0
    UNKNOWN = 1
    WARNING = 2
    CRITICAL = 3


@dataclass(frozen=True, slots=True)
class Finding:
    """A health finding: what a check or a threshold rule concluded."""

    severity: Severity
    target: str
    message: str
    key: str = ""
    """Stable identity of the finding (``services.down:svc:minio``) so alerts keep their age."""
    node: str | None = None


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True, slots=True)
class Target:
    """Something a collector reads or an action changes."""

    kind: str
    """``node``, ``service``, ``bmc``, ``cluster`` ... (plugins may add kinds)."""
    name: str
    """Unique within the kind; for nodes the node name."""
    node: str | None = None
    """The node it lives on, when there is one (used for SSH and for filtering)."""
    attrs: Mapping[str, Any] = field(default_factory=dict)
    """Plugin-specific description (a service's URL, a unit name)."""


# --------------------------------------------------------------------------- collectors


class ReadContext(Protocol):
    """What one read needs: a collector's run, or an action verifying through a collector."""

    @property
    def inventory(self) -> Inventory: ...

    @property
    def transports(self) -> Transports: ...

    @property
    def config(self) -> Any:
        """The plugin's validated config section (its pydantic model instance)."""


class CollectContext(ReadContext, Protocol):
    """What a collector may use. Given by the poller; transports are pooled."""

    @property
    def memory(self) -> MutableMapping[str, Any]:
        """What the plugin keeps between runs for as long as this poller (one session)
        lives, shared by its collectors: the previous counter totals its rates need. A
        new session starts empty; two sessions in one process never share it."""


CollectFn = Callable[[CollectContext, Target], Awaitable[Sequence[Reading]]]
TargetsFn = Callable[["Inventory", Any], Sequence[Target]]


@dataclass(frozen=True, slots=True)
class Absent:
    """Something a fleet read expected and did not find (a series gone from Prometheus).

    The poller turns it into readings of ``None`` (unknown, never 0) for ``metrics`` of
    ``target``, dated at the last time it was seen (``last_seen``, else the Store's
    last reading of it), with ``why`` and its age as the detail.
    """

    target: str
    metrics: tuple[str, ...]
    why: str
    last_seen: float | None = None
    node: str | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class FleetResult:
    """What one run of a fleet collector found, for all its targets at once."""

    readings: Sequence[Reading] = ()
    absent: Sequence[Absent] = ()
    errors: Mapping[str, str] = field(default_factory=dict)
    """Poller target name -> why it has no current data (that target counts as failing)."""


FleetCollectFn = Callable[[CollectContext, Sequence[Target]], Awaitable[FleetResult]]
"""Reads every target in one run (one query per metric family, never one per host)."""


@dataclass(frozen=True, slots=True)
class CollectorSpec:
    """An async read of one kind of data, run by the poller for each target."""

    id: str
    """``<plugin>.<name>``, e.g. ``services.http``."""
    targets: TargetsFn
    """Which targets it applies to, from the inventory and the plugin config."""
    collect: CollectFn
    """Reads one target; raises on transport failure (the poller records the error)."""
    interval: float = 15.0
    """Seconds between the starts of two runs for one target."""
    timeout: float = 10.0
    """Seconds one run may take before it is cancelled and counted as failed."""
    label: str = ""
    """What an operator reads in the collector status list."""
    fleet: FleetCollectFn | None = None
    """Set for a fleet-scoped collector: the poller runs it once per interval for all its
    targets (``collect`` is then only a one-target adapter). See ``fleet_collector``."""


def fleet_collector(
    id: str,
    targets: TargetsFn,
    collect: FleetCollectFn,
    interval: float = 15.0,
    timeout: float = 20.0,
    label: str = "",
) -> CollectorSpec:
    """A collector the poller runs once per refresh for all its targets (a Prometheus source).

    It reports per target (``FleetResult.errors``) so panes and the node card read the
    same collector states, and the same Store keys, as with a per-target collector.
    """

    async def one(ctx: CollectContext, target: Target) -> Sequence[Reading]:
        result = await collect(ctx, [target])
        if target.name in result.errors:
            raise RuntimeError(result.errors[target.name])
        return result.readings

    return CollectorSpec(id, targets, one, interval, timeout, label, fleet=collect)


# --------------------------------------------------------------------------- panes


@dataclass(frozen=True, slots=True)
class PaneSpec:
    """A widget that layouts place by id. The factory is imported lazily."""

    id: str
    """``<plugin>.<name>``: what layouts refer to."""
    title: str
    factory: str
    """``module:attribute`` of a callable ``(PaneContext) -> Widget``."""
    collectors: tuple[str, ...] = ()
    """Collector ids whose state (loading/ok/stale/failed) the pane shows."""


# --------------------------------------------------------------------------- actions


class ActionInputs(BaseModel):
    """Base for an action's typed inputs; an action without inputs uses it as is."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class Preview:
    """What an action will do, shown before confirmation. Runs nothing."""

    lines: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    refuse: str | None = None
    """Set when a precondition fails: the runner stops here and audits the refusal."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened when an action ran, or what verification found."""

    ok: bool
    detail: str = ""
    output: str = ""
    """Captured output (capped, sanitised before display)."""


class ActionContext(Protocol):
    """What an action's coroutines may use."""

    @property
    def inventory(self) -> Inventory: ...

    @property
    def transports(self) -> Transports: ...

    @property
    def store(self) -> StoreView: ...

    @property
    def config(self) -> Any: ...

    @property
    def operator(self) -> str:
        """The operator's name, for texts the remote side records (drain reasons)."""


PreviewFn = Callable[[ActionContext, Target, Any], Awaitable[Preview]]
RunFn = Callable[[ActionContext, Target, Any], Awaitable[Outcome]]
VerifyFn = Callable[[ActionContext, Target, Any, Outcome], Awaitable[Outcome]]
ActionTargetsFn = Callable[["Inventory", Any], Sequence[Target]]
LiveTargetsFn = Callable[["StoreView", "Inventory", Any], Sequence[Target]]
"""Targets known only from what was collected (jobs, pods), read from the Store."""


class Role(enum.IntEnum):
    """Roles, ordered: a role may do everything the ones below it may."""

    VIEWER = 0
    OPERATOR = 1
    ADMIN = 2


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """A change to the world. Only the ActionRunner calls its coroutines."""

    id: str
    """``<plugin>.<verb>``, e.g. ``services.restart``."""
    label: str
    target_kind: str
    targets: ActionTargetsFn
    """The targets this action can apply to (for the palette and validation)."""
    preview: PreviewFn
    execute: RunFn
    verify: VerifyFn
    destructive: bool = False
    """Destructive actions need a typed confirmation of the target's name."""
    role: Role = Role.OPERATOR
    inputs: type[ActionInputs] = ActionInputs
    secret_inputs: tuple[str, ...] = ()
    """Input field names whose values are redacted in the audit log."""
    timeout: float = 120.0
    description: str = ""
    live_targets: LiveTargetsFn | None = None
    """When set, the palette lists these (read from the Store) instead of ``targets``."""


# --------------------------------------------------------------------------- checks


CheckFn = Callable[["StoreView", Target], Finding]


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """A named health check over the Store, for gates, drills and runbooks."""

    id: str
    label: str
    target_kind: str
    check: CheckFn
    metrics: tuple[str, ...] = ()
    """The readings it judges (shown beside it in a runbook step), read from the target
    or, when the target has none, from its node."""
    pane: str | None = None
    """The pane (id) that shows what it depends on."""


# --------------------------------------------------------------------------- data probes


ProbeWriteFn = Callable[[ActionContext, Target, Any, str, bytes], Awaitable[None]]
ProbeNamesFn = Callable[[ActionContext, Target, Any, str], Awaitable[Sequence[str]]]
ProbeReadFn = Callable[[ActionContext, Target, Any, str], Awaitable[bytes | None]]


@dataclass(frozen=True, slots=True)
class DataProbeSpec:
    """Small named records written and read through a data service's own protocol.

    Drills measure the RPO with it: timestamped markers written to the primary
    at a steady rate, then the newest one that survived read from the new primary
    after a failover. ``write`` raises when the service did not acknowledge the
    record; ``names`` lists the record names under a prefix; ``read`` returns a
    record's content, None when it is not there.
    """

    id: str
    label: str
    target_kind: str
    write: ProbeWriteFn
    names: ProbeNamesFn
    read: ProbeReadFn
    inputs: type[ActionInputs] = ActionInputs
    timeout: float = 5.0
    """Seconds one write, listing or read may take."""


# --------------------------------------------------------------------------- node card


@dataclass(frozen=True, slots=True)
class CardLine:
    """One line of a node card section: a label and its text, with a severity."""

    label: str
    text: str
    severity: Severity = Severity.OK


CardFn = Callable[["StoreView", "Node"], Sequence[CardLine]]

AlertsFn = Callable[["StoreView", "Inventory"], Sequence[Finding]]
NodeAlertsFn = Callable[["StoreView", "Inventory", "Node"], Sequence[Finding]]
"""The findings about one node, from that node's readings alone (see ``Plugin.node_alerts``)."""
"""Turns what the Store knows into the plugin's current alerts (evaluated after each change)."""


# --------------------------------------------------------------------------- lab


class LabHostContext(Protocol):
    """What a plugin's lab emulation sees of one simulated host."""

    @property
    def name(self) -> str: ...

    @property
    def node(self) -> Node: ...

    @property
    def now(self) -> float:
        """The lab clock (seconds)."""

    @property
    def powered(self) -> bool: ...

    @property
    def load(self) -> float:
        """Simulated utilisation 0..1, from the lab's model."""

    def fault(self, name: str) -> Mapping[str, Any] | None:
        """The parameters of an active fault on this host, or None."""


@dataclass(frozen=True, slots=True)
class CommandReply:
    """What a simulated host answers to a shell command."""

    stdout: str = ""
    stderr: str = ""
    exit_status: int = 0
    delay: float = 0.0
    """Seconds to wait before answering (a slow tool)."""


CommandHandler = Callable[[LabHostContext, str], Awaitable[CommandReply | None]]
"""Answers a command, or returns None when the command is not this plugin's."""


class LabEmulation(Protocol):
    """A plugin's emulation of its subsystem, mounted by the lab.

    ``start`` is given the lab (see ``console.lab.Lab``) and may open HTTP
    servers on loopback through it; ``command`` answers shell commands on a
    simulated host; ``tick`` advances the subsystem's own dynamics.

    Optional: ``rewrite_inventory(data: dict) -> dict`` receives the whole
    effective inventory document (as plain data, after ``rewrite_config``) and
    returns it with what else the emulation serves pointed at the lab: BMC
    addresses and ports on the node groups, a cluster's API endpoint.
    """

    async def start(self, lab: Any) -> None: ...

    async def stop(self) -> None: ...

    async def command(self, host: LabHostContext, command: str) -> CommandReply | None: ...

    def tick(self, now: float) -> None: ...

    def rewrite_config(self, section: dict[str, Any]) -> dict[str, Any]:
        """The plugin's inventory section with lab addresses (ephemeral ports) filled in."""

    def fault_names(self) -> Sequence[str]:
        """Faults this emulation understands (``services.down`` ...), for `dcc lab fault`."""


LabFactory = Callable[[], LabEmulation]


# --------------------------------------------------------------------------- the plugin


@dataclass(frozen=True, slots=True)
class Plugin:
    """A subsystem plugin: a table of contents the core reads."""

    name: str
    """Prefix of every id the plugin declares."""
    description: str
    config_model: type[BaseModel] | None = None
    """Validates the plugin's section of the inventory (``plugins.<name>:``)."""
    collectors: tuple[CollectorSpec, ...] = ()
    panes: tuple[PaneSpec, ...] = ()
    actions: tuple[ActionSpec, ...] = ()
    checks: tuple[CheckSpec, ...] = ()
    card: CardFn | None = None
    """Adds a section to the node card from what the Store knows."""
    card_title: str = ""
    alerts: AlertsFn | None = None
    node_alerts: NodeAlertsFn | None = None
    """Per-node alert rules, for fleets: the console re-runs them only for nodes whose
    readings changed, and keeps the others' findings. When set, ``alerts`` must return
    only what is not about a single node (racks, clusters), or None."""
    lab: LabFactory | None = None
    shutdown: Callable[[], Awaitable[None]] | None = None
    """Called when the console stops, before the transports close (watches, sessions)."""
    data_probes: tuple[DataProbeSpec, ...] = ()
    """Records written and read through a data service's protocol (drills' RPO markers)."""
    runbooks: tuple[Path, ...] = ()
    """On-call runbook YAML files for incidents of this subsystem (``plugins/gpu/runbooks/``);
    a site's own runbooks override them by id."""
    long_history: frozenset[str] = frozenset()
    """Metrics whose rules or panes read further back than a sparkline (GPU utilisation for
    idle time, power draw for a node's typical load): the Store keeps their full history
    (``console.store.HISTORY_LEN`` samples) and a sparkline's worth of every other one."""
    contract_version: int = CONTRACT_VERSION

    def validate_ids(self) -> list[str]:
        """Problems with the declared ids (each must start with ``<name>.``)."""
        problems = []
        for kind, items in (
            ("collector", self.collectors),
            ("pane", self.panes),
            ("action", self.actions),
            ("check", self.checks),
            ("data probe", self.data_probes),
        ):
            for item in items:
                if not item.id.startswith(self.name + "."):
                    problems.append(f"{kind} id {item.id!r} must start with {self.name + '.'!r}")
        for metric in sorted(self.long_history):
            if not metric.startswith(self.name + "."):
                problems.append(
                    f"long-history metric {metric!r} must start with {self.name + '.'!r}"
                )
        return problems
