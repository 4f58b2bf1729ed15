"""The site's documents beside its inventory, checked as the flows that read them do.

``dcc check`` validates the inventory and the layouts, then these, each with its
own loader and reference checks (no rule here is new):

- the bring-up checklist: ``scorecard/<stem>.yaml``, else the shipped default
  (``scorecard_model.load_checklist`` + ``check_references``);
- the runbooks: the plugins' built-ins and ``runbooks/*.yaml``
  (``runbook_library.load_library``);
- the drill catalogue: ``drills/<stem>.yaml`` (``drill_model.load_catalogue`` +
  ``check_references``, with the drill console's own extra actions);
- the rollouts: ``rollouts/*.yaml`` (``rollout_model.load_rollout`` +
  ``check_references``, then the planner, as ``dcc rollout plan`` does).

A kind the site has no file for is fine, and said so. A problem a checker
reports without a line gets the line of its field, read from the file.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from console.inventory import Inventory, InventoryError, Problem
from console.inventory.yamlio import LineMap, read_yaml_file
from console.plugin import ActionSpec, CheckSpec, Plugin


@dataclass(slots=True)
class SiteDocs:
    """What was checked, and every problem found (each tagged with its document kind)."""

    checked: list[str] = field(default_factory=list)
    """One line per kind: the files read, or that the site has none."""
    brief: list[str] = field(default_factory=list)
    """The same in a few words each, for a summary line."""
    problems: list[tuple[str, Problem]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Registry:
    plugins: Sequence[Plugin]
    checks: Mapping[str, CheckSpec]
    actions: Mapping[str, ActionSpec]


def check_site_documents(
    inventory_path: Path, inventory: Inventory | None, plugins: Sequence[Plugin]
) -> SiteDocs:
    """Check the scorecard, runbooks, drills and rollouts of the site at ``inventory_path``.

    ``inventory`` is the loaded (and plugin-configured) inventory, or None when it
    is not valid: then what needs it (node expressions, targets, plans) is skipped.
    """
    reg = _Registry(
        plugins,
        {c.id: c for p in plugins for c in p.checks},
        {a.id: a for p in plugins for a in p.actions},
    )
    out = SiteDocs()
    _scorecard(out, inventory_path, inventory, reg)
    _runbooks(out, inventory_path, reg)
    _drills(out, inventory_path, inventory, reg)
    _rollouts(out, inventory_path, inventory, reg)
    out.problems = _locate(out.problems)
    return out


def _add(out: SiteDocs, kind: str, problems: Sequence[Problem]) -> None:
    out.problems.extend((kind, p) for p in problems)


def _load(out: SiteDocs, kind: str, load: Callable[[], Any]) -> Any:
    """``load()``, or None with its problems recorded (never an exception)."""
    try:
        return load()
    except InventoryError as exc:
        _add(out, kind, exc.problems)
    return None


# --------------------------------------------------------------------------- each kind


def _scorecard(
    out: SiteDocs,
    inventory_path: Path,
    inventory: Inventory | None,
    reg: _Registry,
) -> None:
    from console.filtering import parse_filter
    from console.wizards.drill_model import default_catalogue, load_catalogue
    from console.wizards.scorecard_model import (
        DEFAULT_CHECKLIST,
        check_references,
        load_checklist,
        site_checklist,
    )

    demo = inventory is not None and inventory.demo
    path = site_checklist(inventory_path, demo)
    checklist = _load(out, "scorecard", lambda: load_checklist(path))
    if checklist is not None:
        # The drill scenarios it names are checked when the catalogue reads well (a
        # missing or broken one is left out here: the catalogue's own check says so).
        scenarios: list[str] | None = None
        with contextlib.suppress(InventoryError):
            scenarios = [d.id for d in load_catalogue(default_catalogue(inventory_path)).drills]
        expression = None
        if inventory is not None:
            inv = inventory

            def expression(text: str) -> Any:
                return parse_filter(text, inv)

        _add(out, "scorecard", check_references(checklist, reg.checks, scenarios, expression))
    items = "not valid" if checklist is None else _n(len(checklist.doc.item_ids()), "item")
    own = f"scorecard/{inventory_path.stem}.yaml"
    whose = ""
    if path == DEFAULT_CHECKLIST:
        whose = " (the shipped checklist)" if demo else f" (the shipped checklist: no {own})"
    out.checked.append(f"scorecard: {path}, {items}{whose}")
    out.brief.append("the scorecard")


def _runbooks(out: SiteDocs, inventory_path: Path, reg: _Registry) -> None:
    from console.wizards.runbook_library import SITE, load_library, site_runbook_dir

    folder = site_runbook_dir(inventory_path)
    lib = load_library(reg.plugins, folder, checks=reg.checks, actions=reg.actions)
    _add(out, "runbook", lib.problems)
    files = _yaml_files(folder)
    built_in = sum(len(p.runbooks) for p in reg.plugins)
    site = sum(1 for e in lib.all() if e.origin == SITE)
    where = (
        f"{_n(len(files), 'file')} in {folder}/ ({site} loaded)"
        if folder.is_dir()
        else f"none of the site's (no {folder}/)"
    )
    out.checked.append(f"runbooks: {_n(built_in, 'built-in file')}; {where}")
    out.brief.append(_n(built_in + len(files), "runbook file"))


def _drills(
    out: SiteDocs, inventory_path: Path, inventory: Inventory | None, reg: _Registry
) -> None:
    from console.wizards.drill_model import check_references, default_catalogue, load_catalogue

    path = default_catalogue(inventory_path)
    if not path.is_file():
        out.checked.append(f"drills: none (no {path})")
        return
    catalogue = _load(out, "drill catalogue", lambda: load_catalogue(path))
    if catalogue is None:
        out.checked.append(f"drills: {path}, not valid")
        out.brief.append("the drill catalogue")
        return
    actions = [*reg.actions, *(a.id for a in _drill_extra_actions(inventory))]
    probes = [d.id for p in reg.plugins for d in p.data_probes]
    _add(
        out,
        "drill catalogue",
        check_references(catalogue, list(reg.checks), actions, str(path), probes),
    )
    out.checked.append(f"drills: {path}, {_n(len(catalogue.drills), 'scenario')}")
    out.brief.append("the drill catalogue")


def _drill_extra_actions(inventory: Inventory | None) -> list[ActionSpec]:
    """What the drill console adds to the plugins' actions: the dead man's switches,
    and in the demo the lab's own (``console.wizards.drill_desk``, ``console.session``)."""
    from console.wizards.drill_deadman import DEADMAN_ACTIONS

    extra = list(DEADMAN_ACTIONS)
    if inventory is not None and inventory.demo:
        from console.lab.faults import FaultBook
        from console.wizards.drill_lab import lab_fault_actions

        extra.extend(lab_fault_actions(FaultBook(lambda: 0.0)))
    return extra


def _rollouts(
    out: SiteDocs, inventory_path: Path, inventory: Inventory | None, reg: _Registry
) -> None:
    from console.wizards.drill_env import known_targets
    from console.wizards.rollout_env import rollout_files, rollouts_dir
    from console.wizards.rollout_model import check_references, load_rollout
    from console.wizards.rollout_plan import plan_rollout

    folder = rollouts_dir(inventory_path)
    files = rollout_files(folder)
    targets = None if inventory is None else known_targets(reg.plugins, inventory)
    for path in files:
        rollout = _load(out, "rollout", partial(load_rollout, path))
        if rollout is None:
            continue
        problems = check_references(rollout, reg.checks, reg.actions, targets)
        _add(out, "rollout", problems)
        if not problems and inventory is not None:
            _load(out, "rollout", partial(plan_rollout, rollout, inventory))
    if not folder.is_dir():
        out.checked.append(f"rollouts: none (no {folder}/)")
        return
    names = ", ".join(p.name for p in files)
    out.checked.append(
        f"rollouts: {_n(len(files), 'file')} in {folder}/" + (f" ({names})" if names else "")
    )
    out.brief.append(_n(len(files), "rollout"))


# --------------------------------------------------------------------------- lines


_PART = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")


def _locate(tagged: Sequence[tuple[str, Problem]]) -> list[tuple[str, Problem]]:
    """Each problem, with the line of its field where its checker gave none."""
    maps: dict[str, tuple[Any, LineMap] | None] = {}
    located = []
    for kind, problem in tagged:
        if problem.line is None and problem.field:
            if problem.file not in maps:
                maps[problem.file] = _read(problem.file)
            found = maps[problem.file]
            line = None if found is None else _line_of(problem.field, *found)
            if line is not None:
                problem = Problem(problem.file, line, problem.field, problem.message, problem.hint)
        located.append((kind, problem))
    return located


def _read(file: str) -> tuple[Any, LineMap] | None:
    path = Path(file)
    if not path.is_file():
        return None
    try:
        return read_yaml_file(path)
    except InventoryError:
        return None


def _line_of(field_path: str, data: Any, lines: LineMap) -> int | None:
    """The line of ``steps[2].action`` or ``minio-node.restore`` (an item named by its
    ``id:``, in the list that holds it) in a parsed document; None when not found."""
    loc: list[str | int] = []
    node = data
    for match in _PART.finditer(field_path):
        key, index = match.group(1), match.group(2)
        part: str | int = int(index) if index is not None and index.isdigit() else key or index
        found_here = (isinstance(node, list) and isinstance(part, int) and part < len(node)) or (
            isinstance(node, dict) and part in node
        )
        if found_here:
            loc.append(part)
            node = node[part]
        else:
            found = _by_id(node, str(part))
            if found is None:
                break
            loc.extend(found[0])
            node = found[1]
    return lines.line(tuple(loc)) if loc else None


def _by_id(node: Any, ident: str) -> tuple[list[str | int], Any] | None:
    """The item with ``id: ident`` in ``node`` (a list) or in a list one key below it."""
    lists: list[tuple[list[str | int], Any]] = []
    if isinstance(node, list):
        lists.append(([], node))
    elif isinstance(node, dict):
        lists.extend(([k], v) for k, v in node.items() if isinstance(v, list))
    for prefix, items in lists:
        for i, item in enumerate(items):
            if isinstance(item, dict) and item.get("id") == ident:
                return [*prefix, i], item
    return None


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _n(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
