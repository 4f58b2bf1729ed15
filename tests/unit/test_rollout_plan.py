"""The rollout declaration and the pure planner: waves, caps, refusals, the gate."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.inventory import Inventory, InventoryError, inventory_from_data, load_inventory
from console.registry import discover
from console.wizards.rollout_model import (
    Gate,
    Rollout,
    check_references,
    load_rollout,
    rollout_from_data,
)
from console.wizards.rollout_plan import Plan, gate_fails, gate_verdict, plan_rollout

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "inventory" / "demo.yaml"
DEMO_ROLLOUT = REPO / "inventory" / "rollouts" / "demo-driver-upgrade.yaml"
RACKS = ["R1", "R2", "R3", "R4"]


def _inventory(groups: list[dict[str, Any]]) -> Inventory:
    data: dict[str, Any] = {
        "site": {"name": "t"},
        "rooms": [{"name": "h", "racks": [{"name": r, "power_budget_kw": 30} for r in RACKS]}],
        "nodes": groups,
        "clusters": {
            "slurm": {"train": {"controller": groups[0]["nodes"].split("[")[0] + "1"}},
            "kubernetes": {"k8s": {}},
        },
    }
    return inventory_from_data(data)


def _rollout(**over: Any) -> Rollout:
    data: dict[str, Any] = {
        "name": "t",
        "targets": "n[1-8]",
        "change": {"command": "true"},
        "post_checks": ["gpu.healthy"],
    }
    data.update(over)
    return rollout_from_data(data)


def _simple_inventory(n: int = 12) -> Inventory:
    groups = [
        {
            "nodes": f"n[{1 + i * 3}-{3 + i * 3}]",
            "role": "gpu-train",
            "rack": RACKS[i % 4],
            "clusters": {"slurm": "train", "partitions": ["gpu"]},
        }
        for i in range(n // 3)
    ]
    return _inventory(groups)


# --------------------------------------------------------------------------- the demo file


def test_the_demo_rollout_loads_and_names_only_installed_checks_and_actions() -> None:
    rollout = load_rollout(DEMO_ROLLOUT)
    reg = discover()
    assert check_references(rollout, reg.checks(), reg.actions()) == []
    plan = plan_rollout(rollout, load_inventory(DEMO))
    assert plan.waves[0].nodes == ("gpu001",)
    assert [len(w.nodes) for w in plan.waves] == [1, 2, 2, 2, 1]
    assert len(plan.plan_hash) == 64


# --------------------------------------------------------------------------- the file


def test_a_rollout_file_error_names_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text(
        "name: x\ntargets: n1\nchange:\n  command: true\npost_checks: [gpu.healthy]\nsetle_s: 3\n"
    )
    with pytest.raises(InventoryError) as err:
        load_rollout(bad)
    text = str(err.value)
    assert f"{bad}:6" in text
    assert "setle_s" in text
    assert "settle_s" in text  # did you mean


def test_a_change_needs_exactly_one_of_command_or_action() -> None:
    with pytest.raises(InventoryError, match="exactly one"):
        _rollout(change={"command": "true", "action": "power.cycle"})
    with pytest.raises(InventoryError, match="exactly one"):
        _rollout(change={})


def test_a_rollout_without_post_checks_is_refused_a_stop_condition_is_mandatory() -> None:
    with pytest.raises(InventoryError, match="post_checks"):
        _rollout(post_checks=[])


def test_unknown_and_non_node_references_are_reported_with_hints() -> None:
    reg = discover()
    rollout = _rollout(
        pre_checks=["gpu.healthyy", "services.healthy"],
        change={"action": "gpu.reset"},
        rollback={"action": "slurm.reboot", "inputs": {"next_state": "sideways"}},
    )
    problems = [str(p) for p in check_references(rollout, reg.checks(), reg.actions())]
    assert any("unknown check 'gpu.healthyy'" in p and "gpu.healthy" in p for p in problems)
    assert any("'services.healthy' is about a service" in p for p in problems)
    assert any("'gpu.reset' acts on a gpu" in p for p in problems)
    assert any("rollback.inputs" in p for p in problems)


# --------------------------------------------------------------------------- refusals


def test_an_empty_target_set_is_refused() -> None:
    with pytest.raises(InventoryError, match="the targets match no node"):
        plan_rollout(_rollout(targets="n[1-8]&m[1-2]"), _simple_inventory())


def test_targets_outside_the_inventory_are_refused_by_name() -> None:
    with pytest.raises(InventoryError, match="n99"):
        plan_rollout(_rollout(targets="n[1-3],n99"), _simple_inventory())


def test_an_oversized_target_set_is_refused() -> None:
    with pytest.raises(InventoryError, match="more than max_targets 5"):
        plan_rollout(_rollout(targets="n[1-8]", max_targets=5), _simple_inventory())


def test_a_typo_widening_the_set_is_caught_by_expect_count() -> None:
    # the S3 2017 mistake: n[1-12] instead of n[1-2]
    with pytest.raises(InventoryError, match="match 11 nodes but expect_count says 2"):
        plan_rollout(_rollout(targets="n[1-11]", expect_count=2), _simple_inventory())


def test_the_whole_site_needs_a_typed_count() -> None:
    inv = _simple_inventory()
    with pytest.raises(InventoryError, match="every node of the site"):
        plan_rollout(_rollout(targets="n[1-12]"), inv)
    plan = plan_rollout(_rollout(targets="n[1-12]", expect_count=12), inv)
    assert sum(len(w.nodes) for w in plan.waves) == 12


def test_a_canary_outside_the_targets_is_refused() -> None:
    with pytest.raises(InventoryError, match="canary"):
        plan_rollout(_rollout(canary="n12"), _simple_inventory())


# --------------------------------------------------------------------------- hash


def test_the_plan_hash_changes_when_the_inventory_moves_a_target() -> None:
    a = plan_rollout(_rollout(), _simple_inventory())
    b = plan_rollout(_rollout(), _simple_inventory())
    assert a.plan_hash == b.plan_hash
    member = {"slurm": "train", "partitions": ["gpu"]}
    groups: list[dict[str, Any]] = [
        {"nodes": "n[1-3]", "role": "gpu-train", "rack": "R2", "clusters": member},
        {"nodes": "n[4-12]", "role": "gpu-train", "rack": "R2", "clusters": member},
    ]
    moved = plan_rollout(_rollout(), _inventory(groups))
    assert moved.plan_hash != a.plan_hash


# --------------------------------------------------------------------------- properties

group_st = st.fixed_dictionaries(
    {
        "count": st.integers(1, 6),
        "rack": st.sampled_from([*RACKS, None]),
        "partitions": st.lists(st.sampled_from(["gpu", "cpu", "debug"]), max_size=2, unique=True),
        "zone": st.sampled_from(["a", "b", None]),
        "leaf": st.sampled_from(["leaf1", "leaf2", "leaf3", None]),
        "role": st.sampled_from(["gpu-train", "gpu-infer", "cpu"]),
    }
)
caps_st = st.fixed_dictionaries(
    {
        "per_rack": st.integers(1, 3),
        "per_ib_leaf": st.integers(1, 3),
        "per_partition": st.integers(1, 4),
        "per_zone": st.integers(1, 3),
        "max_pool_pct": st.sampled_from([5, 10, 25, 33.3, 50, 100]),
        "max_wave": st.integers(1, 8),
    }
)


def _random_inventory(specs: list[dict[str, Any]]) -> tuple[Inventory, int]:
    groups, start = [], 1
    for spec in specs:
        group: dict[str, Any] = {
            "nodes": f"n[{start}-{start + spec['count'] - 1}]",
            "role": spec["role"],
            "clusters": {"slurm": "train", "partitions": spec["partitions"]},
        }
        if spec["rack"]:
            group["rack"] = spec["rack"]
        if spec["zone"]:
            group["clusters"].update(kubernetes="k8s", zone=spec["zone"])
        if spec["leaf"]:
            group["labels"] = {"ib_leaf": spec["leaf"]}
        groups.append(group)
        start += spec["count"]
    return _inventory(groups), start - 1


def _assert_caps_hold(plan: Plan) -> None:
    caps = plan.rollout.doc.caps
    for wave in plan.waves:
        nodes = [plan.domains(n) for n in wave.nodes]
        assert len(nodes) <= caps.max_wave
        for attr, cap in (("rack", caps.per_rack), ("ib_leaf", caps.per_ib_leaf)):
            values = [getattr(n, attr) for n in nodes if getattr(n, attr) is not None]
            assert all(values.count(v) <= cap for v in values), (wave, attr)
        zones = [n.zone for n in nodes if n.zone]
        assert all(zones.count(z) <= caps.per_zone for z in zones)
        parts = [p for n in nodes for p in n.partitions]
        assert all(parts.count(p) <= caps.per_partition for p in parts)
        pools = [p for n in nodes for p in n.pools]
        for pool in pools:
            allowed = plan.pool_allowance[pool]
            assert pools.count(pool) <= allowed
            # the allowance itself honours the percentage, except the one-node minimum
            assert allowed == 1 or allowed * 100 <= caps.max_pool_pct * plan.pool_sizes[pool]


@settings(max_examples=150, deadline=None)
@given(
    specs=st.lists(group_st, min_size=1, max_size=6),
    caps=caps_st,
    data=st.data(),
)
def test_planner_properties_caps_hold_each_node_once_canary_first(
    specs: list[dict[str, Any]], caps: dict[str, Any], data: st.DataObject
) -> None:
    inv, _ = _random_inventory(specs)
    names = list(inv.nodes)
    chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
    canary = data.draw(st.sampled_from(chosen))
    rollout = _rollout(targets=",".join(chosen), canary=canary, expect_count=len(chosen), caps=caps)
    plan = plan_rollout(rollout, inv)
    assert plan.waves[0].canary and plan.waves[0].nodes == (canary,)
    assert all(not w.canary for w in plan.waves[1:])
    placed = [n for w in plan.waves for n in w.nodes]
    assert sorted(placed) == sorted(chosen)  # every target, exactly once
    assert all(w.nodes for w in plan.waves)
    _assert_caps_hold(plan)


# --------------------------------------------------------------------------- the gate

EPS = 1e-9


@pytest.mark.parametrize("total", [1, 3, 4, 10, 33])
def test_gate_boundary_exactly_at_p_does_not_halt_above_does(total: int) -> None:
    exact_cases = 0
    for failed in range(1, total + 1):
        share = Fraction(failed * 100, total)
        p = float(share)
        if Fraction(p) == share:  # p is exactly the share: "more than p" is false
            exact_cases += 1
            assert gate_fails(failed, total, p) is False
            assert gate_fails(failed - 1, total, p) is False
        assert gate_fails(failed, total, p - EPS) is True  # p - eps: the share exceeds it
        assert gate_fails(failed, total, p + EPS) is False  # p + eps: the share is within it
    assert exact_cases >= 1  # 100% at least; 25%, 50%, 10% ... for 4 and 10


@pytest.mark.parametrize(
    ("failed", "total", "p", "halts"),
    [
        (1, 4, 25, False),  # exactly 25%
        (2, 4, 25, True),
        (1, 10, 10, False),  # exactly 10%
        (2, 10, 10, True),
        (1, 3, 33, True),  # 33.3% > 33
        (1, 3, 34, False),
        (11, 33, 33, True),  # 33.3% of a batch of 33 > 33
        (10, 33, 33, False),  # 30.3%
        (1, 1, 99.99, True),
        (0, 1, 0, False),
    ],
)
def test_gate_threshold_is_strictly_more_than_p(
    failed: int, total: int, p: float, halts: bool
) -> None:
    assert gate_fails(failed, total, p) is halts


@pytest.mark.parametrize("total", [1, 3, 4, 10, 33])
def test_any_errors_fatal_is_p_zero_and_halts_on_one_failure(total: int) -> None:
    assert gate_fails(1, total, 0.0) is True
    assert gate_fails(0, total, 0.0) is False


def test_the_gate_counts_failures_cumulatively_across_waves() -> None:
    gate = Gate(max_fail_pct=20)
    # the wave alone is fine (1 of 5 = 20%), but 3 of 11 so far is 27% > 20%
    verdict = gate_verdict(1, 5, 3, 11, gate)
    assert verdict is not None and "so far" in verdict
    assert gate_verdict(1, 5, 1, 11, gate) is None
    wave = gate_verdict(2, 5, 2, 11, gate)
    assert wave is not None and "in this wave" in wave
