"""The demo's drill scenarios end to end in the lab, with short lab delays.

Each one runs the real engine: steady state read by the plugins' collectors over
SSH/HTTP/Redfish, the fault injected by an audited action, the recovery seen by
the checks, the restore and the dead man's switch on the record. The measured
RTO and RPO are measurements of the lab's real behaviour (takeover delays,
replication lag), not numbers the lab reports.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from console.wizards.drill_report import drill_history
from plugins.infiniband.lab import InfinibandLab
from plugins.infiniband.manifest import plugin as ib_plugin
from plugins.kubernetes import watch
from plugins.kubernetes.lab import KubernetesLab
from plugins.kubernetes.manifest import plugin as k8s_plugin
from plugins.power.manifest import plugin as power_plugin
from plugins.services.lab import ServicesLab
from plugins.services.manifest import plugin as services_plugin
from plugins.slurm.lab import SlurmLab
from plugins.slurm.manifest import plugin as slurm_plugin
from tests.integration.drill_support import HEALTHY, drill_rig, scenario
from tests.integration.support import emulation, eventually

CTLD_TIMEOUT_S = 1.5
TAKEOVER_S = 1.0
LAG_S = 1.0


def lab_deadman(target: str, fault: str, **extra: Any) -> dict[str, Any]:
    return {
        "arm": {
            "action": "lab.deadman_arm",
            "target": target,
            "inputs": {"faults": [fault]},
            **extra,
        },
        "cancel": {"action": "lab.deadman_cancel", "target": target, **extra},
    }


async def test_the_slurm_controller_fails_over_to_its_backup_after_the_ctld_timeout(
    tmp_path: Path,
) -> None:
    slurm = dataclasses.replace(slurm_plugin, lab=lambda: SlurmLab(ctld_timeout_s=CTLD_TIMEOUT_S))
    async with drill_rig(tmp_path, [slurm]) as rig:
        ctl = {"check": "slurm.controller", "target": "train"}
        s = scenario(
            id="slurm-controller",
            steady_state=[ctl, {"check": "slurm.in_service", "target": "gpu01"}],
            inject={
                "action": "lab.fault",
                "target": "cpu01",
                "inputs": {"fault": "slurm.controller_down"},
            },
            signals=[
                {"phase": "detect", **ctl, "expect": "fail"},
                {"phase": "failover", **ctl, "expect": "recover"},
            ],
            targets={"rto_s": 10},
            stop={"expected_failures": ["train"]},
            restore={
                "action": "lab.fault_clear",
                "target": "cpu01",
                "inputs": {"fault": "slurm.controller_down"},
            },
            deadman=lab_deadman("cpu01", "slurm.controller_down"),
        )
        report = await rig.run(s).run("cpu01")

        assert report.result == "passed", report.deviations
        detect, failover = report.phases["detect"], report.phases["failover"]
        assert detect is not None and failover is not None
        # sinfo/squeue fail until the backup takes control, then answer again.
        assert CTLD_TIMEOUT_S - 0.5 <= failover <= CTLD_TIMEOUT_S + 2.5
        assert report.rto.measured_s == failover and report.rto.met
        cluster = emulation(rig.lab, "slurm", SlurmLab).clusters["train"]
        assert cluster.takeovers == 1 and not cluster.backup_in_control  # primary back
        assert rig.lab.faults.active() == [] and rig.lab.deadman.armed() == []
        assert "cancelled after the restore" in report.deadman
        assert rig.audit() == [
            ("drill", "drill.slurm-controller", "started"),
            ("intent", "lab.deadman_arm", ""),
            ("result", "lab.deadman_arm", "ok"),
            ("intent", "lab.fault", ""),
            ("result", "lab.fault", "ok"),
            ("intent", "lab.fault_clear", ""),
            ("result", "lab.fault_clear", "ok"),
            ("intent", "lab.deadman_cancel", ""),
            ("result", "lab.deadman_cancel", "ok"),
            ("drill", "drill.slurm-controller", "passed"),
        ]
        (summary,) = drill_history(rig.drills.path)
        assert summary.passed and summary.rto_measured_s == failover


async def test_losing_a_minio_node_measures_the_rpo_its_replication_lag_loses(
    tmp_path: Path,
) -> None:
    services = dataclasses.replace(
        services_plugin, lab=lambda: ServicesLab(takeover_s=TAKEOVER_S, replication_lag_s=LAG_S)
    )
    async with drill_rig(tmp_path, [services]) as rig:
        vip = {"check": HEALTHY, "target": "minio"}
        s = scenario(
            id="minio-node",
            steady_state=[
                {"check": HEALTHY, "target": t} for t in ("minio-stor01", "minio-stor02", "minio")
            ],
            inject={
                "action": "lab.fault",
                "target": "minio-stor01",
                "inputs": {"fault": "services.down"},
            },
            data={
                "probe": "services.objects",
                "target": "minio",
                "interval_s": 0.25,
                "warmup_s": 2,
            },
            signals=[
                {"phase": "detect", "check": HEALTHY, "target": "minio-stor01", "expect": "fail"},
                {"phase": "failover", **vip, "expect": "recover"},
            ],
            targets={"rto_s": 10, "rpo_s": 3},
            stop={
                "expected_failures": ["minio-stor01", "minio"],
                "watch": [{"check": HEALTHY, "target": "minio-stor02"}],
            },
            restore={
                "action": "lab.fault_clear",
                "target": "minio-stor01",
                "inputs": {"fault": "services.down"},
            },
            deadman=lab_deadman("minio-stor01", "services.down"),
        )
        report = await rig.run(s).run("minio-stor01")

        assert report.result == "passed", report.deviations
        rpo = report.rpo.measured_s
        assert rpo is not None and report.rpo.met
        # The writes still queued for stor02 when stor01 died are the data lost:
        # about one replication lag (plus a marker interval and a request's time).
        assert LAG_S - 0.3 <= rpo <= LAG_S + 2.0, report.rpo_detail  # + a loaded loop's gaps
        assert "survived" in report.rpo_detail
        failover = report.phases["failover"]
        assert failover is not None and TAKEOVER_S - 0.5 <= failover <= TAKEOVER_S + 2.5
        ha = emulation(rig.lab, "services", ServicesLab).ha
        assert [(a, f, t) for a, f, t, _ in ha.takeovers] == [
            ("minio", "minio-stor01", "minio-stor02")
        ]
        # The survivor really lacked the newest writes when it took over (they were still
        # in stor01's queue; read at failover, since the queue drains once stor01 is back).
        m = re.search(r"(\d+) of (\d+) survived", report.rpo_detail)
        assert m is not None and int(m.group(1)) < int(m.group(2)), report.rpo_detail
        assert "RPO" in report.to_markdown() and "newest surviving marker" in report.to_markdown()


async def test_losing_a_rack_powers_its_nodes_off_through_the_bmcs_and_back_on(
    tmp_path: Path,
) -> None:
    async with drill_rig(tmp_path, [power_plugin, slurm_plugin]) as rig:
        ctl = {"check": "slurm.controller", "target": "train"}
        s = scenario(
            id="rack-power",
            steady_state=[
                ctl,
                *({"check": "slurm.in_service", "target": n} for n in ("gpu01", "gpu02", "gpu03")),
            ],
            inject={"action": "power.off", "target": "@rack:R01"},
            signals=[
                {
                    "phase": "detect",
                    "check": "slurm.in_service",
                    "target": "gpu01",
                    "expect": "fail",
                },
                {"phase": "failover", **ctl, "expect": "pass"},
            ],
            targets={"rto_s": 15},
            stop={
                "expected_failures": ["gpu01", "gpu02"],
                "watch": [{"check": "slurm.in_service", "target": "gpu03"}],
            },
            restore={"action": "power.on", "target": "@rack:R01"},
            deadman=lab_deadman("@rack:R01", "host.power_off", kind="lab-target"),
        )
        run = rig.run(s)
        plan = await run.plan_inject()
        assert plan.confirm_text == "gpu[01-02]"  # the whole blast radius, typed
        powered: list[bool] = []
        run.on_change = lambda r: powered.append(rig.lab.hosts["gpu01"].powered)
        report = await run.run("gpu[01-02]")

        assert report.result == "passed", report.deviations
        assert False in powered  # the BMCs really cut gpu01's power
        assert all(rig.lab.hosts[n].powered for n in ("gpu01", "gpu02", "gpu03"))
        detect = report.phases["detect"]
        assert detect is not None and detect < 5
        rows = rig.audit()
        assert rows.count(("result", "power.off", "ok")) == 2  # one per node, each verified
        assert rows.count(("result", "power.on", "ok")) == 2
        assert rows.count(("result", "lab.deadman_arm", "ok")) == 2
        assert rows.count(("result", "lab.deadman_cancel", "ok")) == 2
        assert rig.lab.deadman.armed() == [] and rig.lab.deadman.fired == []


async def test_an_ib_spine_link_disabled_on_the_switch_reroutes_and_is_enabled_again(
    tmp_path: Path,
) -> None:
    ib = dataclasses.replace(ib_plugin, lab=lambda: InfinibandLab(reroute_s=1.0))
    async with drill_rig(tmp_path, [ib]) as rig:
        port = {"check": "infiniband.switch_port_ok"}
        s = scenario(
            id="ib-spine-link",
            steady_state=[
                {**port, "target": "spine01/1"},
                {**port, "target": "leaf01/34"},
                {"check": "infiniband.links", "target": "gpu01"},
            ],
            inject={
                "action": "infiniband.switch_port_disable",
                "target": "spine01",
                "inputs": {"port": 1},
            },
            signals=[
                {"phase": "detect", **port, "target": "spine01/1", "expect": "fail"},
                {"phase": "failover", **port, "target": "leaf01/34", "expect": "pass"},
                {"phase": "failover", "check": "infiniband.links", "target": "gpu01"},
            ],
            targets={"rto_s": 10},
            stop={
                "expected_failures": ["spine01/1", "leaf01/33"],
                "watch": [{**port, "target": "leaf02/33"}],
            },
            restore={
                "action": "infiniband.switch_port_enable",
                "target": "spine01",
                "inputs": {"port": 1},
            },
            deadman={
                "arm": {
                    "action": "drill.deadman_ssh_arm",
                    "target": "stor01",
                    "inputs": {"command": "ibportstate 1 1 enable"},
                },
                "cancel": {"action": "drill.deadman_ssh_cancel", "target": "stor01"},
            },
        )
        report = await rig.run(s).run("spine01")

        assert report.result == "passed", report.deviations
        lab = emulation(rig.lab, "infiniband", InfinibandLab)
        assert ("spine01", 1, "disable") in lab.port_changes and lab.port_changes[-1] == (
            "spine01",
            1,
            "enable",
        )
        assert lab.switches["spine01"].disabled == set()

        # The subnet manager reroutes leaf01 (after the disable, and the enable); until
        # then its hosts drop packets sent towards the lost link.
        async def rerouted() -> bool:
            return [leaf for leaf, _ in lab.reroutes][:1] == ["leaf01"]

        await eventually(rerouted, "the subnet manager to reroute leaf01", timeout=5)
        assert lab.ports[("gpu01", "mlx5_0")].counters["port_xmit_discards"] > 0
        assert lab.ports[("gpu03", "mlx5_0")].counters.get("port_xmit_discards", 0) == 0
        # The dead man's switch was a systemd timer on the fabric node, stopped after.
        assert rig.lab.timers.active == {} and rig.lab.timers.fired == []
        rows = rig.audit()
        assert ("result", "drill.deadman_ssh_arm", "ok") in rows
        assert ("result", "drill.deadman_ssh_cancel", "ok") in rows


async def test_losing_the_kubernetes_control_plane_node_holding_the_vip_moves_the_api(
    tmp_path: Path,
) -> None:
    k8s = dataclasses.replace(
        k8s_plugin, lab=lambda: KubernetesLab(bookmark_s=0.2, vip_failover_s=TAKEOVER_S)
    )
    async with drill_rig(tmp_path, [k8s], before_stop=watch.stop_all) as rig:
        api = {"check": "kubernetes.api", "target": "k1"}
        fault = {"fault": "kubernetes.control_plane_down"}
        s = scenario(
            id="k8s-control-plane",
            steady_state=[api, {"check": "kubernetes.node_ready", "target": "cpu02"}],
            inject={"action": "lab.fault", "target": "cpu01", "inputs": fault},
            signals=[
                {"phase": "detect", **api, "expect": "fail"},
                {"phase": "failover", **api, "expect": "recover"},
            ],
            targets={"rto_s": 10},
            stop={"expected_failures": ["k1", "cpu01"]},
            restore={"action": "lab.fault_clear", "target": "cpu01", "inputs": fault},
            deadman=lab_deadman("cpu01", "kubernetes.control_plane_down"),
        )
        report = await rig.run(s).run("cpu01")

        assert report.result == "passed", report.deviations
        failover = report.phases["failover"]
        assert failover is not None and TAKEOVER_S - 0.5 <= failover <= TAKEOVER_S + 4
        vip = emulation(rig.lab, "kubernetes", KubernetesLab).vips["k1"]
        assert vip.members == ["cpu01", "cpu02", "cpu03"]
        assert [holder for holder, _ in vip.takeovers] == ["cpu02"]


async def test_losing_an_inference_replica_leaves_the_gateway_answering_until_it_is_replaced(
    tmp_path: Path,
) -> None:
    async with drill_rig(tmp_path, [services_plugin]) as rig:
        replica = {"check": HEALTHY, "target": "triton-gpu01"}
        gateway = {"check": HEALTHY, "target": "gateway"}
        down = {"fault": "services.down"}
        s = scenario(
            id="inference-replica",
            steady_state=[replica, {**replica, "target": "triton-gpu03"}, gateway],
            # the replica is replaced (restarted by its orchestrator) 2 s later
            inject={
                "action": "lab.fault",
                "target": "triton-gpu01",
                "inputs": {**down, "revert_after_s": 2},
            },
            signals=[
                {"phase": "detect", **replica, "expect": "fail"},
                {"phase": "failover", **gateway, "expect": "pass"},
                {"phase": "recovered", **replica, "expect": "recover"},
            ],
            targets={"rto_s": 10},
            stop={"expected_failures": ["triton-gpu01"]},
            restore={"action": "lab.fault_clear", "target": "triton-gpu01", "inputs": down},
        )
        report = await rig.run(s).run("triton-gpu01")

        assert report.result == "passed", report.deviations
        recovered = report.phases["recovered"]
        assert recovered is not None and 2.0 <= recovered <= 6.0
        # With both replicas gone the gateway has no peer left: it says so.
        for name in ("triton-gpu01", "triton-gpu03"):
            rig.lab.faults.inject("services.down", name, duration=30)
        url = rig.lab.inventory.plugin_configs["services"].get("gateway").http.url
        resp = await rig.runner.transports.http.request("GET", url, timeout=5)
        assert resp.status == 503 and b"failure to get a peer" in resp.body
