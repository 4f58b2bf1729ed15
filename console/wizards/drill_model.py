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
    kind: str | None = None
    """The target's kind when the action's own target list does not know it (lab targets)."""
    inputs: dict[str, Any] = Field(default_factory=dict)


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
    preflight_timeout_s: float = Field(default=30.0, gt=0)
    postflight_timeout_s: float = Field(default=60.0, gt=0)
    poll_interval_s: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _phases(self) -> Scenario:
        have = {s.phase for s in self.signals}
        if "failover" not in have and "recovered" not in have:
            raise ValueError("signals need a 'failover' or 'recovered' phase to measure the RTO")
        return self

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
) -> list[Problem]:
    """Checks and actions the catalogue names that no plugin declares."""
    problems: list[Problem] = []
    checks, actions = set(check_ids), set(action_ids)
    for scenario in catalogue.drills:
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
        for where, act in (("inject", scenario.inject), ("restore", scenario.restore)):
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
    }
