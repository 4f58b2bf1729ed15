"""``dcc check FILE [--layout NAME ...]``: validate an inventory and layouts, no TUI.

Prints one ``OK: ...`` line, or every problem on its own line (file:line:
field: message (hint: ...)) to stderr and exits 1. Never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
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


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``check`` command to ``subparsers`` (from ``add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "check",
        help="validate an inventory (and layouts) without starting the console",
        description="Validate an inventory file and layouts; print every problem with its "
        "file, line and a hint. Exit status 0 when all is well, 1 otherwise.",
    )
    parser.add_argument("file", metavar="FILE", help="the inventory YAML file")
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
    try:
        problems, summary = _check(Path(args.file), getattr(args, "layouts", None), plugins or ())
    except Exception as exc:  # a bug here must still not show a traceback to the operator
        log.exception("dcc check failed")
        print(f"{args.file}: internal error while checking: {exc!r}", file=sys.stderr)
        return 1
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found", file=sys.stderr)
        return 1
    print(summary)
    return 0


def _check(
    file: Path, layout_names: Sequence[str] | None, plugins: Sequence[Plugin]
) -> tuple[list[Problem], str]:
    problems: list[Problem] = []
    inventory: Inventory | None = None
    try:
        inventory = load_inventory(file)
        models: dict[str, type[BaseModel] | None] = {p.name: p.config_model for p in plugins}
        inventory = apply_plugin_configs(inventory, models)
    except InventoryError as exc:
        problems.extend(exc.problems)

    known = {*CORE_PANE_IDS, *(pane.id for p in plugins for pane in p.panes)}
    names: list[str | Path] = (
        list(layout_names) if layout_names else list(available_layouts().values())
    )
    if not names:
        problems.append(Problem("layouts", None, "", "no layouts found", "check DCC_LAYOUTS_DIR"))
    layouts: list[Layout] = []
    for name in names:
        try:
            layout = load_layout(name)
        except LayoutError as exc:
            problems.extend(exc.problems)
            continue
        problems.extend(check_layout(layout, known))
        layouts.append(layout)
    problems.extend(_shared_keys(layouts))
    if problems or inventory is None:
        return problems, ""
    doc = inventory.doc
    clusters = len(doc.clusters.kubernetes) + len(doc.clusters.slurm)
    racks = sum(1 for _ in inventory.racks())
    summary = (
        f"OK: {inventory.site.name}: {_count(len(inventory.nodes), 'node')} in "
        f"{_count(racks, 'rack')}, {_count(clusters, 'cluster')}; "
        f"layouts {', '.join(layout.name for layout in layouts)}"
    )
    return [], summary


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
