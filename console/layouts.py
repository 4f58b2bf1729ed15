"""Layouts: which panes go where, from ``layouts/*.yaml``.

A layout is rows of panes; each row has a height (``1fr``-style share or a
number of lines) and each pane a width. Pane ids are those the core and the
plugins declare (``core.alerts``, ``services.status``); ``check_layout`` says
which ids are unknown. Errors name file:line like the inventory's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from console.inventory.problems import InventoryError, Problem, did_you_mean, format_loc
from console.inventory.validate import problems_from_validation
from console.inventory.yamlio import LineMap, read_yaml_file
from console.registry import CORE_PANES

LAYOUTS_ENV = "DCC_LAYOUTS_DIR"
DEFAULT_LAYOUTS_DIR = Path(__file__).resolve().parent.parent / "layouts"
CORE_PANE_IDS = tuple(pane.id for pane in CORE_PANES)
_SIZE = re.compile(r"^(\d+(\.\d+)?fr|\d+%|auto)$")


def _size(value: str | int) -> str | int:
    if isinstance(value, int):
        if value < 1:
            raise ValueError("a size in lines must be at least 1")
        return value
    if not _SIZE.match(value.strip()):
        raise ValueError(
            "a size is a number of lines (8), a share ('1fr', '2fr'), a percentage or 'auto'"
        )
    return value.strip()


Size = Annotated[str | int, AfterValidator(_size)]
"""Lines (``8``), a share of the free space (``"1fr"``), ``"50%"`` or ``"auto"``."""


class LayoutError(InventoryError):
    """A layout was refused; ``problems`` says why (file, line, field, hint)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlacedPane(_Model):
    """A pane placed in a row."""

    id: str = Field(min_length=1)
    """The pane's id as its plugin declares it: ``services.status``."""
    width: Size = "1fr"
    title: str | None = None
    """Overrides the pane's own title."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Passed to the pane (its meaning is the pane's)."""


class LayoutRow(_Model):
    height: Size = "1fr"
    panes: list[PlacedPane] = Field(min_length=1)


class Layout(_Model):
    name: str = Field(min_length=1)
    title: str = ""
    key: str | None = Field(default=None, pattern=r"^[a-z0-9]$")
    """One key that switches to this layout (a lowercase letter or a digit)."""
    rows: list[LayoutRow] = Field(min_length=1)

    _lines: dict[tuple[str | int, ...], int] = PrivateAttr(default_factory=dict)
    _file: str = PrivateAttr(default="")

    @property
    def file(self) -> str:
        """The file it was loaded from (for messages), or ``""``."""
        return self._file

    def pane_ids(self) -> list[str]:
        return [p.id for row in self.rows for p in row.panes]


def search_dirs_default() -> list[Path]:
    """``$DCC_LAYOUTS_DIR`` (``:``-separated) first, then the repository's ``layouts/``."""
    dirs = [Path(d).expanduser() for d in os.environ.get(LAYOUTS_ENV, "").split(os.pathsep) if d]
    return [*dirs, DEFAULT_LAYOUTS_DIR]


def available_layouts(search_dirs: Sequence[Path] | None = None) -> dict[str, Path]:
    """Layout name -> file, in search order (an earlier folder wins on the same name)."""
    found: dict[str, Path] = {}
    for folder in search_dirs if search_dirs is not None else search_dirs_default():
        if not folder.is_dir():
            continue
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            found.setdefault(path.stem, path)
    return found


def load_layout(name_or_path: str | Path, search_dirs: Sequence[Path] | None = None) -> Layout:
    """Load a layout by name (``overview``) or by file path.

    Raises:
        LayoutError: the layout is missing or does not validate.
    """
    text = str(name_or_path)
    path = Path(text).expanduser()
    if not (path.suffix in (".yaml", ".yml") or os.sep in text or path.is_file()):
        known = available_layouts(search_dirs)
        if text not in known:
            raise LayoutError(
                [
                    Problem(
                        text,
                        None,
                        "",
                        f"no layout named {text!r}",
                        did_you_mean(text, known, "layouts"),
                    )
                ]
            )
        path = known[text]
    label = _display(path)
    try:
        data, lines = read_yaml_file(path, label)
    except InventoryError as exc:
        raise LayoutError(exc.problems) from None
    layout = layout_from_data(data, lines, label, default_name=path.stem)
    if layout.name != path.stem:
        raise LayoutError(
            [
                Problem(
                    label,
                    lines.line(("name",)),
                    "name",
                    f"the layout is named {layout.name!r} but its file {path.name!r}",
                    f"rename the file to {layout.name}.yaml or write name: {path.stem}",
                )
            ]
        )
    return layout


def _display(path: Path) -> str:
    """The path relative to the working folder when it is inside it (shorter messages)."""
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def layout_from_data(
    data: Any, lines: LineMap | None = None, label: str = "<layout>", default_name: str = ""
) -> Layout:
    """Validate a layout given as plain data (``lines`` locates errors in its file)."""
    lines = lines or LineMap()
    if not isinstance(data, dict):
        raise LayoutError(
            [Problem(label, lines.line(()), "", "a layout must be a mapping (name:, rows:)")]
        )
    if default_name and "name" not in data:
        data = {"name": default_name, **data}
    try:
        layout = Layout.model_validate(data)
    except ValidationError as exc:
        raise LayoutError(problems_from_validation(exc, Layout, lines, label)) from None
    layout._lines = dict(lines.lines)
    layout._file = label
    return layout


def check_layout(layout: Layout, known_pane_ids: Iterable[str]) -> list[Problem]:
    """Problems with the panes a layout places: unknown ids, a pane placed twice."""
    known = set(known_pane_ids)
    lines = LineMap(dict(layout._lines))
    label = layout.file or f"<layout {layout.name}>"
    problems: list[Problem] = []
    seen: set[str] = set()
    for r, row in enumerate(layout.rows):
        for p, pane in enumerate(row.panes):
            loc = ("rows", r, "panes", p, "id")
            if pane.id not in known:
                problems.append(
                    Problem(
                        label,
                        lines.line(loc),
                        format_loc(loc),
                        f"unknown pane {pane.id!r}",
                        did_you_mean(pane.id, known, "known panes"),
                    )
                )
            elif pane.id in seen:
                problems.append(
                    Problem(
                        label,
                        lines.line(loc),
                        format_loc(loc),
                        f"the pane {pane.id!r} is placed twice",
                        "place each pane once per layout",
                    )
                )
            seen.add(pane.id)
    return problems
