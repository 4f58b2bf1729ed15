"""The `dcc` command line: plugins, a refused inventory (no traceback), check."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.cli import main

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "inventory" / "demo.yaml"

BAD_INVENTORY = """\
site:
  name: broken-site
nodes:
  - nodes: gpu[001-002]
    role: gpu-train
    colour: blue
"""


pytestmark = pytest.mark.usefixtures("isolated_cli_state")


def test_plugins_lists_the_services_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.split()[1:2] == ["services"]]
    assert len(lines) == 1
    assert lines[0].startswith("ok")
    assert "collectors" in lines[0]


def test_a_bad_inventory_exits_2_naming_file_and_line_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "site.yaml"
    bad.write_text(BAD_INVENTORY)
    assert main(["--inventory", str(bad)]) == 2
    captured = capsys.readouterr()
    assert f"{bad}:6" in captured.err
    assert "colour" in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_a_missing_inventory_exits_2_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["--inventory", str(missing)]) == 2
    captured = capsys.readouterr()
    assert str(missing) in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_an_inventory_that_is_not_text_exits_2_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "site.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x81site")
    assert main(["--inventory", str(binary)]) == 2
    captured = capsys.readouterr()
    assert str(binary) in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_check_accepts_the_demo_inventory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(DEMO)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip()
    assert "Traceback" not in captured.err


def test_check_refuses_a_bad_inventory_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "site.yaml"
    bad.write_text(BAD_INVENTORY)
    assert main(["check", str(bad)]) == 1
    captured = capsys.readouterr()
    assert f"{bad}:6" in captured.err
    assert "Traceback" not in captured.err


def test_the_log_goes_to_the_state_dir_not_the_screen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["plugins"])
    assert (tmp_path / "state" / "dcconsole" / "dcc.log").exists()
