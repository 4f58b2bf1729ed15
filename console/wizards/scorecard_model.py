"""The bring-up checklist: the seed's phases as YAML, each item checked live or signed off.

A checklist has phases (base environment, platform, production-ready); each
phase has items of one kind:

- ``check``: a plugin's ``CheckSpec`` (by id) over the targets it applies to,
  evaluated live over the Store; ``targets`` (a node expression, or names and
  globs), ``match`` (target attributes) and ``params`` (added to the target's
  attributes) narrow and tune it;
- ``racked``: every selected node is placed in a rack at a U slot (the inventory);
- ``backups``: backups are declared in the inventory (``backups:``), optionally
  named ones and restores tested recently;
- ``drills``: the drill catalogue's scenarios have a passing report in the drill
  history, recent enough;
- ``alerts``: no open alert worse than a severity;
- ``manual``: a named operator signs it off with a note.

The file is read like the inventory (file:line: field: message, hint). The
shipped default (``scorecard_default.yaml`` beside this module) is the seed's
three phases; a site keeps its own as ``scorecard/<inventory stem>.yaml`` beside
its inventory, which replaces the default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from console.inventory.problems import Problem, did_you_mean
from console.inventory.validate import validate_document
from console.inventory.yamlio import LineMap, read_yaml_file
from console.plugin import CheckSpec

DEFAULT_CHECKLIST = Path(__file__).resolve().with_name("scorecard_default.yaml")

ItemKind = Literal["check", "racked", "backups", "drills", "alerts", "manual"]
KINDS: tuple[ItemKind, ...] = ("check", "racked", "backups", "drills", "alerts", "manual")
_CHECK_ONLY = ("targets", "match", "params")

ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Racked(_Doc):
    targets: str | None = None
    """A node expression (``@role:gpu-train``, ``gpu[001-016]``); default every node."""


class Backups(_Doc):
    require: list[str] = Field(default_factory=list)
    """Backups that must be declared, by name or by a word of what they cover."""
    restore_tested_within_days: int | None = Field(default=None, ge=1)
    """Each (required, else every) backup had a restore tested within this many days."""


class Drills(_Doc):
    scenarios: list[str] = Field(default_factory=list)
    """Scenario ids; empty: every scenario in the site's drill catalogue."""
    within_days: int | None = Field(default=None, ge=1)
    """A pass older than this does not count."""


class Alerts(_Doc):
    worst: Literal["ok", "warning"] = "warning"
    """The worst open alert allowed: ``warning`` (no critical one) or ``ok`` (none)."""


class Manual(_Doc):
    role: Literal["operator", "admin"] = "operator"
    """Who may sign it off (the roles file's role, or higher)."""
    valid_days: int | None = Field(default=None, ge=1)
    """A sign-off older than this has expired and must be renewed."""


def _true_is_empty(value: Any) -> Any:
    # `manual: true` / `racked: true` read better than `{}` for a kind without options.
    return {} if value is True else value


class Item(_Doc):
    """One line of the scorecard."""

    id: str = Field(pattern=ID_PATTERN)
    """Unique across the checklist: what ``dcc scorecard sign ID`` names."""
    title: str = Field(min_length=1, max_length=100)
    description: str = ""
    check: str | None = Field(default=None, min_length=1)
    """A plugin's CheckSpec id (``infiniband.links``)."""
    targets: str | list[str] | None = None
    """Node checks: a node expression. Other kinds: names or globs (``triton-*``)."""
    match: dict[str, str | list[str]] = Field(default_factory=dict)
    """Only targets whose attributes have these values (``service: [mlflow]``)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Added to each target's attributes for the check (``ib_rate_gbps: 400``)."""
    min_targets: int = Field(default=1, ge=0)
    """Fewer matching targets than this is unknown (nothing to check is no pass)."""
    racked: Racked | None = None
    backups: Backups | None = None
    drills: Drills | None = None
    alerts: Alerts | None = None
    manual: Manual | None = None

    @field_validator("racked", "backups", "drills", "alerts", "manual", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> Any:
        return _true_is_empty(value)

    @model_validator(mode="after")
    def _one_kind(self) -> Item:
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of {', '.join(KINDS)}"
                + (f" (found {', '.join(given)})" if given else "")
            )
        if given[0] != "check":
            extra = [k for k in _CHECK_ONLY if getattr(self, k)]
            if extra:
                raise ValueError(f"{', '.join(extra)} belong to a 'check' item")
        return self

    @property
    def kind(self) -> ItemKind:
        return next(k for k in KINDS if getattr(self, k) is not None)


class Phase(_Doc):
    id: str = Field(pattern=ID_PATTERN)
    title: str = Field(min_length=1)
    description: str = ""
    items: list[Item] = Field(min_length=1)


class Checklist(_Doc):
    """A scorecard's checklist file as written."""

    title: str = "Bring-up scorecard"
    phases: list[Phase] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Checklist:
        for what, ids in (
            ("phase", [p.id for p in self.phases]),
            ("item", [i.id for p in self.phases for i in p.items]),
        ):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"{what} ids must be unique: {', '.join(dupes)}")
        return self

    def item(self, item_id: str) -> tuple[Phase, Item] | None:
        for phase in self.phases:
            for item in phase.items:
                if item.id == item_id:
                    return phase, item
        return None

    def item_ids(self) -> list[str]:
        return [i.id for p in self.phases for i in p.items]


class LoadedChecklist(BaseModel):
    """A checklist and where it came from (for messages and the record)."""

    model_config = ConfigDict(frozen=True)

    doc: Checklist
    label: str = "<scorecard>"
    lines: dict[tuple[str | int, ...], int] = Field(default_factory=dict)

    def line_of(self, *loc: str | int) -> int | None:
        return LineMap(dict(self.lines)).line(tuple(loc))


def checklist_from_data(
    data: Any, label: str = "<scorecard>", lines: LineMap | None = None
) -> LoadedChecklist:
    """Validate plain data as a checklist; raises InventoryError naming file:line."""
    lines = lines or LineMap()
    doc = validate_document(
        data,
        Checklist,
        lines,
        label,
        what="a scorecard checklist must be a mapping with 'phases:'",
        example="console/wizards/scorecard_default.yaml",
    )
    return LoadedChecklist(doc=doc, label=label, lines=dict(lines.lines))


def load_checklist(path: str | Path) -> LoadedChecklist:
    """Read and validate a checklist file; raises InventoryError with every problem."""
    given = Path(path)
    data, lines = read_yaml_file(given, str(given))
    return checklist_from_data(data, str(given), lines)


def site_checklist(inventory_source: Path | None, demo: bool = False) -> Path:
    """The site's checklist (``scorecard/<stem>.yaml`` beside the inventory), else the default."""
    if inventory_source is not None and not demo:
        own = inventory_source.parent / "scorecard" / f"{inventory_source.stem}.yaml"
        if own.exists():
            return own
    return DEFAULT_CHECKLIST


def check_references(
    checklist: LoadedChecklist,
    checks: Mapping[str, CheckSpec],
    scenarios: Sequence[str] | None = None,
    node_expression: Any = None,
) -> list[Problem]:
    """Problems with what the checklist names: checks no plugin declares, drill scenarios
    the catalogue lacks (when given), node expressions that do not parse (when a parser
    ``node_expression(text)`` raising ValueError is given)."""
    out: list[Problem] = []
    label = checklist.label
    for p, phase in enumerate(checklist.doc.phases):
        for i, item in enumerate(phase.items):
            where = f"phases[{p}].items[{i}]"

            def add(field: str, message: str, hint: str, *loc: str | int) -> None:
                line = checklist.line_of("phases", p, "items", i, *loc)  # noqa: B023
                out.append(Problem(label, line, f"{where}.{field}", message, hint))  # noqa: B023

            if item.check is not None:
                spec = checks.get(item.check)
                if spec is None:
                    add(
                        "check",
                        f"unknown check {item.check!r}",
                        did_you_mean(item.check, checks, "installed checks"),
                        "check",
                    )
                elif (
                    spec.target_kind == "node"
                    and isinstance(item.targets, str)
                    and node_expression is not None
                ):
                    try:
                        node_expression(item.targets)
                    except ValueError as exc:
                        add("targets", str(exc), "a node set or @group:value", "targets")
            if item.racked is not None and item.racked.targets and node_expression is not None:
                try:
                    node_expression(item.racked.targets)
                except ValueError as exc:
                    add("racked.targets", str(exc), "a node set or @group:value", "racked")
            if item.drills is not None and scenarios is not None:
                for s, name in enumerate(item.drills.scenarios):
                    if name not in scenarios:
                        add(
                            f"drills.scenarios[{s}]",
                            f"no drill scenario {name!r} in the catalogue",
                            did_you_mean(name, scenarios, "scenarios"),
                            "drills",
                            "scenarios",
                            s,
                        )
    return out
