"""The infiniband plugin against the lab over real SSH: ports, faults, fabric, actions."""

from __future__ import annotations

import time
from typing import Any

import pytest

from console.actions import ActionRefused, ActionRunner
from console.inventory.load import inventory_from_data
from console.inventory.model import Inventory
from console.lab import Lab
from console.plugin import Role, Severity, Target
from console.store import Store
from plugins.infiniband.actions import ACTIONS, CLEAR, port_action_targets, switch_targets
from plugins.infiniband.checks import alerts, card, check_links
from plugins.infiniband.collect import collect_fabric, collect_node, node_readings
from plugins.infiniband.config import InfinibandConfig
from plugins.infiniband.dump import node_script, parse_node_dump
from plugins.infiniband.health import CounterTracker
from plugins.infiniband.lab import InfinibandLab
from plugins.infiniband.manifest import plugin as ib_plugin
from tests.integration.conftest import wait_for
from tests.integration.support import (
    CollectCtx,
    ctx_fixture,
    emulation,
    lab_fixture,
    runner_fixture,
    values,
)

DISABLE, ENABLE = ACTIONS[1], ACTIONS[2]


def ib_inventory() -> Inventory:
    ndr = {"ib_ports": 2, "ib_rate_gbps": 400}
    return inventory_from_data(
        {
            "site": {"name": "ib-lab"},
            "ssh": {"user": "ops"},
            "rooms": [
                {
                    "name": "h",
                    "racks": [
                        {"name": "R01", "power_budget_kw": 30},
                        {"name": "R02", "power_budget_kw": 30},
                    ],
                }
            ],
            "nodes": [
                {"nodes": "gpu[001-002]", "role": "gpu-train", "rack": "R01", "hardware": ndr},
                {
                    "nodes": "stor01",
                    "role": "storage",
                    "rack": "R02",
                    "hardware": {"ib_ports": 1, "ib_rate_gbps": 200},
                },
                {"nodes": "cpu01", "role": "cpu", "rack": "R02"},
            ],
            "plugins": {
                "infiniband": {
                    "fabric_node": "stor01",
                    "switches": [{"name": "leaf01"}, {"name": "spine01"}],
                }
            },
        },
        None,
    )


lab = lab_fixture(ib_inventory, [ib_plugin], seed=4)


ctx = ctx_fixture("infiniband")


def emu(lab: Lab) -> InfinibandLab:
    return emulation(lab, "infiniband", InfinibandLab)


def node(name: str) -> Target:
    return Target("node", name, node=name)


async def test_every_expected_port_is_read_active_at_ndr_in_one_round_trip(
    lab: Lab, ctx: CollectCtx
):
    before = len(lab.hosts["gpu001"].commands)
    readings = await collect_node(ctx, node("gpu001"))
    assert len(lab.hosts["gpu001"].commands) == before + 1
    v = values(readings, "ib:gpu001:mlx5_1/1")
    assert (v["infiniband.state"], v["infiniband.phys_state"], v["infiniband.rate_gbps"]) == (
        "ACTIVE",
        "LinkUp",
        400.0,
    )
    assert (v["infiniband.width"], v["infiniband.speed"], v["infiniband.health"]) == (
        4,
        "NDR",
        "ok",
    )
    assert v["infiniband.err.symbol_error"] == 0
    n = values(readings, "gpu001")
    assert (n["infiniband.ports_found"], n["infiniband.ports_expected"]) == (2, 2)
    assert n["infiniband.tool_error"] is None


async def test_a_port_down_and_a_port_trained_at_a_lower_rate_are_judged(lab: Lab, ctx: CollectCtx):
    lab.faults.inject("infiniband.port_down", "gpu002", {"port": "mlx5_0/1"})
    lab.faults.inject("infiniband.low_rate", "gpu002", {"port": "mlx5_1/1", "gbps": 200})
    readings = await collect_node(ctx, node("gpu002"))
    down = values(readings, "ib:gpu002:mlx5_0/1")
    assert (down["infiniband.state"], down["infiniband.phys_state"]) == ("DOWN", "Polling")
    assert down["infiniband.health"] == "critical"
    slow = values(readings, "ib:gpu002:mlx5_1/1")
    assert (slow["infiniband.rate_gbps"], slow["infiniband.speed"]) == (200.0, "HDR")
    assert slow["infiniband.health"] == "warning"
    store = Store()
    store.put(readings)
    found = {f.key: f for f in alerts(store, lab.inventory)}
    assert found["infiniband.down:ib:gpu002:mlx5_0/1"].severity is Severity.CRITICAL
    assert "expected 400" in found["infiniband.degraded:ib:gpu002:mlx5_1/1"].message
    check = check_links(
        store, Target("node", "gpu002", node="gpu002", attrs={"ib_rate_gbps": 400, "ib_ports": 2})
    )
    assert check.severity is Severity.CRITICAL
    lines = card(store, lab.inventory.nodes["gpu002"])
    assert [ln.label for ln in lines] == ["mlx5_0/1", "mlx5_1/1"]
    assert lines[0].text.startswith("✖ down")


async def _dump(ctx: CollectCtx, name: str) -> Any:
    result = await ctx.transports.ssh.run(ctx.inventory.nodes[name], node_script(), timeout=10)
    return parse_node_dump(result.stdout)


async def test_symbol_errors_climbing_and_a_flapping_link_become_rates(lab: Lab, ctx: CollectCtx):
    lab.faults.inject("infiniband.symbol_errors", "gpu001", {"per_min": 6000})
    lab.faults.inject("infiniband.flapping", "gpu001", {"port": "mlx5_1/1", "period_s": 0.3})
    cfg = InfinibandConfig(rate_window_s=10)
    tracker = CounterTracker(10)
    first = await _dump(ctx, "gpu001")
    t0 = time.time()
    node_readings("gpu001", first, cfg, 2, 400.0, t0, tracker)
    await wait_for(
        lambda: emu(lab).ports[("gpu001", "mlx5_1")].counters["link_downed"] >= 4,
        30,  # the lab ticks once a second; a loaded CI machine ticks late
        "four link flaps",
    )
    await wait_for(
        lambda: emu(lab).ports[("gpu001", "mlx5_0")].counters.get("symbol_error", 0) >= 60,
        30,
        "symbol errors",
    )
    second = await _dump(ctx, "gpu001")
    readings = node_readings("gpu001", second, cfg, 2, 400.0, time.time(), tracker)
    sym = values(readings, "ib:gpu001:mlx5_0/1")
    assert sym["infiniband.rate.symbol_error"] > 10
    assert sym["infiniband.health"] == "critical"
    flap = values(readings, "ib:gpu001:mlx5_1/1")
    assert flap["infiniband.rate.link_downed"] >= 0.4
    store = Store()
    store.put(readings)
    found = {f.key: f for f in alerts(store, lab.inventory)}
    assert "flapping" in found["infiniband.flapping:ib:gpu001:mlx5_1/1"].message
    assert "symbol errors" in found["infiniband.errors:ib:gpu001:mlx5_0/1"].message


async def test_fabric_collector_maps_each_hca_to_its_leaf_port(lab: Lab, ctx: CollectCtx):
    readings = await collect_fabric(ctx, Target("ib_fabric", "fabric", node="stor01"))
    peers = {r.target: r.value for r in readings if r.metric == "infiniband.sw_peer"}
    assert peers["ibsw:leaf01/1"] == "gpu001 mlx5_0 [1]"
    assert peers["ibsw:leaf01/33"] == "spine01 [1]"
    assert peers["ibsw:leaf02/1"] == "stor01 mlx5_0 [1]"
    hca = {r.target: r.value for r in readings if r.metric == "infiniband.peer"}
    assert hca["ib:gpu002:mlx5_1/1"] == "leaf01 [4]"
    assert hca["ib:stor01:mlx5_0/1"] == "leaf02 [1]"
    lids = {r.target: r.value for r in readings if r.metric == "infiniband.sw_lid"}
    assert isinstance(lids["ibsw:leaf01/1"], int)


async def test_fabric_from_a_node_without_diags_fails_the_collector(lab: Lab, ctx: CollectCtx):
    with pytest.raises(Exception, match="iblinkinfo exited 1"):
        await collect_fabric(ctx, Target("ib_fabric", "fabric", node="gpu001"))


runner = runner_fixture(role=Role.ADMIN)


async def test_clear_counters_records_the_values_in_the_audit_log_then_clears(
    lab: Lab, runner: ActionRunner
):
    port = emu(lab).ports[("gpu001", "mlx5_0")]
    port.counters["symbol_error"] = 1234
    port.counters["link_downed"] = 7
    targets = port_action_targets(lab.inventory, lab.inventory.plugin_configs["infiniband"])
    (target,) = [t for t in targets if t.name == "ib:gpu001:mlx5_0/1"]
    plan = await runner.plan(CLEAR, [target], {})
    assert plan.previews[0].lines[0].startswith("perfquery -R -C mlx5_0 -P 1 && ")
    assert "symbol_error=1234" in plan.previews[0].lines[1]
    (result,) = await runner.execute(plan, None)
    assert result.outcome == "ok", result.detail
    assert emu(lab).cleared == [("gpu001", "mlx5_0/1")]
    assert port.counters["symbol_error"] == 0
    intent, last = runner.audit.page(newest_first=False)
    assert intent.phase == "intent" and "symbol_error=1234" in intent.detail
    assert "link_downed=7" in intent.detail
    assert last.outcome == "ok" and "symbol_error=1234" in last.detail


async def test_disable_switch_port_is_typed_confirmed_and_takes_the_hca_down(
    lab: Lab, runner: ActionRunner, ctx: CollectCtx
):
    store = runner.store
    assert isinstance(store, Store)
    store.put(await collect_fabric(ctx, Target("ib_fabric", "fabric", node="stor01")))
    targets = switch_targets(lab.inventory, lab.inventory.plugin_configs["infiniband"])
    (leaf,) = [t for t in targets if t.name == "leaf01"]
    plan = await runner.plan(DISABLE, [leaf], {"port": 2})
    assert plan.confirm_text == "leaf01"
    assert plan.previews[0].lines[0].startswith("ibportstate ")
    assert plan.previews[0].lines[0].endswith(" 2 disable on stor01 (fabric node)")
    assert "gpu001 mlx5_1 [1]" in plan.previews[0].lines[1]
    with pytest.raises(ActionRefused):
        await runner.execute(plan, "leaf0")
    assert emu(lab).port_changes == []
    (result,) = await runner.execute(plan, "leaf01")
    assert result.outcome == "ok", result.detail
    assert emu(lab).port_changes == [("leaf01", 2, "disable")]
    v = values(await collect_node(ctx, node("gpu001")), "ib:gpu001:mlx5_1/1")
    assert v["infiniband.state"] == "DOWN"
    plan = await runner.plan(ENABLE, [leaf], {"port": 2})
    (result,) = await runner.execute(plan, "leaf01")
    assert result.outcome == "ok", result.detail
    v = values(await collect_node(ctx, node("gpu001")), "ib:gpu001:mlx5_1/1")
    assert v["infiniband.state"] == "ACTIVE"
    phases = [(r.action, r.phase) for r in runner.audit.page(newest_first=False)]
    assert ("infiniband.switch_port_disable", "result") in phases


async def test_disabling_the_fabric_nodes_own_link_is_refused(
    lab: Lab, runner: ActionRunner, ctx: CollectCtx
):
    store = runner.store
    assert isinstance(store, Store)
    store.put(await collect_fabric(ctx, Target("ib_fabric", "fabric", node="stor01")))
    cfg = InfinibandConfig.model_validate(
        {"fabric_node": "stor01", "switches": [{"name": "leaf02"}]}
    )
    runner.plugin_configs = dict(runner.plugin_configs) | {"infiniband": cfg}
    with pytest.raises(ActionRefused, match="own link"):
        await runner.plan(DISABLE, [Target("ib_switch", "leaf02", node="stor01")], {"port": 1})
