"""``dcc check [FILE] [--layout NAME ...]``: validate a site's documents, no TUI.

The inventory and the layouts, then what lives beside the inventory: the
scorecard checklist, runbooks, the drill catalogue and rollouts
(``console.wizards.site_docs``). Prints ``OK: ...`` and what was checked, or
every problem on its own line (file:line: field: message (hint: ...)) grouped
per file, then a summary, to stderr, and exits 1. Never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from console.inventory import (
    Inventory,
    InventoryError,
    Problem,
    apply_plugin_configs,
    load_inventory,
)
from console.layouts import (
    CORE_PANE_IDS,
    Layout,
    LayoutError,
    available_layouts,
    check_layout,
    load_layout,
)
from console.plugin import Plugin

log = logging.getLogger(__name__)

DEMO_INVENTORY = Path(__file__).resolve().parents[1] / "inventory" / "demo.yaml"


@dataclass(slots=True)
class Report:
    problems: list[tuple[str, Problem]] = field(default_factory=list)
    """Every problem with the kind of document it is in (inventory, layout, runbook ...)."""
    summary: str = ""
    checked: list[str] = field(default_factory=list)
    brief: list[str] = field(default_factory=list)


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``check`` command to ``subparsers`` (from ``add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "check",
        help="validate an inventory, layouts and the site's flow files, no console",
        description="Validate an inventory file, the layouts, and the files beside the "
        "inventory (scorecard/, runbooks/, drills/, rollouts/); print every problem with its "
        "file, line and a hint, per file. Exit status 0 when all is well, 1 otherwise.",
    )
    parser.add_argument(
        "file",
        metavar="FILE",
        nargs="?",
        help="the inventory YAML file (default: --inventory, else the demo's)",
    )
    parser.add_argument(
        "--layout",
        dest="layouts",
        metavar="NAME_OR_PATH",
        action="append",
        default=None,
        help="a layout to check (repeatable); default: every layout found",
    )
    parser.set_defaults(command="check")
    return parser


def run(args: argparse.Namespace, plugins: Sequence[Plugin] | None = None) -> int:
    """Run ``dcc check``; returns the exit status."""
    file = Path(args.file or getattr(args, "inventory", None) or DEMO_INVENTORY)
    try:
        report = _check(file, getattr(args, "layouts", None), plugins or ())
    except Exception as exc:  # a bug here must still not show a traceback to the operator
        log.exception("dcc check failed")
        print(f"{file}: internal error while checking: {exc!r}", file=sys.stderr)
        return 1
    if report.problems:
        by_file: dict[str, list[tuple[str, Problem]]] = {}
        for kind, problem in report.problems:
            by_file.setdefault(problem.file, []).append((kind, problem))
        for name, found in by_file.items():
            print(f"-- {name} ({found[0][0]}, {_count(len(found), 'problem')})", file=sys.stderr)
            for _, problem in found:
                print(problem, file=sys.stderr)
        print(
            f"{_count(len(report.problems), 'problem')} in {_count(len(by_file), 'file')}; "
            f"checked {', '.join(report.brief)}",
            file=sys.stderr,
        )
        return 1
    print(report.summary)
    for line in report.checked:
        print(f"  {line}")
    return 0


def _check(file: Path, layout_names: Sequence[str] | None, plugins: Sequence[Plugin]) -> Report:
    from console.wizards.site_docs import check_site_documents

    problems: list[Problem] = []
    inventory: Inventory | None = None
    try:
        inventory = load_inventory(file)
        models: dict[str, type[BaseModel] | None] = {p.name: p.config_model for p in plugins}
        inventory = apply_plugin_configs(inventory, models)
    except InventoryError as exc:
        problems.extend(exc.problems)
        inventory = None
    report = Report(problems=[("inventory", p) for p in problems])

    known = {*CORE_PANE_IDS, *(pane.id for p in plugins for pane in p.panes)}
    names: list[str | Path] = (
        list(layout_names) if layout_names else list(available_layouts().values())
    )
    layouts: list[Layout] = []
    layout_problems: list[Problem] = []
    if not names:
        layout_problems.append(
            Problem("layouts", None, "", "no layouts found", "check DCC_LAYOUTS_DIR")
        )
    for name in names:
        try:
            layout = load_layout(name)
        except LayoutError as exc:
            layout_problems.extend(exc.problems)
            continue
        layout_problems.extend(check_layout(layout, known))
        layouts.append(layout)
    layout_problems.extend(_shared_keys(layouts))
    report.problems.extend(("layout", p) for p in layout_problems)
    docs = check_site_documents(file, inventory, plugins)
    report.problems.extend(docs.problems)
    report.checked = docs.checked
    report.brief = ["the inventory", _count(len(layouts), "layout"), *docs.brief]
    if report.problems or inventory is None:
        return report
    doc = inventory.doc
    clusters = len(doc.clusters.kubernetes) + len(doc.clusters.slurm)
    racks = sum(1 for _ in inventory.racks())
    report.summary = (
        f"OK: {inventory.site.name}: {_count(len(inventory.nodes), 'node')} in "
        f"{_count(racks, 'rack')}, {_count(clusters, 'cluster')}; "
        f"layouts {', '.join(layout.name for layout in layouts)}"
    )
    return report


def _shared_keys(layouts: Sequence[Layout]) -> list[Problem]:
    owner: dict[str, Layout] = {}
    problems = []
    for layout in layouts:
        if layout.key is None:
            continue
        if layout.key in owner:
            problems.append(
                Problem(
                    layout.file,
                    None,
                    "key",
                    f"key {layout.key!r} also switches to layout {owner[layout.key].name!r}",
                    "give each layout its own key",
                )
            )
        owner.setdefault(layout.key, layout)
    return problems


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
