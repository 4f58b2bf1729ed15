"""The drill catalogue: failover scenarios described in YAML kept with the inventory.

A scenario names its steady-state checks (``CheckSpec`` ids over the Store with
their targets), the fault to inject (a plugin action), the recovery signals
whose passing marks *detect*, *failover* and *recovered*, its targets (RTO,
RPO), its stop conditions, a maximum duration and how to restore. The file is
checked like the inventory: every problem names file:line, field and a hint.

The catalogue of a site lives beside its inventory: ``inventory/drills/<site>.yaml``
(``inventory/drills/demo.yaml`` for the demo).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from console.inventory.problems import Problem
from console.inventory.validate import validate_document
from console.inventory.yamlio import LineMap, read_yaml_file

Phase = Literal["detect", "failover", "recovered"]
PHASES: tuple[Phase, ...] = ("detect", "failover", "recovered")


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckRef(_Doc):
    """A health check (a plugin's ``CheckSpec``) applied to one target."""

    check: str = Field(description="CheckSpec id, e.g. services.healthy")
    target: str = Field(description="the target's name, e.g. minio-stor01 or gpu007")

    @property
    def key(self) -> str:
        return f"{self.check}@{self.target}"


class Signal(CheckRef):
    """A recovery signal: a check that must fail, pass, or recover (fail then pass)."""

    phase: Phase
    expect: Literal["fail", "pass", "recover"] = "pass"
    """``recover``: seen failing since the injection, then passing again."""


class ActionRef(_Doc):
    """A plugin action run through the ActionRunner (audited like any other)."""

    action: str = Field(description="ActionSpec id, e.g. services.restart or lab.fault")
    target: str
    """The target's name; for node actions also a node set or group (``gpu[005-008]``,
    ``@rack:R02``): the action then runs on each of its nodes (one typed confirmation)."""
    kind: str | None = None
    """The target's kind when the action's own target list does not know it (lab targets)."""
    inputs: dict[str, Any] = Field(default_factory=dict)


class DataCheck(_Doc):
    """The RPO measurement: timestamped markers written through the data service's protocol.

    Markers are written to ``target`` (the address clients write to) every
    ``interval_s`` from the preflight on; once the failover is seen, the newest
    marker written before the fault that survived is read from ``read_target``
    (default: the same address, now served by the new primary). RPO = fault time -
    that marker's time.
    """

    probe: str = Field(description="DataProbeSpec id, e.g. services.objects")
    target: str
    read_target: str | None = None
    interval_s: float = Field(default=1.0, gt=0)
    inputs: dict[str, Any] = Field(default_factory=dict)
    read_timeout_s: float = Field(default=15.0, gt=0)
    """How long the survivors may take to become readable after the failover."""
    warmup_s: float = Field(default=5.0, ge=0)
    """Markers are written this long before the injection, so the newest survivor is
    a measurement (keep it above the RPO you expect)."""


class Deadman(_Doc):
    """The dead man's switch: a restore scheduled on the target side before the fault.

    ``arm`` runs (audited) before the injection with ``after_s`` and ``key`` added
    to its inputs; ``cancel`` runs after a normal restore. A console that dies
    mid-drill never cancels it, and the target restores by itself.
    """

    arm: ActionRef
    cancel: ActionRef | None = None
    after_s: float | None = Field(default=None, gt=0)
    """Default: the drill's maximum duration plus the postflight timeout."""


class Targets(_Doc):
    rto_s: float = Field(gt=0, description="recovery time objective, seconds")
    rpo_s: float | None = Field(default=None, ge=0, description="recovery point objective")


class StopConditions(_Doc):
    """Abort (and restore) when more breaks than the scenario expects."""

    expected_failures: list[str] = []
    """Targets allowed to fail during the drill (the victim, what depends on it)."""
    max_unexpected_failures: int = Field(default=0, ge=0)
    """Abort when MORE than this many watched checks fail beyond the expected ones."""
    watch: list[CheckRef] = []
    """Checks watched besides the steady state (the neighbours of the blast radius)."""
    contact_lost_s: float = Field(default=30.0, gt=0)
    """No successful reading of the targets for this long: restore (dead man's switch)."""


class Scenario(_Doc):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    title: str
    description: str = ""
    scope: str = Field(min_length=1, description="the scope tag the drill runs in")
    steady_state: list[CheckRef] = Field(min_length=1)
    inject: ActionRef
    signals: list[Signal] = Field(min_length=1)
    targets: Targets
    stop: StopConditions = StopConditions()
    max_duration_s: float = Field(default=300.0, gt=0)
    """Observation longer than this: abort and restore."""
    restore: ActionRef
    data: DataCheck | None = None
    """Where the RPO is measured (markers); without it a scenario has no RPO."""
    deadman: Deadman | None = None
    """Scheduled on the target before the injection; cancelled after a normal restore."""
    preflight_timeout_s: float = Field(default=30.0, gt=0)
    postflight_timeout_s: float = Field(default=60.0, gt=0)
    poll_interval_s: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _phases(self) -> Scenario:
        have = {s.phase for s in self.signals}
        if "failover" not in have and "recovered" not in have:
            raise ValueError("signals need a 'failover' or 'recovered' phase to measure the RTO")
        if self.targets.rpo_s is not None and self.data is None:
            raise ValueError("an RPO target needs a 'data' check to measure it with")
        return self

    @property
    def deadman_after_s(self) -> float:
        """When the dead man's switch fires, counted from its arming."""
        if self.deadman is not None and self.deadman.after_s is not None:
            return self.deadman.after_s
        return self.max_duration_s + self.postflight_timeout_s

    @property
    def rpo_phase(self) -> Phase:
        """When the survivors are read: the failover if measured, else the RTO phase."""
        return "failover" if "failover" in self.phases else self.rto_phase

    def signals_of(self, phase: Phase) -> tuple[Signal, ...]:
        return tuple(s for s in self.signals if s.phase == phase)

    @property
    def phases(self) -> tuple[Phase, ...]:
        """The phases this scenario measures, in order."""
        have = {s.phase for s in self.signals}
        return tuple(p for p in PHASES if p in have)

    @property
    def rto_phase(self) -> Phase:
        """The phase whose time is the measured RTO: the last one declared."""
        return self.phases[-1]

    def watched(self) -> tuple[CheckRef, ...]:
        """Every check the stop conditions look at (steady state + watch list), once."""
        seen: dict[str, CheckRef] = {}
        for ref in (*self.steady_state, *self.stop.watch):
            seen.setdefault(ref.key, CheckRef(check=ref.check, target=ref.target))
        return tuple(seen.values())


class Catalogue(_Doc):
    drills: list[Scenario] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Catalogue:
        ids = [d.id for d in self.drills]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"drill ids must be unique: {', '.join(dupes)}")
        return self

    def get(self, drill_id: str) -> Scenario | None:
        return next((d for d in self.drills if d.id == drill_id), None)


def default_catalogue(inventory_source: Path | None) -> Path:
    """Where a site's drills live: ``drills/<inventory stem>.yaml`` beside the inventory."""
    if inventory_source is None:
        return Path(__file__).resolve().parents[2] / "inventory" / "drills" / "demo.yaml"
    return inventory_source.parent / "drills" / f"{inventory_source.stem}.yaml"


def load_catalogue(path: Path) -> Catalogue:
    """Read and validate a drill catalogue.

    Raises:
        InventoryError: every problem with file:line, field and a hint.
    """
    data, lines = read_yaml_file(path, str(path))
    return catalogue_from_data(data, lines, str(path))


def catalogue_from_data(
    data: Any, lines: LineMap | None = None, label: str = "<drills>"
) -> Catalogue:
    return validate_document(
        data,
        Catalogue,
        lines or LineMap(),
        label,
        what="a drill catalogue must be a mapping with 'drills:'",
        example="inventory/drills/demo.yaml",
    )


def check_references(
    catalogue: Catalogue,
    check_ids: Sequence[str],
    action_ids: Sequence[str],
    label: str = "<drills>",
    probe_ids: Sequence[str] | None = None,
) -> list[Problem]:
    """Checks, actions (and data probes, when given) named that no plugin declares."""
    problems: list[Problem] = []
    checks, actions = set(check_ids), set(action_ids)
    for scenario in catalogue.drills:
        if (
            probe_ids is not None
            and scenario.data is not None
            and scenario.data.probe not in probe_ids
        ):
            problems.append(
                Problem(
                    label,
                    None,
                    f"{scenario.id}.data.probe",
                    f"unknown data probe {scenario.data.probe!r}",
                    f"known: {', '.join(sorted(probe_ids)) or 'none'}",
                )
            )
        refs: list[tuple[str, CheckRef]] = [
            *(("steady_state", r) for r in scenario.steady_state),
            *(("signals", r) for r in scenario.signals),
            *(("stop.watch", r) for r in scenario.stop.watch),
        ]
        for where, ref in refs:
            if ref.check not in checks:
                problems.append(
                    Problem(
                        label,
                        None,
                        f"{scenario.id}.{where}",
                        f"unknown check {ref.check!r}",
                        f"known: {', '.join(sorted(checks)) or 'none'}",
                    )
                )
        acts = [("inject", scenario.inject), ("restore", scenario.restore)]
        if scenario.deadman is not None:
            acts.append(("deadman.arm", scenario.deadman.arm))
            if scenario.deadman.cancel is not None:
                acts.append(("deadman.cancel", scenario.deadman.cancel))
        for where, act in acts:
            if act.action not in actions:
                problems.append(
                    Problem(
                        label,
                        None,
                        f"{scenario.id}.{where}",
                        f"unknown action {act.action!r}",
                        f"known: {', '.join(sorted(actions)) or 'none'}",
                    )
                )
    return problems


def scenario_summary(s: Scenario) -> Mapping[str, Any]:
    """One line's worth of a scenario (for ``dcc drill list``)."""
    return {
        "id": s.id,
        "title": s.title,
        "scope": s.scope,
        "rto_s": s.targets.rto_s,
        "rpo_s": s.targets.rpo_s,
        "inject": f"{s.inject.action} {s.inject.target}",
        "max_duration_s": s.max_duration_s,
        "deadman": None if s.deadman is None else s.deadman.arm.action,
        "data": None if s.data is None else f"{s.data.probe} {s.data.target}",
    }
