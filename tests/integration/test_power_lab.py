"""The power plugin against the lab's Redfish BMCs: HTTPS pinned, sessions, faults, actions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from console.actions import ActionRefused, ActionRunner
from console.inventory.load import inventory_from_data
from console.inventory.model import Inventory
from console.lab import Lab
from console.plugin import Target
from console.store import Store
from console.transports import TransportError, Transports
from plugins.power.actions import ACTIONS
from plugins.power.checks import alerts
from plugins.power.collect import collect_bmc
from plugins.power.lab import PowerLab
from plugins.power.manifest import plugin as power_plugin
from tests.integration.support import (
    action_runner,
    by_metric,
    ctx_for,
    emulation,
    lab_fixture,
    open_transports,
)

BMC = {
    "address": "{name}-bmc",
    "protocol": "redfish",
    "user": "admin",
    "password": "env:UNUSED_IN_LAB",
}
SPEC = {a.id.split(".")[1]: a for a in ACTIONS}


def power_inventory() -> Inventory:
    return inventory_from_data(
        {
            "site": {"name": "power-test"},
            "rooms": [{"name": "hall", "racks": [{"name": "R01", "power_budget_kw": 30}]}],
            "ssh": {"user": "ops"},
            "nodes": [
                {
                    "nodes": "gpu[01-02]",
                    "role": "gpu-train",
                    "rack": "R01",
                    "u_start": 1,
                    "u_height": 4,
                    "hardware": {"gpu_count": 8},
                    "bmc": BMC,
                },
                {"nodes": "cpu01", "role": "cpu", "rack": "R01", "u_start": 20, "bmc": BMC},
            ],
            "plugins": {"power": {"timeout": 2.0}},
        },
        None,
    )


lab = lab_fixture(power_inventory, [power_plugin], seed=7)


@pytest.fixture
async def transports() -> AsyncIterator[Transports]:
    async with open_transports() as t:
        yield t


def emu(lab: Lab) -> PowerLab:
    return emulation(lab, "power", PowerLab)


async def poll(
    lab: Lab, transports: Transports, name: str, inv: Inventory | None = None
) -> dict[str, Any]:
    inv = inv or lab.inventory
    readings = await collect_bmc(ctx_for(inv, transports, "power"), Target("node", name, node=name))
    return by_metric(readings)


async def test_the_lab_points_bmcs_at_https_servers_with_the_certificate_pinned(lab: Lab):
    node = lab.inventory.nodes["gpu01"]
    assert node.bmc is not None and node.bmc.address == "127.0.0.1"
    assert node.bmc.port == emu(lab).bmcs["gpu01"].port
    assert node.bmc.tls_fingerprint == emu(lab).fingerprint
    assert node.bmc.password is not None and node.bmc.password.startswith("file:")


async def test_a_poll_reads_power_and_thermal_that_follow_the_simhost_and_closes_its_session(
    lab: Lab, transports: Transports
):
    r = await poll(lab, transports, "gpu01")
    host = lab.hosts["gpu01"]
    assert r["power.bmc_ok"].value is True
    assert r["power.state"].value == "on"
    assert r["power.power_w"].value == pytest.approx(host.power_w, abs=200)
    assert r["power.inlet_c"].value == pytest.approx(host.inlet_c, abs=1.0)
    assert r["power.exhaust_c"].value > r["power.inlet_c"].value
    assert r["power.fans"].value == 4 and r["power.fans_failed"].value == 0
    assert r["power.psus"].value == 2 and r["power.redundancy"].value == "ok"
    bmc = emu(lab).bmcs["gpu01"]
    assert bmc.logins == 1 and bmc.sessions == {}


async def test_a_wrong_certificate_pin_is_refused_and_nothing_is_sent(
    lab: Lab, transports: Transports
):
    inv = lab.inventory
    node = inv.nodes["gpu01"]
    assert node.bmc is not None
    bad = node.model_copy(
        update={"bmc": node.bmc.model_copy(update={"tls_fingerprint": "AB:" * 31 + "CD"})}
    )
    inv2 = inv.model_copy(update={"nodes": {**inv.nodes, "gpu01": bad}})
    r = await poll(lab, transports, "gpu01", inv2)
    assert r["power.bmc_ok"].value is False
    assert "pinned" in r["power.bmc_ok"].detail
    assert emu(lab).bmcs["gpu01"].logins == 0


async def test_psu_lost_and_fan_failed_show_in_readings_sel_and_alerts(
    lab: Lab, transports: Transports
):
    lab.faults.inject("power.psu_lost", "gpu02")
    lab.faults.inject("power.fan_failed", "gpu02")
    emu(lab).tick(lab.clock.now())
    r = await poll(lab, transports, "gpu02")
    assert r["power.redundancy"].value == "lost"
    assert r["power.psus_failed"].value == 1 and "Bay 2" in r["power.psus_failed"].detail
    assert r["power.fans_failed"].value == 1
    assert r["power.sel_critical"].value == 2
    store = Store()
    store.put(list(r.values()))
    keys = {f.key for f in alerts(store, lab.inventory)}
    assert {"power.redundancy:gpu02", "power.fan:gpu02", "power.sel:gpu02"} <= keys


async def test_a_silent_bmc_is_the_reading_and_raises_the_unreachable_alert(
    lab: Lab, transports: Transports
):
    lab.faults.inject("power.bmc_down", "cpu01")
    r = await poll(lab, transports, "cpu01")
    assert r["power.bmc_ok"].value is False and "no answer" in r["power.bmc_ok"].detail
    assert "power.inlet_c" not in r  # nothing is invented
    store = Store()
    store.put(list(r.values()))
    (finding,) = alerts(store, lab.inventory)
    assert finding.key == "power.bmc:cpu01" and "unreachable" in finding.message


async def test_the_session_limit_answers_503_and_the_poll_says_so(lab: Lab, transports: Transports):
    node = lab.inventory.nodes["gpu01"]
    assert node.bmc is not None and node.bmc.port is not None
    url = f"https://127.0.0.1:{node.bmc.port}/redfish/v1/SessionService/Sessions"
    body = {"UserName": "admin", "Password": emu(lab).password}
    for _ in range(4):
        resp = await transports.http.request(
            "POST", url, timeout=5, json=body, tls_fingerprint=node.bmc.tls_fingerprint
        )
        assert resp.status == 201
    r = await poll(lab, transports, "gpu01")
    assert r["power.bmc_ok"].value is False and "503" in r["power.bmc_ok"].detail


async def test_an_inlet_rising_fault_warms_the_inlet(lab: Lab, transports: Transports):
    before = emu(lab).inlet("gpu01")
    lab.faults.inject("power.inlet_rising", "gpu01", {"rate_c_per_min": 600})
    lab.hosts["gpu01"]  # the lab clock moves on
    import asyncio

    await asyncio.sleep(0.3)
    r = await poll(lab, transports, "gpu01")
    assert r["power.inlet_c"].value > before + 1


@pytest.fixture
async def runner(lab: Lab, tmp_path: Path, transports: Transports) -> AsyncIterator[ActionRunner]:
    async with action_runner(lab.inventory, transports, tmp_path / "audit.db") as the_runner:
        yield the_runner


async def test_power_off_is_typed_confirmed_audited_read_back_and_ssh_then_fails(
    lab: Lab, runner: ActionRunner
):
    target = Target("node", "cpu01", node="cpu01")
    store = runner.store
    assert isinstance(store, Store)
    from console.plugin import Reading

    store.put([Reading("cpu01", "slurm.workloads", "job 81723 train-llm (alice)")])
    plan = await runner.plan(SPEC["off"], [target], {})
    assert plan.confirm_text == "cpu01"
    (preview,) = plan.previews
    text = "\n".join(preview.lines)
    assert "ComputerSystem.Reset ResetType=ForceOff" in text
    assert "slurm: job 81723 train-llm (alice)" in text
    with pytest.raises(ActionRefused):
        await runner.execute(plan, "cpu0")
    assert lab.hosts["cpu01"].powered
    (result,) = await runner.execute(plan, "cpu01")
    assert result.outcome == "ok", result.detail
    assert "power off" in result.detail
    assert not lab.hosts["cpu01"].powered
    with pytest.raises(TransportError):
        await runner.transports.ssh.run(lab.inventory.nodes["cpu01"], "hostname", timeout=3)
    rows = runner.audit.page(newest_first=False)
    assert [r.phase for r in rows if r.phase != "refused"] == ["intent", "result"]
    assert rows[-1].outcome == "ok" and rows[-1].action == "power.off"

    plan_on = await runner.plan(SPEC["on"], [target], {})
    (result,) = await runner.execute(plan_on, None)
    assert result.outcome == "ok", result.detail
    assert lab.hosts["cpu01"].powered


async def test_a_power_cycle_whose_bmc_goes_silent_is_recorded_unknown(
    lab: Lab, runner: ActionRunner
):
    target = Target("node", "gpu02", node="gpu02")
    lab.faults.inject("power.bmc_down", "gpu02")
    plan = await runner.plan(SPEC["cycle"], [target], {})
    (result,) = await runner.execute(plan, "gpu02")
    assert result.outcome == "unknown", result.detail
    assert runner.audit.page()[0].outcome == "unknown"
