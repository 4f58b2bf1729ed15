"""`dcc check`: exit status, one line per problem, no traceback."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from console.cli_check import register, run
from console.plugin import PaneSpec, Plugin

REPO = Path(__file__).resolve().parents[2]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    interval: float = 15.0


SERVICES = Plugin(
    name="services",
    description="test stand-in",
    config_model=_Config,
    panes=(PaneSpec(id="services.status", title="Services", factory="x:y"),),
)


def installed() -> list[Plugin]:
    """Every installed plugin: the shipped inventories and layouts use them all."""
    from console.registry import discover

    registry = discover()
    assert not registry.broken, registry.broken
    return registry.plugins


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dcc")
    register(parser.add_subparsers(dest="cmd"))
    return parser.parse_args(["check", *argv])


def test_demo_inventory_and_all_layouts_are_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(parse(str(REPO / "inventory" / "demo.yaml")), installed()) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("OK: dc-demo: 16 nodes in 4 racks, 2 clusters; layouts ")
    assert "oncall" in out and "overview" in out


def test_example_site_with_one_layout(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(str(REPO / "inventory" / "example-site.yaml"), "--layout", "overview")
    assert run(args, installed()) == 0
    assert (
        capsys.readouterr().out.strip()
        == "OK: ai-dc1: 54 nodes in 9 racks, 2 clusters; layouts overview"
    )


def test_bad_inventory_prints_each_problem_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "site: {name: x}\nnodes:\n  - {nodes: 'a[1-', role: cpu}\n  - {nodes: b1, role: cpx}\n"
    )
    assert run(parse(str(path), "--layout", "overview"), [SERVICES]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{path}:4: nodes[1].role: must be one of" in captured.err
    assert "Traceback" not in captured.err


def test_missing_file_is_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(parse(str(tmp_path / "nope.yaml")), [SERVICES]) == 1
    err = capsys.readouterr().err
    assert "nope.yaml: cannot read the file" in err and "Traceback" not in err


def test_unknown_pane_without_its_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(parse(str(REPO / "inventory" / "demo.yaml"), "--layout", "overview")) == 1
    err = capsys.readouterr().err
    assert "overview.yaml:19: rows[2].panes[2].id: unknown pane 'services.status'" in err


def test_plugin_section_checked_with_the_plugin_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("site: {name: x}\nplugins:\n  services:\n    interval: soon\n")
    assert run(parse(str(path), "--layout", "overview"), [SERVICES]) == 1
    err = capsys.readouterr().err
    assert f"{path}:4: plugins.services.interval: wrong type: expected a number" in err
