"""The drill catalogue: validation with file:line problems, and the demo's catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from console.inventory import apply_plugin_configs, load_inventory
from console.inventory.problems import InventoryError
from console.lab.faults import FaultBook
from console.registry import discover
from console.wizards.drill_deadman import DEADMAN_ACTIONS
from console.wizards.drill_env import known_targets
from console.wizards.drill_lab import lab_fault_actions
from console.wizards.drill_model import (
    catalogue_from_data,
    check_references,
    default_catalogue,
    load_catalogue,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "inventory" / "drills" / "demo.yaml"


def test_the_demo_catalogue_is_the_default_without_an_inventory_file() -> None:
    assert default_catalogue(None) == DEMO
    assert default_catalogue(Path("/site/prod.yaml")) == Path("/site/drills/prod.yaml")


def test_the_demo_catalogue_names_only_checks_actions_probes_and_targets_that_exist() -> None:
    catalogue = load_catalogue(DEMO)
    assert [d.id for d in catalogue.drills] == [
        "inference-replica",
        "minio-node",
        "slurm-controller",
        "k8s-control-plane",
        "rack-power",
        "ib-spine-link",
    ]
    reg = discover()
    extra = [
        *lab_fault_actions(FaultBook(lambda: 0.0, lambda: ["services.down"])),
        *DEADMAN_ACTIONS,
    ]
    checks = {c.id: c for p in reg.plugins for c in p.checks}
    actions = [a.id for p in reg.plugins for a in p.actions] + [a.id for a in extra]
    probes = [d.id for p in reg.plugins for d in p.data_probes]
    assert check_references(catalogue, list(checks), actions, str(DEMO), probes) == []
    inventory = apply_plugin_configs(
        load_inventory(ROOT / "inventory" / "demo.yaml"),
        {p.name: p.config_model for p in reg.plugins},
    )
    known = known_targets(reg.plugins, inventory, extra)
    for drill in catalogue.drills:
        for ref in (*drill.steady_state, *drill.signals, *drill.stop.watch):
            kind = checks[ref.check].target_kind
            if kind != "ib_switch_port":  # read from the fabric, not declared as targets
                assert (kind, ref.target) in known, f"{drill.id}: {kind} {ref.target}"
        assert drill.rto_phase in ("failover", "recovered")
        assert drill.deadman is not None, f"{drill.id} has no dead man's switch"
    minio = catalogue.get("minio-node")
    assert minio is not None and minio.data is not None and minio.targets.rpo_s is not None


def test_an_rpo_target_without_a_data_check_is_refused() -> None:
    data = {
        "drills": [
            {
                "id": "x",
                "title": "t",
                "scope": "s",
                "steady_state": [{"check": "c", "target": "a"}],
                "inject": {"action": "a.b", "target": "n"},
                "signals": [{"phase": "failover", "check": "c", "target": "a"}],
                "targets": {"rto_s": 10, "rpo_s": 5},
                "restore": {"action": "a.c", "target": "n"},
            }
        ]
    }
    with pytest.raises(InventoryError) as err:
        catalogue_from_data(data)
    assert "an RPO target needs a 'data' check" in str(err.value)


def test_problems_name_the_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "drills.yaml"
    bad.write_text(
        "drills:\n"
        "  - id: x\n"
        "    title: t\n"
        "    scope: s\n"
        "    steady_state: [{check: c, target: a}]\n"
        "    inject: {action: a.b, target: n}\n"
        "    signals: [{phase: detect, check: c, target: a, expect: fail}]\n"
        "    targets: {rto_s: -1}\n"
        "    restore: {action: a.c, target: n}\n"
        "    max_duration: 10\n"
    )
    with pytest.raises(InventoryError) as err:
        load_catalogue(bad)
    text = str(err.value)
    assert f"{bad}:8: drills[0].targets.rto_s:" in text
    assert f"{bad}:10: drills[0].max_duration: unknown key 'max_duration'" in text
    assert "did you mean 'max_duration_s'?" in text


def test_a_scenario_without_a_failover_or_recovered_signal_is_refused() -> None:
    data: dict[str, Any] = {
        "drills": [
            {
                "id": "x",
                "title": "t",
                "scope": "s",
                "steady_state": [{"check": "c", "target": "a"}],
                "inject": {"action": "a.b", "target": "n"},
                "signals": [{"phase": "detect", "check": "c", "target": "a"}],
                "targets": {"rto_s": 5},
                "restore": {"action": "a.c", "target": "n"},
            }
        ]
    }
    with pytest.raises(InventoryError, match="'failover' or 'recovered'"):
        catalogue_from_data(data)
    data["drills"][0]["signals"].append({"phase": "failover", "check": "c", "target": "a"})
    assert catalogue_from_data(data).drills[0].rto_phase == "failover"
    data["drills"].append(dict(data["drills"][0]))
    with pytest.raises(InventoryError, match="drill ids must be unique: x"):
        catalogue_from_data(data)


def test_unknown_checks_actions_and_probes_are_reported_with_the_known_ones() -> None:
    catalogue = load_catalogue(DEMO)
    minio = catalogue.get("minio-node")
    assert minio is not None
    one = catalogue.model_copy(update={"drills": [minio]})
    problems = check_references(one, ["services.healthy"], ["lab.fault"], "d.yaml", [])
    assert {str(p) for p in problems} == {
        "d.yaml: minio-node.data.probe: unknown data probe 'services.objects' (hint: known: none)",
        "d.yaml: minio-node.restore: unknown action 'lab.fault_clear' (hint: known: lab.fault)",
        "d.yaml: minio-node.deadman.arm: unknown action 'lab.deadman_arm' (hint: known: lab.fault)",
        "d.yaml: minio-node.deadman.cancel: unknown action 'lab.deadman_cancel' "
        "(hint: known: lab.fault)",
    }
