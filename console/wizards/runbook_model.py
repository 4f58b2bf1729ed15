"""On-call runbooks: what to do, step by step, for one kind of incident, as YAML.

A runbook answers some alerts (findings matched by key and message), applies to
one kind of target (``node``, ``gpu``, ``ib_port``, ``service``, ``rack`` ...) and
is a list of steps, each exactly one of:

- ``check``: a plugin ``CheckSpec`` by id; the step passes by itself when the check
  holds (``expect: pass``) or shows the problem (``expect: fail``, to confirm the
  symptom), re-evaluated from the Store until ``timeout_s``; ``hold_s`` asks for it
  to hold that long without a break (a flapping link).
- ``action``: a plugin ``ActionSpec`` by id, run through the ActionRunner (preview,
  confirmation, audit); ``inputs`` are the action's inputs.
- ``note``: text to read and acknowledge; with ``answer: true`` a free-text answer
  is recorded (a ticket number, what was seen).
- ``approval``: a second operator must approve (the two-person rule). Any step may
  also be marked ``two_person: true``: it runs only once another operator approved.

Texts (``target``, ``inputs``, ``note``, ``approval``, ``title``) may name
``{target}``, ``{node}``, ``{index}`` (a GPU's index), ``{rack}``, ``{runbook}``,
``{run}``, ``{operator}``, ``{alert}`` and ``{steps.ID.answer}`` (an earlier note's
answer). A step's target defaults to the runbook's target when the check or
action applies to that kind, else to the target's node.

Built-in runbooks live with the plugin whose subsystem they concern
(``plugins/gpu/runbooks/xid79.yaml``, declared in its ``Plugin.runbooks``); a site
adds or overrides (by id) its own in ``runbooks/`` beside its inventory. A file is
checked like the inventory: every problem names file:line, field and a hint, and a
literal secret is refused.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from console.inventory.problems import Problem
from console.inventory.validate import validate_document
from console.inventory.yamlio import LineMap, read_yaml_file
from console.plugin import ActionSpec, CheckSpec, Finding

StepKind = Literal["check", "action", "note", "approval"]
STEP_KINDS: tuple[StepKind, ...] = ("check", "action", "note", "approval")

PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.-]+)\}")
NAMES = ("target", "node", "index", "rack", "runbook", "run", "operator", "alert")
"""Placeholders every text may use (besides ``steps.ID.answer``)."""
STEP_REF = re.compile(r"^steps\.([a-z0-9][a-z0-9_-]*)\.answer$")
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
EXAMPLE = "plugins/gpu/runbooks/xid79.yaml"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Doc):
    """Which alerts a runbook answers: a finding whose key matches, and whose message does."""

    key: str = Field(min_length=1, description="glob on the finding's key: gpu.health:*:lost")
    message: str | None = None
    """A regular expression searched in the finding's message (case-insensitive)."""
    target: Literal["target", "node"] = "target"
    """Which of the finding's fields names the runbook's target."""

    @field_validator("message")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    def matches(self, finding: Finding) -> bool:
        if not fnmatch.fnmatchcase(finding.key, self.key):
            return False
        return self.message is None or re.search(self.message, finding.message, re.I) is not None

    def target_of(self, finding: Finding) -> str:
        if self.target == "node":
            return finding.node or finding.target
        return finding.target


class Step(_Doc):
    id: str = Field(pattern=ID_PATTERN)
    title: str = ""
    check: str | None = None
    expect: Literal["pass", "fail"] = "pass"
    timeout_s: float = Field(default=300.0, gt=0)
    """A check: how long it may take to hold; an approval: how long to wait for one."""
    hold_s: float = Field(default=0.0, ge=0)
    action: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    target: str | None = None
    """The check's or action's target (a template); default: see the module doc."""
    note: str | None = None
    answer: bool = False
    approval: str | None = None
    two_person: bool = False
    if_cluster: Literal["slurm", "kubernetes"] | None = None
    """Only when the target's node belongs to such a cluster (else the step is skipped)."""

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        given = [k for k in STEP_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "a step is exactly one of check, action, note or approval"
                + (f" (this one has {', '.join(given)})" if given else "")
            )
        kind = given[0]
        if self.inputs and kind != "action":
            raise ValueError("inputs belong to an action step")
        if self.answer and kind != "note":
            raise ValueError("answer belongs to a note step")
        if kind != "check" and (self.expect != "pass" or self.hold_s):
            raise ValueError("expect and hold_s belong to a check step")
        if self.target is not None and kind not in ("check", "action"):
            raise ValueError("target belongs to a check or an action step")
        return self

    @property
    def kind(self) -> StepKind:
        return next(k for k in STEP_KINDS if getattr(self, k) is not None)

    @property
    def label(self) -> str:
        """What the step list shows when the runbook gives no title."""
        if self.title:
            return self.title
        if self.check is not None:
            return f"{self.check} {'holds' if self.expect == 'pass' else 'shows the problem'}"
        if self.action is not None:
            return self.action
        if self.approval is not None:
            return "approval by a second operator"
        return (self.note or "").strip().splitlines()[0][:60] if self.note else "note"

    def texts(self) -> list[str]:
        """Every template in the step (for placeholder checks)."""
        out = [self.title, self.note or "", self.approval or "", self.target or ""]
        out += list(_strings(self.inputs))
        return out


class Runbook(_Doc):
    id: str = Field(pattern=ID_PATTERN)
    title: str = Field(min_length=1)
    description: str = ""
    target_kind: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    answers: list[Match] = Field(default_factory=list)
    poll_s: float = Field(default=2.0, gt=0, le=60)
    """How often a check step reads its target again."""
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Runbook:
        ids = [s.id for s in self.steps]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"step ids must be unique: {', '.join(dupes)}")
        answered: set[str] = set()
        for step in self.steps:
            for text in step.texts():
                for name in PLACEHOLDER.findall(text):
                    ref = STEP_REF.match(name)
                    if ref is not None and ref.group(1) in answered:
                        continue
                    if ref is not None:
                        raise ValueError(
                            f"step {step.id}: {{{name}}} names no earlier note step with "
                            "answer: true"
                        )
                    if name not in NAMES:
                        raise ValueError(
                            f"step {step.id}: unknown placeholder {{{name}}} "
                            f"(known: {', '.join(NAMES)}, steps.ID.answer)"
                        )
            if step.kind == "note" and step.answer:
                answered.add(step.id)
        return self

    def answers_finding(self, finding: Finding) -> Match | None:
        return next((m for m in self.answers if m.matches(finding)), None)

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def render(text: str, values: Mapping[str, str]) -> str:
    """``text`` with its placeholders filled in (an unknown one becomes empty)."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), text)


def render_inputs(inputs: Any, values: Mapping[str, str]) -> Any:
    """An action's inputs with the placeholders in their texts filled in."""
    if isinstance(inputs, str):
        return render(inputs, values)
    if isinstance(inputs, Mapping):
        return {k: render_inputs(v, values) for k, v in inputs.items()}
    if isinstance(inputs, list):
        return [render_inputs(v, values) for v in inputs]
    return inputs


# --------------------------------------------------------------------------- files


def load_runbook(path: Path) -> Runbook:
    """Read and validate one runbook file.

    Raises:
        InventoryError: every problem with file:line, field and a hint.
    """
    data, lines = read_yaml_file(path, str(path))
    return runbook_from_data(data, lines, str(path))


def runbook_from_data(data: Any, lines: LineMap | None = None, label: str = "<runbook>") -> Runbook:
    return validate_document(
        data,
        Runbook,
        lines or LineMap(),
        label,
        what="a runbook must be a mapping with id:, title:, target_kind: and steps:",
        example=EXAMPLE,
    )


def default_step_target(step: Step, runbook_kind: str, spec_kind: str) -> str:
    """The template naming a check's or action's target when the step gives none."""
    if step.target is not None:
        return step.target
    if spec_kind == runbook_kind or spec_kind != "node":
        return "{target}"
    return "{node}"


def check_references(
    runbook: Runbook,
    checks: Mapping[str, CheckSpec],
    actions: Mapping[str, ActionSpec],
    label: str = "<runbook>",
) -> list[Problem]:
    """Checks and actions the runbook names that no plugin declares, and steps whose
    target cannot be the runbook's (another kind, and no ``target:`` given)."""
    problems: list[Problem] = []
    for i, step in enumerate(runbook.steps):
        ref, known = (
            (step.check, checks)
            if step.check is not None
            else (step.action, actions)
            if step.action is not None
            else (None, {})
        )
        if ref is None:
            continue
        spec = known.get(ref)
        field = f"steps[{i}].{step.kind}"
        if spec is None:
            problems.append(
                Problem(
                    label,
                    None,
                    field,
                    f"unknown {step.kind} {ref!r} (step {step.id})",
                    f"known: {', '.join(sorted(known)) or 'none'}",
                )
            )
            continue
        kind = spec.target_kind
        if step.target is None and kind not in (runbook.target_kind, "node"):
            problems.append(
                Problem(
                    label,
                    None,
                    f"steps[{i}].target",
                    f"{ref} applies to {kind} targets, not to a {runbook.target_kind} "
                    f"(step {step.id})",
                    "name its target with target: '...'",
                )
            )
    return problems
