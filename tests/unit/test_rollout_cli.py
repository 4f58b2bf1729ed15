"""`dcc rollout plan`: prints waves and checks, runs nothing, clear errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli import main

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "inventory" / "demo.yaml"
DEMO_ROLLOUT = REPO / "inventory" / "rollouts" / "demo-driver-upgrade.yaml"


pytestmark = pytest.mark.usefixtures("isolated_cli_state")


def test_plan_prints_waves_checks_and_hash_for_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollout", "plan", str(DEMO_ROLLOUT)]) == 0
    out = capsys.readouterr().out
    assert 'Rollout "driver 550 -> 560"' in out
    assert "canary   gpu001" in out
    assert "wave 4   gpu008" in out
    for check in ("gpu.healthy", "infiniband.links", "slurm.in_service", "power.bmc_healthy"):
        assert check in out
    assert "dcc-driver-install --version 560.35.03" in out
    assert "halt when failed > 10%" in out
    assert "Nothing was run" in out
    assert "plan hash  " in out


def test_plan_json_matches_the_text_plan_and_the_inventory_flag_both_places(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["rollout", "plan", str(DEMO_ROLLOUT), "--inventory", str(DEMO), "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert main(["--inventory", str(DEMO), "rollout", "plan", str(DEMO_ROLLOUT), "--json"]) == 0
    two = json.loads(capsys.readouterr().out)
    assert one["plan_hash"] == two["plan_hash"]
    assert [w["nodes"] for w in one["waves"]][:2] == [["gpu001"], ["gpu002", "gpu005"]]
    assert sorted(n for w in one["waves"] for n in w["nodes"]) == [
        f"gpu{i:03d}" for i in range(1, 9)
    ]


def test_a_bad_rollout_file_exits_2_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ntargets: gpu001\nchange: {command: 'true'}\n"
        "post_checks: [gpu.healthy]\ngate: {max_fail_pct: 100}\n"
    )
    assert main(["rollout", "plan", str(bad)]) == 2
    captured = capsys.readouterr()
    assert f"{bad}:5" in captured.err
    assert "max_fail_pct" in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert captured.out == ""


def test_an_oversized_target_set_exits_1_and_prints_no_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(
        "name: x\ntargets: gpu[001-008],cpu[01-04]\nmax_targets: 10\n"
        "change: {command: 'true'}\npost_checks: [gpu.healthy]\n"
    )
    assert main(["rollout", "plan", str(big)]) == 1
    captured = capsys.readouterr()
    assert f"{big}:2: targets: the targets match 12 nodes, more than max_targets 10" in captured.err
    assert "Waves" not in captured.out


def test_an_unknown_check_exits_1_with_a_did_you_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(
        "name: x\ntargets: gpu001\nchange: {command: 'true'}\npost_checks:\n  - gpu.helthy\n"
    )
    assert main(["rollout", "plan", str(f)]) == 1
    err = capsys.readouterr().err
    assert f"{f}:5: post_checks[0]: unknown check 'gpu.helthy'" in err
    assert "did you mean 'gpu.healthy'?" in err


def test_a_missing_file_or_a_bad_inventory_exits_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rollout", "plan", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read the file" in capsys.readouterr().err
    inv = tmp_path / "inv.yaml"
    inv.write_text("site: {name: s}\nnodes: 3\n")
    assert main(["rollout", "plan", str(DEMO_ROLLOUT), "--inventory", str(inv)]) == 2
    err = capsys.readouterr().err
    assert "the inventory is not valid" in err and f"{inv}:2" in err
    assert "Traceback" not in err


def test_rollout_without_a_subcommand_exits_2_with_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["rollout"]) == 2
    assert "plan FILE" in capsys.readouterr().err


def test_status_without_a_rollouts_database_exits_2_and_says_where_it_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audit = tmp_path / "a" / "audit.db"
    assert main(["--audit-db", str(audit), "rollout", "status"]) == 2
    err = capsys.readouterr().err
    assert f"no rollouts recorded ({audit.with_name('rollouts.db')} does not exist)" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "path", sorted((REPO / "inventory" / "rollouts").glob("*.yaml")), ids=lambda p: p.name
)
def test_every_shipped_rollout_plans_on_the_demo_with_its_site_targets_known(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rollout", "plan", str(path)]) == 0, capsys.readouterr().err
    assert "canary" in capsys.readouterr().out
