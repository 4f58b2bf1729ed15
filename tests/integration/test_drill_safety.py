"""What keeps a drill safe when things go wrong: contact lost mid-drill, and the dead
man's switch that restores a fault when the console running the drill is gone."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from console.plugin import Target
from console.wizards.drill_deadman import DEADMAN_ACTIONS
from console.wizards.drill_report import DrillStore
from console.wizards.drill_run import DrillRun
from plugins.services.lab import ServicesLab
from plugins.services.manifest import plugin as services_plugin
from plugins.slurm.manifest import plugin as slurm_plugin
from tests.integration.drill_support import HEALTHY, audit_rows, drill_rig, scenario
from tests.integration.support import emulation, eventually

ROOT = Path(__file__).resolve().parents[2]
SERVICES = dataclasses.replace(
    services_plugin, lab=lambda: ServicesLab(takeover_s=1.0, replication_lag_s=1.0)
)


def stor02_down(**extra: Any) -> dict[str, Any]:
    """Lose minio-stor02 for good: the drill can only end by an abort (or a kill)."""
    check = {"check": HEALTHY, "target": "minio-stor02"}
    return {
        "id": "stor02",
        "title": "Lose minio-stor02",
        "scope": "drill-test",
        "steady_state": [{"check": HEALTHY, "target": "minio-stor01"}, check],
        "inject": {
            "action": "lab.fault",
            "target": "minio-stor02",
            "inputs": {"fault": "services.down"},
        },
        "signals": [
            {"phase": "detect", **check, "expect": "fail"},
            {"phase": "recovered", **check, "expect": "recover"},
        ],
        "targets": {"rto_s": 30},
        "stop": {"expected_failures": ["minio-stor02"]},
        "restore": {
            "action": "lab.fault_clear",
            "target": "minio-stor02",
            "inputs": {"fault": "services.down"},
        },
        "deadman": {
            "arm": {
                "action": "lab.deadman_arm",
                "target": "minio-stor02",
                "inputs": {"faults": ["services.down"]},
            },
            "cancel": {"action": "lab.deadman_cancel", "target": "minio-stor02"},
        },
        "poll_interval_s": 0.25,
        **extra,
    }


async def test_losing_contact_with_the_targets_mid_drill_restores_and_the_report_says_so(
    tmp_path: Path,
) -> None:
    async with drill_rig(tmp_path, [slurm_plugin]) as rig:
        ctl = {"check": "slurm.controller", "target": "train"}
        fault = {"fault": "slurm.controller_down"}
        run = rig.run(
            scenario(
                id="contact",
                steady_state=[ctl, {"check": "slurm.in_service", "target": "gpu01"}],
                inject={"action": "lab.fault", "target": "train", "inputs": fault},
                signals=[
                    {"phase": "detect", **ctl, "expect": "fail"},
                    {"phase": "failover", **ctl, "expect": "recover"},
                ],
                targets={"rto_s": 30},
                stop={"expected_failures": ["train"], "contact_lost_s": 1.0},
                restore={"action": "lab.fault_clear", "target": "train", "inputs": fault},
            )
        )
        cut: list[bool] = []

        def partition(r: DrillRun) -> None:
            if r.phases.get("detect") is not None and not cut:
                cut.append(True)  # the network to both controllers goes, for 2.5 s
                for node in ("cpu01", "cpu02"):
                    rig.lab.faults.inject("host.down", node, duration=2.5)

        run.on_change = partition
        report = await run.run("train")

        assert report.result == "aborted"
        assert report.deviations[0].startswith("aborted: lost contact with the targets for ")
        assert report.restored is True
        assert rig.lab.faults.get("slurm.controller_down", "train") is None
        # The postflight waited for the controllers to be reachable again.
        assert not any(d.startswith("postflight") for d in report.deviations)
        assert "lost contact with the targets" in report.to_markdown()
        rows = rig.audit()
        assert ("result", "lab.fault_clear", "ok") in rows
        assert rows[-1] == ("drill", "drill.contact", "aborted")


async def test_a_drill_process_killed_after_the_inject_is_restored_by_the_lab_by_itself(
    tmp_path: Path,
) -> None:
    async with drill_rig(tmp_path, [SERVICES]) as rig:
        work = tmp_path / "child"
        work.mkdir()
        data = stor02_down(deadman={**stor02_down()["deadman"], "after_s": 3})
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.integration.drill_child",
            str(rig.lab.state_dir),
            str(work),
            json.dumps(data),
            "minio-stor02",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)  # type: ignore[union-attr]
            assert line.strip() == b"observing", (await proc.stderr.read()).decode()  # type: ignore[union-attr]
            assert rig.lab.faults.get("services.down", "minio-stor02") is not None
            (armed,) = rig.lab.deadman.armed()
            assert armed.key.endswith(":minio-stor02") and armed.by == "bob"
        finally:
            proc.kill()  # the console dies with the fault in (no restore, no cleanup)
            await proc.wait()

        async def restored() -> bool:
            return rig.lab.faults.get("services.down", "minio-stor02") is None

        await eventually(restored, "the lab's dead man's switch to restore", timeout=8)
        (fired,) = rig.lab.deadman.fired
        assert fired.key == armed.key and fired.cleared
        # On the record: armed and injected by the dead console, never restored by it.
        rows = audit_rows(work / "audit.db")
        assert rows[:5] == [
            ("drill", "drill.stor02", "started"),
            ("intent", "lab.deadman_arm", ""),
            ("result", "lab.deadman_arm", "ok"),
            ("intent", "lab.fault", ""),
            ("result", "lab.fault", "ok"),
        ]
        assert not any(a == "lab.fault_clear" for _, a, _ in rows)
        (left,) = DrillStore(work / "drills.db").list()
        assert left.ended == "" and "restores by itself after 3 s" in left.deadman


async def test_the_ssh_dead_mans_switch_runs_the_restore_on_the_host_unless_cancelled(
    tmp_path: Path,
) -> None:
    async with drill_rig(tmp_path, [SERVICES]) as rig:
        arm, cancel = DEADMAN_ACTIONS
        node = Target("node", "stor02", node="stor02")
        rig.lab.faults.inject("services.unit_failed", "minio-stor02")  # the unit crashed
        inputs = {"command": "systemctl restart minio.service", "after_s": 1, "key": "k1"}
        plan = await rig.runner.plan(arm, [node], inputs)
        assert "systemd-run --unit=dcc-drill-k1 --on-active=1s" in plan.previews[0].lines[0]
        (armed,) = await rig.runner.execute(plan, None)
        assert armed.outcome == "ok", armed.detail
        # Nobody cancels it: stor02's systemd runs the restore by itself.
        lab = emulation(rig.lab, "services", ServicesLab)

        async def restarted() -> bool:
            return ("stor02", "minio.service") in lab.restarts

        await eventually(restarted, "the timer to restart minio on stor02", timeout=5)
        (timer,) = rig.lab.timers.fired
        assert timer.reply is not None and timer.reply.exit_status == 0
        # Armed again and cancelled: nothing runs.
        (again,) = await rig.runner.execute(
            await rig.runner.plan(arm, [node], {**inputs, "key": "k2"}), None
        )
        (stopped,) = await rig.runner.execute(
            await rig.runner.plan(cancel, [node], {"key": "k2"}), None
        )
        assert again.outcome == "ok" and stopped.outcome == "ok", stopped.detail
        assert rig.lab.timers.active == {}
        assert [r[1] for r in rig.audit() if r[0] == "result"] == [
            "drill.deadman_ssh_arm",
            "drill.deadman_ssh_arm",
            "drill.deadman_ssh_cancel",
        ]
