"""The values the ActionRunner hands out: plans, results, refusals, confirmation text.

Kept apart from the runner so the UI and tests can use them without the
runner's machinery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ClusterShell.NodeSet import NodeSet

from console.plugin import ActionInputs, ActionSpec, Preview, Target

OutcomeName = Literal["ok", "failed", "unknown", "refused"]


class ActionRefused(Exception):
    """The runner refused to plan or run an action; the message says why."""


class ActionInputError(ActionRefused):
    """The action's inputs did not validate; the message names the field."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What will run, shown to the operator before confirmation. Runs nothing."""

    spec: ActionSpec
    targets: tuple[Target, ...]
    inputs: ActionInputs
    """The validated inputs."""
    previews: tuple[Preview, ...]
    """One per target, same order."""
    confirm_text: str | None
    """For a destructive action, what the operator must type exactly; None: a yes/no."""
    raw_inputs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def target_names(self) -> list[str]:
        return [t.name for t in self.targets]

    @property
    def warnings(self) -> list[str]:
        return [w for p in self.previews for w in p.warnings]


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What happened to one target."""

    target: Target
    outcome: OutcomeName
    detail: str = ""
    output: str = ""
    duration_ms: int | None = None
    action_uid: str = ""


def confirm_text_for(targets: Sequence[Target]) -> str:
    """The exact string a destructive action's confirmation needs.

    One target: its name. Several: the folded node set of their names
    (``gpu[001-003]``), so the operator reads and types the whole blast radius.
    """
    names = [t.name for t in targets]
    if len(names) == 1:
        return names[0]
    try:
        return str(NodeSet.fromlist(names))
    except Exception:  # names NodeSet cannot parse (spaces, brackets): list them
        return ",".join(sorted(names))
