"""Layouts: loading, errors with file:line, unknown pane ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.layouts import (
    CORE_PANE_IDS,
    DEFAULT_LAYOUTS_DIR,
    LayoutError,
    available_layouts,
    check_layout,
    load_layout,
    search_dirs_default,
)

KNOWN = {*CORE_PANE_IDS, "services.status"}

GOOD = """\
title: Test
key: t
rows:
  - height: 8
    panes:
      - {id: core.alerts, width: 2fr, title: Alerts}
      - {id: services.status, options: {compact: true}}
  - panes:
      - id: core.nodes
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def test_a_good_layout_loads_by_name(tmp_path: Path) -> None:
    write(tmp_path, "mine", GOOD)
    layout = load_layout("mine", [tmp_path])
    assert layout.name == "mine" and layout.key == "t"
    assert layout.rows[0].height == 8 and layout.rows[1].height == "1fr"
    assert layout.rows[0].panes[0].width == "2fr" and layout.rows[0].panes[1].options == {
        "compact": True
    }
    assert layout.pane_ids() == ["core.alerts", "services.status", "core.nodes"]
    assert check_layout(layout, KNOWN) == []


def test_a_layout_loads_by_path(tmp_path: Path) -> None:
    path = write(tmp_path, "mine", GOOD)
    assert load_layout(str(path)).title == "Test"


def test_unknown_key_names_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mine",
        GOOD.replace("      - id: core.nodes", "      - id: core.nodes\n        widht: 1fr"),
    )
    with pytest.raises(LayoutError) as info:
        load_layout(path)
    text = str(info.value)
    assert (
        f"{path}:10: rows[1].panes[0].widht: unknown key 'widht' (hint: did you mean 'width'?)"
        in text
    )


def test_bad_size_is_explained(tmp_path: Path) -> None:
    path = write(tmp_path, "mine", GOOD.replace("height: 8", "height: big"))
    with pytest.raises(LayoutError, match=r":4: rows\[0\]\.height: a size is a number of lines"):
        load_layout(path)


def test_unknown_pane_id_is_reported_with_line_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "mine", GOOD.replace("id: core.nodes", "id: core.node"))
    problems = check_layout(load_layout(path), KNOWN)
    assert [str(p) for p in problems] == [
        f"{path}:9: rows[1].panes[0].id: unknown pane 'core.node' "
        "(hint: did you mean 'core.nodes'?)"
    ]


def test_name_must_match_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "mine", "name: other\n" + GOOD)
    with pytest.raises(LayoutError, match="rename the file"):
        load_layout(path)


def test_missing_layout_lists_the_available_ones(tmp_path: Path) -> None:
    write(tmp_path, "overview", GOOD)
    with pytest.raises(
        LayoutError, match=r"no layout named 'overveiw' \(hint: did you mean 'overview'\?\)"
    ):
        load_layout("overveiw", [tmp_path])


def test_env_folder_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "overview", GOOD)
    monkeypatch.setenv("DCC_LAYOUTS_DIR", str(tmp_path))
    assert search_dirs_default() == [tmp_path, DEFAULT_LAYOUTS_DIR]
    assert available_layouts()["overview"] == tmp_path / "overview.yaml"


def test_shipped_layouts_place_only_known_panes() -> None:
    found = available_layouts([DEFAULT_LAYOUTS_DIR])
    assert {"overview", "oncall"} <= set(found)
    from console.registry import discover

    installed = set(discover().panes())
    for name in found:
        layout = load_layout(name, [DEFAULT_LAYOUTS_DIR])
        assert check_layout(layout, installed) == [], name
    overview = load_layout("overview", [DEFAULT_LAYOUTS_DIR])
    assert [[p.id for p in row.panes] for row in overview.rows] == [
        ["power.room", "core.alerts"],
        ["gpu.grid"],
        ["infiniband.matrix", "slurm.queue", "services.status"],
    ]
