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
        capsys.readouterr().out.splitlines()[0]
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


# --------------------------------------------------------------------------- beside the inventory

SITE = """\
site: {name: mini}
rooms:
  - name: hall
    racks: [{name: R01, power_budget_kw: 10}]
nodes:
  - {nodes: "gpu[001-004]", role: gpu-train, rack: R01}
"""


def site(tmp_path: Path, **files: str) -> Path:
    """A valid inventory ``site.yaml`` in tmp_path, with ``files`` (relative path: text)."""
    inventory = tmp_path / "site.yaml"
    inventory.write_text(SITE)
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return inventory


def check_site(inventory: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run(parse(str(inventory), "--layout", "overview"), installed())
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def test_a_site_without_flow_files_is_ok_and_says_what_was_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = check_site(site(tmp_path), capsys)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "OK: mini: 4 nodes in 1 rack, 0 clusters; layouts overview"
    assert lines[1].startswith("  scorecard: ") and "31 items" in lines[1]
    assert "(the shipped checklist: no scorecard/site.yaml)" in lines[1]
    assert lines[2].startswith("  runbooks: 7 built-in files; none of the site's")
    assert lines[3:] == [
        f"  drills: none (no {tmp_path / 'drills' / 'site.yaml'})",
        f"  rollouts: none (no {tmp_path.resolve() / 'rollouts'}/)",
    ]


def test_the_demo_site_passes_and_lists_each_file_it_checked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = run(parse(str(REPO / "inventory" / "demo.yaml")), installed())
    captured = capsys.readouterr()
    assert (code, captured.err) == (0, "")
    lines = captured.out.splitlines()
    assert lines[0].startswith("OK: dc-demo: 16 nodes in 4 racks")
    assert lines[1].endswith("scorecard_default.yaml, 31 items (the shipped checklist)")
    assert lines[2].startswith("  runbooks: 7 built-in files")
    assert lines[3] == f"  drills: {REPO / 'inventory' / 'drills' / 'demo.yaml'}, 6 scenarios"
    assert lines[4] == (
        f"  rollouts: 2 files in {REPO / 'inventory' / 'rollouts'}/ "
        "(demo-driver-upgrade.yaml, demo-minio-restart.yaml)"
    )
    assert run(parse(), installed()) == 0  # without FILE: the demo's inventory
    assert capsys.readouterr().out == captured.out


def test_a_broken_scorecard_checklist_is_named_with_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checklist = (
        "title: Site bring-up\n"
        "phases:\n"
        "  - id: base\n"
        "    title: Base\n"
        "    items:\n"
        "      - id: bmcs\n"
        "        title: BMCs answer\n"
        "        check: power.bmc_healthyy\n"
    )
    inventory = site(tmp_path, **{"scorecard/site.yaml": checklist})
    code, out, err = check_site(inventory, capsys)
    path = tmp_path / "scorecard" / "site.yaml"
    assert (code, out) == (1, "")
    assert f"-- {path} (scorecard, 1 problem)\n" in err
    assert (
        f"{path}:8: phases[0].items[0].check: unknown check 'power.bmc_healthyy' "
        "(hint: did you mean 'power.bmc_healthy'?)"
    ) in err
    assert err.splitlines()[-1].startswith("1 problem in 1 file; checked the inventory, ")


def test_broken_runbooks_are_grouped_per_file_with_their_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = "target_kind: service\nsteps:\n  - id: confirm\n    check: services.healthy\n"
    inventory = site(
        tmp_path,
        **{
            "runbooks/a.yaml": f"id: a\ntitle: A\n{head}    expect: sometimes\n",
            "runbooks/b.yaml": f"id: b\ntitle: B\n{head}  - id: restart\n"
            "    action: services.restartt\n",
        },
    )
    code, out, err = check_site(inventory, capsys)
    a, b = tmp_path / "runbooks" / "a.yaml", tmp_path / "runbooks" / "b.yaml"
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert lines[0] == f"-- {a} (runbook, 1 problem)"
    assert lines[1].startswith(f"{a}:7: steps[0].expect: must be one of 'pass' or 'fail'")
    assert lines[2] == f"-- {b} (runbook, 1 problem)"
    # The reference check gives no line; dcc check finds the field's in the file.
    assert lines[3].startswith(f"{b}:8: steps[1].action: unknown action 'services.restartt'")
    assert lines[4].startswith("2 problems in 2 files; checked ")


def test_a_broken_drill_catalogue_is_named_with_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalogue = """\
drills:
  - id: minio
    title: Lose MinIO
    scope: prod
    steady_state:
      - {check: services.healthy, target: minio}
    inject: {action: services.stopp, target: minio}
    signals:
      - {phase: recovered, check: services.healthy, target: minio}
    targets: {rto_s: 60}
    stop: {watch: []}
    max_duration_s: 120
    restore: {action: services.restart, target: minio}
"""
    code, out, err = check_site(site(tmp_path, **{"drills/site.yaml": catalogue}), capsys)
    path = tmp_path / "drills" / "site.yaml"
    assert (code, out) == (1, "")
    assert f"-- {path} (drill catalogue, 1 problem)\n" in err
    assert f"{path}:7: minio.inject: unknown action 'services.stopp'" in err


def test_a_rollout_the_planner_refuses_is_named_with_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rollout = """\
name: r
targets: gpu[001-004]
expect_count: 5
change: {command: dcc-driver-install}
pre_checks: [gpu.healthy]
post_checks: [gpu.healthy]
"""
    code, out, err = check_site(site(tmp_path, **{"rollouts/r.yaml": rollout}), capsys)
    path = tmp_path.resolve() / "rollouts" / "r.yaml"
    assert (code, out) == (1, "")
    assert f"-- {path} (rollout, 1 problem)\n" in err
    assert f"{path}:3: expect_count: the targets match 4 nodes but expect_count says 5" in err
    assert err.splitlines()[-1].endswith(", 1 rollout")
