"""The declaration of a phased rollout: what to change, where, with which checks and caps.

A rollout is a YAML file kept with the site's inventory (``inventory/rollouts/``).
It is read like the inventory: plain YAML with the line of every key remembered,
validated by pydantic models with ``extra="forbid"``, and every problem reported
as ``file:line: field: message (hint: ...)`` in one ``InventoryError``.

References to the plugins (check ids, action ids) are checked against what the
registry offers by ``check_references``; the models themselves know no plugin.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from console.inventory.problems import Problem, did_you_mean
from console.inventory.validate import validate_document
from console.inventory.yamlio import LineMap, read_yaml_file
from console.plugin import ActionSpec, CheckSpec


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChangeStep(_Doc):
    """What runs on each node: a shell command over SSH, or a plugin action by id."""

    command: str | None = Field(default=None, min_length=1)
    """Run over SSH on the node (as the inventory's SSH user); exit status 0 is success."""
    action: str | None = Field(default=None, min_length=1)
    """A plugin action id (``power.cycle``), run through the ActionRunner on the node."""
    inputs: dict[str, Any] = Field(default_factory=dict)
    """The action's typed inputs (validated by the action's own model)."""
    timeout_s: float = Field(default=600.0, gt=0, le=24 * 3600)

    @model_validator(mode="after")
    def _exactly_one(self) -> ChangeStep:
        if (self.command is None) == (self.action is None):
            raise ValueError("give exactly one of 'command' (over SSH) or 'action' (a plugin id)")
        if self.command is not None and self.inputs:
            raise ValueError("'inputs' belong to an action, not to a command")
        return self

    def describe(self) -> str:
        """One line for the plan: what runs on the node."""
        if self.command is not None:
            return f"ssh: {self.command}"
        extra = " ".join(f"{k}={v}" for k, v in sorted(self.inputs.items()))
        return f"action {self.action}" + (f" ({extra})" if extra else "")


class SiteCheck(_Doc):
    """A check on one named target that is not the node being changed (a service, a
    cluster, the fabric): ``{check: services.healthy, target: mlflow}``. It is
    evaluated with the node's own checks, so a change that breaks a shared service
    stops the node like a failing node check does."""

    check: str = Field(min_length=1)
    target: str = Field(min_length=1)
    """The target's name as its plugin lists it (``mlflow``, ``k8s-demo``, ``fabric``)."""

    @property
    def key(self) -> str:
        return f"{self.check}@{self.target}"


CheckRef = str | SiteCheck
"""A check in a rollout: a node check id (run on each node), or a SiteCheck."""


def check_label(ref: CheckRef) -> str:
    """``gpu.healthy`` or ``services.healthy@mlflow``: one token for plans and messages."""
    return ref if isinstance(ref, str) else ref.key


class Approval(_Doc):
    """Who must agree before the rollout starts (beyond the operator who starts it)."""

    second_operator: bool = False
    """A different operator must approve the start (two-person rule)."""
    above_targets: int | None = Field(default=None, ge=1)
    """A second operator is needed when the plan has more target nodes than this."""
    timeout_s: float = Field(default=900.0, gt=0, le=24 * 3600)
    """How long the start waits for the second operator before it is refused."""


class DrainPolicy(_Doc):
    """How a node is taken out of service before the change."""

    enabled: bool = True
    """Drain through the node's schedulers (Slurm drain, Kubernetes cordon and drain)."""
    reason: str = Field(default="rollout {name}", min_length=3)
    """The reason schedulers record (Slurm wants 3 characters or more); ``{name}``: the rollout."""
    wait_jobs_s: float = Field(default=1800.0, ge=0)
    """How long to wait for running jobs to finish before the node counts as failed."""


class Caps(_Doc):
    """Blast-radius caps: how much one wave may take out of each failure domain."""

    per_rack: int = Field(default=1, ge=1)
    """Nodes of one rack in one wave."""
    per_ib_leaf: int = Field(default=1, ge=1)
    """Nodes behind one InfiniBand leaf switch (node label ``ib_leaf``) in one wave."""
    per_partition: int = Field(default=2, ge=1)
    """Nodes of one Slurm partition in one wave."""
    per_zone: int = Field(default=1, ge=1)
    """Nodes of one Kubernetes zone in one wave."""
    max_pool_pct: float = Field(default=25.0, gt=0, le=100)
    """At most this share of any pool (role, partition, zone) out of service at once."""
    max_wave: int = Field(default=8, ge=1)
    """Nodes in one wave, whatever the domains."""


class Gate(_Doc):
    """What must hold between two waves."""

    max_fail_pct: float = Field(default=0.0, ge=0, lt=100)
    """Halt when failed nodes are *more than* this share (of the wave, or of all done so
    far). 0 means any failure halts (Ansible's ``any_errors_fatal``)."""
    check_changed: bool = True
    """Re-run the post-checks on every node already changed before the next wave."""
    approval: bool = False
    """Wait for an operator's approval before each wave after the canary."""


class RolloutDoc(_Doc):
    """A rollout file as written."""

    name: str = Field(min_length=1, max_length=80)
    description: str = ""
    targets: str = Field(min_length=1)
    """A node set over the inventory's node names (``gpu[001-008]``)."""
    canary: str | None = None
    """The node changed first, alone; default the first target."""
    expect_count: int | None = Field(default=None, ge=1)
    """The number of nodes the operator expects ``targets`` to match (typed, against a
    typo widening the set); required when the targets are every node of the site."""
    max_targets: int = Field(default=64, ge=1)
    """More targets than this are refused (raise it deliberately, in review)."""
    change: ChangeStep
    rollback: ChangeStep | None = None
    """How to undo the change on one node, when there is a way."""
    pre_checks: list[CheckRef] = Field(default_factory=list)
    """Checks that must pass before a node is touched (node check ids, or SiteChecks)."""
    post_checks: list[CheckRef] = Field(min_length=1)
    """Checks that must pass after the change (a stop condition is mandatory)."""
    resume_checks: list[CheckRef] = Field(default_factory=list)
    """Checks that must pass after the node is resumed (back in Slurm/K8s)."""
    settle_s: float = Field(default=30.0, ge=0, le=3600)
    """Wait this long after the change before the post-checks count."""
    check_timeout_s: float = Field(default=300.0, gt=0)
    """Post-checks still failing after settle + this long fail the node."""
    poll_s: float = Field(default=10.0, gt=0, le=600)
    """How often checks are re-read while waiting (a halt takes effect within one poll)."""
    drain: DrainPolicy = Field(default_factory=DrainPolicy)
    caps: Caps = Field(default_factory=Caps)
    gate: Gate = Field(default_factory=Gate)
    approval: Approval = Field(default_factory=Approval)

    def needs_second_operator(self, targets: int) -> str | None:
        """Why a second operator must approve the start, or None."""
        a = self.approval
        if a.second_operator:
            return "the rollout file asks for a second operator (approval.second_operator)"
        if a.above_targets is not None and targets > a.above_targets:
            return (
                f"the plan has {targets} target nodes, more than approval.above_targets "
                f"{a.above_targets}"
            )
        return None


class Rollout(BaseModel):
    """A loaded rollout: the document and where it came from (for messages)."""

    model_config = ConfigDict(frozen=True)

    doc: RolloutDoc
    label: str = "<rollout>"
    lines: dict[tuple[str | int, ...], int] = Field(default_factory=dict)

    def line_of(self, *loc: str | int) -> int | None:
        return LineMap(dict(self.lines)).line(tuple(loc))


def rollout_from_data(data: Any, label: str = "<rollout>", lines: LineMap | None = None) -> Rollout:
    """Validate plain data as a rollout; raises InventoryError naming file:line."""
    lines = lines or LineMap()
    doc = validate_document(
        data,
        RolloutDoc,
        lines,
        label,
        what="a rollout must be a mapping (name:, targets:, change: ...)",
        example="inventory/rollouts/demo-driver-upgrade.yaml",
    )
    return Rollout(doc=doc, label=label, lines=dict(lines.lines))


def load_rollout(path: str | Path) -> Rollout:
    """Read and validate a rollout file; raises InventoryError with every problem."""
    given = Path(path)
    data, lines = read_yaml_file(given, str(given))
    return rollout_from_data(data, str(given), lines)


def check_references(
    rollout: Rollout,
    checks: Mapping[str, CheckSpec],
    actions: Mapping[str, ActionSpec],
    targets: Mapping[tuple[str, str], Any] | None = None,
) -> list[Problem]:
    """Problems with the plugin ids a rollout names (unknown, or of the wrong kind).

    A bare check id runs on each node, so it must be a node check; a SiteCheck
    names its target, which must be one of ``targets`` ((kind, name) -> Target,
    as the plugins list them) when those are given.
    """
    doc, out = rollout.doc, []
    for key in ("pre_checks", "post_checks", "resume_checks"):
        for i, ref in enumerate(getattr(doc, key)):
            check_id = ref if isinstance(ref, str) else ref.check
            where = f"{key}[{i}]" if isinstance(ref, str) else f"{key}[{i}].check"
            line = rollout.line_of(key, i)
            spec = checks.get(check_id)
            if spec is None:
                hint = did_you_mean(check_id, checks, "installed checks")
                out.append(Problem(rollout.label, line, where, f"unknown check {check_id!r}", hint))
            elif isinstance(ref, str) and spec.target_kind != "node":
                out.append(
                    Problem(
                        rollout.label,
                        line,
                        where,
                        f"check {check_id!r} is about a {spec.target_kind}, not a node",
                        f"name its target: {{check: {check_id}, target: NAME}}",
                    )
                )
            elif not isinstance(ref, str) and targets is not None:
                known = [n for (kind, n) in targets if kind == spec.target_kind]
                if ref.target not in known:
                    out.append(
                        Problem(
                            rollout.label,
                            rollout.line_of(key, i, "target") or line,
                            f"{key}[{i}].target",
                            f"no {spec.target_kind} called {ref.target!r} for {check_id}",
                            did_you_mean(ref.target, known, f"{spec.target_kind} targets"),
                        )
                    )
    for key in ("change", "rollback"):
        step: ChangeStep | None = getattr(doc, key)
        if step is None or step.action is None:
            continue
        line = rollout.line_of(key, "action")
        action = actions.get(step.action)
        if action is None:
            hint = did_you_mean(step.action, actions, "installed actions")
            out.append(
                Problem(
                    rollout.label, line, f"{key}.action", f"unknown action {step.action!r}", hint
                )
            )
            continue
        if action.target_kind != "node":
            out.append(
                Problem(
                    rollout.label,
                    line,
                    f"{key}.action",
                    f"action {step.action!r} acts on a {action.target_kind}, not a node",
                    "use a node action, or a command over SSH",
                )
            )
            continue
        fields = ", ".join(action.inputs.model_fields)
        try:
            action.inputs.model_validate(step.inputs)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                where = ".".join(str(p) for p in err["loc"])
                out.append(
                    Problem(
                        rollout.label,
                        rollout.line_of(key, "inputs"),
                        f"{key}.inputs" + (f".{where}" if where else ""),
                        f"input for {step.action}: {err['msg']}",
                        f"inputs of {step.action}: {fields or 'none'}",
                    )
                )
    return out
