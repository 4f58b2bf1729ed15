"""Scenarios: faults that appear and clear on a schedule, so a demo shows the console react.

A scenario file (``inventory/scenarios/<name>.yaml``)::

    description: what an operator will see
    loop: true          # start over after ``period`` seconds
    period: 180         # default: the last fault's end plus 10 s
    steps:
      - at: 20          # lab seconds after the scenario (or the loop) starts
        fault: services.slow
        target: mlflow
        params: {seconds: 3}
        for: 60
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from console.lab.faults import FaultBook, FaultError
from console.lab.sim import LabClock

log = logging.getLogger(__name__)

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "inventory" / "scenarios"


class ScenarioError(ValueError):
    """A scenario file that cannot be used (the message names the file)."""


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    at: float = Field(ge=0)
    fault: str = Field(min_length=1)
    target: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    duration: float | None = Field(default=None, gt=0, alias="for")


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    loop: bool = False
    period: float | None = Field(default=None, gt=0)
    steps: list[Step] = Field(default_factory=list)

    def cycle(self) -> float:
        if self.period is not None:
            return self.period
        ends = [s.at + (s.duration or 0.0) for s in self.steps]
        return max(ends, default=0.0) + 10.0


def resolve_scenario(name_or_path: str | Path) -> Path:
    """A scenario name (``demo``) in inventory/scenarios/, or a path to a file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return SCENARIO_DIR / f"{name_or_path}.yaml"


def load_scenario(path: Path) -> Scenario:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"scenario {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"scenario {path}: not valid YAML: {exc}") from None
    try:
        return Scenario.model_validate(data or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ScenarioError(f"scenario {path}: {where}: {first['msg']}") from None


def usable_steps(
    scenario: Scenario, fault_names: Iterable[str], hosts: Iterable[str]
) -> list[Step]:
    """The steps this lab can play; the others are logged and skipped."""
    names = set(fault_names)
    host_set = set(hosts)
    steps = []
    for step in sorted(scenario.steps, key=lambda s: s.at):
        if step.fault not in names:
            log.warning("scenario: no emulation knows fault %s; step skipped", step.fault)
        elif step.fault.startswith("host.") and step.target not in host_set:
            log.warning(
                "scenario: host %s is not in the lab; step %s skipped", step.target, step.fault
            )
        else:
            steps.append(step)
    return steps


class ScenarioRunner:
    """Plays a scenario's steps against the fault book, on the lab clock."""

    def __init__(
        self,
        scenario: Scenario,
        steps: list[Step],
        faults: FaultBook,
        clock: LabClock,
        on_step: Callable[[Step, str], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.steps = steps
        self.faults = faults
        self.clock = clock
        self.injected: list[tuple[Step, str]] = []
        self._on_step = on_step

    async def run(self) -> None:
        if not self.steps:
            return
        while True:
            start = self.clock.elapsed()
            for step in self.steps:
                wait = (start + step.at - self.clock.elapsed()) / self.clock.speed
                if wait > 0:
                    await asyncio.sleep(wait)
                try:
                    fid = self.faults.inject(step.fault, step.target, step.params, step.duration)
                except FaultError as exc:
                    log.warning("scenario: %s", exc)
                    continue
                log.info("scenario: %s on %s (%s)", step.fault, step.target, fid)
                self.injected.append((step, fid))
                if self._on_step is not None:
                    self._on_step(step, fid)
            if not self.scenario.loop:
                return
            rest = (start + self.scenario.cycle() - self.clock.elapsed()) / self.clock.speed
            await asyncio.sleep(max(rest, 0.0))
