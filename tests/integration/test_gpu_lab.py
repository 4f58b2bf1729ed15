"""gpu collectors against the lab over real SSH, faults, and actions through the ActionRunner."""

from __future__ import annotations

import pytest

from console.actions import ActionRefused, ActionRunner
from console.inventory.load import inventory_from_data
from console.inventory.model import Inventory
from console.lab import Lab
from console.plugin import Role, Target
from console.store import Store
from plugins.gpu.actions import ACTIONS, RESET
from plugins.gpu.checks import alerts
from plugins.gpu.collect import collect_fast, collect_full, collectors
from plugins.gpu.config import GpuConfig
from plugins.gpu.lab import GpuLab
from plugins.gpu.manifest import plugin as gpu_plugin
from tests.integration.support import (
    CollectCtx,
    emulation,
    lab_fixture,
    runner_fixture,
    values,
)


def gpu_inventory() -> Inventory:
    hw = {
        "gpu_model": "NVIDIA H100 80GB HBM3",
        "gpu_count": 4,
        "driver_version": "550.90.07",
        "cuda_version": "12.4",
        "ib_ports": 4,
    }
    return inventory_from_data(
        {
            "site": {"name": "gpu-test"},
            "rooms": [{"name": "h", "racks": [{"name": "R01", "power_budget_kw": 40}]}],
            "ssh": {"user": "ops"},
            "nodes": [
                {"nodes": "gpu[01-02]", "role": "gpu-train", "rack": "R01", "hardware": hw},
                {
                    "nodes": "inf01",
                    "role": "gpu-infer",
                    "rack": "R01",
                    "hardware": {"gpu_model": "NVIDIA A30", "gpu_count": 2},
                },
            ],
        },
        None,
    )


lab = lab_fixture(gpu_inventory, [gpu_plugin], seed=4)


runner = runner_fixture(role=Role.ADMIN)


def emu(lab: Lab) -> GpuLab:
    return emulation(lab, "gpu", GpuLab)


async def poll(ctx: CollectCtx, store: Store, node: str) -> None:
    store.put(await collect_fast(ctx, Target("node", node, node=node)))
    store.put(await collect_full(ctx, Target("node", node, node=node)))


async def test_fast_and_full_reads_over_ssh_follow_the_host_load(
    lab: Lab, runner: ActionRunner
) -> None:
    ctx = CollectCtx(lab.inventory, runner.transports)
    fast = list(await collect_fast(ctx, Target("node", "gpu01", node="gpu01")))
    node = values(fast, "gpu01")
    assert node["gpu.smi"] == "ok" and node["gpu.count"] == 4 and node["gpu.driver"] == "550.90.07"
    g0 = values(fast, "gpu01/0")
    assert g0["gpu.name"] == "NVIDIA H100 80GB HBM3" and g0["gpu.mig_current"] is False
    load = lab.hosts["gpu01"].load
    assert g0["gpu.util_pct"] == pytest.approx(100 * load, abs=3)
    full = list(await collect_full(ctx, Target("node", "gpu01", node="gpu01")))
    assert values(full, "gpu01")["gpu.cuda"] == "12.4"
    assert values(full, "gpu01/0")["gpu.processes"] == 1
    # nvidia-smi topo -m: GPU i shares a PCIe switch with mlx5_i; GPUs 2-3 sit on NUMA 1.
    g3 = values(full, "gpu01/3")
    assert (g3["gpu.nic"], g3["gpu.numa"], g3["gpu.cpus"]) == ("mlx5_3 PXB", "1", "56-111")


def test_fast_and_full_intervals_from_the_inventory_reach_the_poller() -> None:
    config = GpuConfig(fast_interval=7, full_interval=90)
    inventory = gpu_inventory()
    by_id = {c.id: c for c in collectors(config)}
    fast = by_id["gpu.fast"].targets(inventory, config)
    full = by_id["gpu.full"].targets(inventory, config)
    assert [t.name for t in fast] == ["gpu01", "gpu02", "inf01"]
    assert {t.attrs["interval"] for t in fast} == {7} and {t.attrs["interval"] for t in full} == {
        90
    }
    nvml = GpuConfig(source="nvml", nvml_node="gpu01", fast_interval=3)
    assert by_id["gpu.fast"].targets(inventory, nvml) == []
    (local,) = collectors(nvml)[2].targets(inventory, nvml)
    assert local.attrs["interval"] == 3


async def test_inference_gpu_shows_its_mig_layout_with_profiles(
    lab: Lab, runner: ActionRunner
) -> None:
    ctx = CollectCtx(lab.inventory, runner.transports)
    full = list(await collect_full(ctx, Target("node", "inf01", node="inf01")))
    fast = list(await collect_fast(ctx, Target("node", "inf01", node="inf01")))
    assert values(fast, "inf01/0")["gpu.util_pct"] is None  # [N/A] under MIG
    import json

    layout = json.loads(values(full, "inf01/0")["gpu.mig"])
    assert [(d["profile"], d["procs"]) for d in layout] == [("2g.12gb", 1), ("2g.12gb", 0)]


async def test_gpu_falling_off_the_bus_is_lost_and_alerts_with_xid_79(
    lab: Lab, runner: ActionRunner
) -> None:
    ctx = CollectCtx(lab.inventory, runner.transports)
    lab.faults.inject("gpu.fell_off_bus", "gpu02", params={"gpu": 2})
    store = Store()
    await poll(ctx, store, "gpu02")
    assert store.value("gpu02/2", "gpu.state") == "lost"
    assert store.value("gpu02/2", "gpu.util_pct") is None
    assert store.value("gpu02", "gpu.xid_count") == 1
    # The XML report leaves the lost GPU out: GPU 3's details stay GPU 3's, not GPU 2's.
    gpu3 = emu(lab).hosts["gpu02"].gpus[3]
    assert store.value("gpu02/3", "gpu.serial") == gpu3.serial
    assert store.value("gpu02/2", "gpu.serial") is None
    texts = [f.message for f in alerts(store, lab.inventory)]
    assert any("gpu02 GPU 2: lost" in t for t in texts), texts


async def test_ecc_fault_then_reset_through_the_runner_is_refused_while_in_use(
    lab: Lab, runner: ActionRunner
) -> None:
    ctx = CollectCtx(lab.inventory, runner.transports)
    lab.faults.inject("gpu.ecc", "gpu01", params={"gpu": 1})
    store = runner.store
    assert isinstance(store, Store)
    await poll(ctx, store, "gpu01")
    assert (
        store.value("gpu01/1", "gpu.xid_last") == 63
        and store.value("gpu01/1", "gpu.remap_pending") is True
    )
    target = Target("gpu", "gpu01/1", node="gpu01")
    with pytest.raises(ActionRefused, match="processes run on GPU 1 of gpu01"):
        await runner.plan(RESET, [target], {})
    assert emu(lab).commands == []
    # The job ends: the GPU is free, the reset runs, the remap is applied.
    emu(lab).hosts["gpu01"].gpus[1].processes.clear()
    emu(lab).hosts["gpu01"].job = False
    plan = await runner.plan(RESET, [target], {})
    assert plan.previews[0].refuse is None
    assert plan.previews[0].lines[0].startswith("nvidia-smi -r -i 1 on gpu01")
    (result,) = await runner.execute(plan, plan.confirm_text)
    assert result.outcome == "ok", result.detail
    assert ("gpu01", "nvidia-smi -r -i 1") in emu(lab).commands
    rows = runner.audit.page(newest_first=False)
    assert [r.phase for r in rows][-2:] == ["intent", "result"]
    assert "nvidia-smi -r -i 1" in rows[-2].detail


async def test_mig_enable_is_pending_until_reset_then_create_and_destroy(
    lab: Lab, runner: ActionRunner
) -> None:
    mode, create, destroy = (
        a for a in ACTIONS if a.id in ("gpu.mig_mode", "gpu.mig_create", "gpu.mig_destroy")
    )
    gh = emu(lab).hosts["gpu02"]
    gh.job = False
    gh.gpus[3].processes.clear()
    target = Target("gpu", "gpu02/3", node="gpu02")
    plan = await runner.plan(mode, [target], {"enable": True})
    (r,) = await runner.execute(plan, plan.confirm_text)
    assert r.outcome == "ok", r.detail and gh.gpus[3].mig_pending and not gh.gpus[3].mig_enabled
    plan = await runner.plan(RESET, [target], {})
    (r,) = await runner.execute(plan, plan.confirm_text)
    assert r.outcome == "ok", r.detail
    assert gh.gpus[3].mig_enabled
    plan = await runner.plan(create, [target], {"profile": "3g.40gb"})
    assert plan.previews[0].lines[0].startswith("nvidia-smi mig -i 3 -cgi 9 -C on gpu02")
    (r,) = await runner.execute(plan, plan.confirm_text)
    assert r.outcome == "ok" and "gi1 3g.40gb" in r.detail
    plan = await runner.plan(destroy, [target], {"gi": 1})
    (r,) = await runner.execute(plan, plan.confirm_text)
    assert r.outcome == "ok" and "no instances" in r.detail


async def test_dcgm_diag_shows_each_result(lab: Lab, runner: ActionRunner) -> None:
    diag = next(a for a in ACTIONS if a.id == "gpu.dcgm_diag")
    plan = await runner.plan(diag, [Target("node", "gpu01", node="gpu01")], {})
    (r,) = await runner.execute(plan, plan.confirm_text)
    assert r.outcome == "ok" and "passed" in r.detail


async def test_the_demo_rollouts_driver_install_changes_what_nvidia_smi_reports(
    lab: Lab, runner: ActionRunner
) -> None:
    ctx = CollectCtx(lab.inventory, runner.transports)
    node = lab.inventory.nodes["gpu01"]
    done = await runner.transports.ssh.run(
        node, "dcc-driver-install --version 560.35.03", timeout=10
    )
    assert done.exit_status == 0 and "550.90.07 -> 560.35.03" in done.stdout
    fast = list(await collect_fast(ctx, Target("node", "gpu01", node="gpu01")))
    assert values(fast, "gpu01")["gpu.driver"] == "560.35.03"
