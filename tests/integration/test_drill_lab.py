"""Drills end to end in the lab: real HTTP checks through the poller, real faults,
a standby that takes the VIP over after a delay, the ActionRunner and its audit log.

The measured RTO is a real measurement: the lab's takeover delay as the
console's own checks see it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from console.inventory.load import inventory_from_data
from console.inventory.model import Inventory
from console.lab import Lab
from console.plugin import Target
from console.poller import Poller
from console.store import Store
from console.wizards.drill_env import PollerProbe, build_env
from console.wizards.drill_lab import TakeoverLab, lab_fault_actions, takeover_plugin
from console.wizards.drill_model import Scenario, catalogue_from_data
from console.wizards.drill_report import DrillStore
from console.wizards.drill_run import DrillRun
from plugins.services.manifest import plugin as services_plugin
from tests.integration.support import (
    action_runner,
    emulation,
    eventually,
    lab_fixture,
    open_transports,
)

TAKEOVER_S = 2.0


def drill_inventory() -> Inventory:
    gitea = {"service": "gitea", "interval": 1}
    return inventory_from_data(
        {
            "site": {"name": "drill-lab"},
            "ssh": {"user": "ops"},
            "nodes": [{"nodes": "cpu01", "role": "cpu"}, {"nodes": "stor01", "role": "storage"}],
            "plugins": {
                "services": {
                    "checks": [
                        {"name": "api-primary", "node": "cpu01", **gitea},
                        {"name": "api-standby", "node": "stor01", **gitea},
                        {"name": "api", "node": "cpu01", **gitea},
                        {"name": "search", "service": "elasticsearch", "node": "stor01"},
                    ]
                }
            },
        },
        None,
    )


lab = lab_fixture(
    drill_inventory,
    lambda: [services_plugin, takeover_plugin("api-primary", "api", TAKEOVER_S)],
    seed=11,
)


def scenario(expected: list[str]) -> Scenario:
    healthy = "services.healthy"
    data: dict[str, Any] = {
        "drills": [
            {
                "id": "api-failover",
                "title": "Fail the API over to its standby",
                "scope": "drill-lab",
                "steady_state": [
                    {"check": healthy, "target": t}
                    for t in ("api-primary", "api-standby", "api", "search")
                ],
                "inject": {
                    "action": "lab.fault",
                    "target": "api-primary",
                    "inputs": {"fault": "services.down", "revert_after_s": 120},
                },
                "signals": [
                    {"phase": "detect", "check": healthy, "target": "api", "expect": "fail"},
                    {"phase": "failover", "check": healthy, "target": "api", "expect": "recover"},
                    {"phase": "recovered", "check": healthy, "target": "api-standby"},
                ],
                "targets": {"rto_s": 10},
                "stop": {"expected_failures": expected, "contact_lost_s": 5},
                "max_duration_s": 30,
                "restore": {
                    "action": "lab.fault_clear",
                    "target": "api-primary",
                    "inputs": {"fault": "services.down"},
                },
                "preflight_timeout_s": 10,
                "postflight_timeout_s": 10,
                "poll_interval_s": 0.2,
            }
        ]
    }
    return catalogue_from_data(data).drills[0]


@dataclass
class Rig:
    lab: Lab
    run: Any
    runner: Any
    audit: Any
    drills: DrillStore


@pytest.fixture
async def rig(lab: Lab, tmp_path: Path) -> AsyncIterator[Rig]:
    async with (
        open_transports() as transports,
        action_runner(lab.inventory, transports, tmp_path / "audit.db") as runner,
    ):
        store = runner.store
        assert isinstance(store, Store)
        poller = Poller(
            store,
            lab.inventory,
            transports,
            [(services_plugin, c) for c in services_plugin.collectors],
        )
        drills = DrillStore(tmp_path / "drills.db")
        env = build_env(
            [services_plugin],
            runner,
            store,
            PollerProbe(poller),
            drills,
            extra_actions=lab_fault_actions(lab.faults),
        )

        def run(expected: list[str]) -> DrillRun:
            return DrillRun(scenario(expected), env)

        yield Rig(lab, run, runner, runner.audit, drills)


async def test_a_failover_drill_in_the_lab_measures_a_real_rto_inside_its_target(rig: Rig) -> None:
    report = await rig.run(["api"]).run("api-primary")
    assert report.result == "passed", report.deviations
    detect, failover = report.phases["detect"], report.phases["failover"]
    assert detect is not None and failover is not None
    # The VIP is down from the lab tick after the injection until the standby takes it.
    assert detect < 1.6
    assert failover - detect >= TAKEOVER_S - 0.5 and failover <= TAKEOVER_S + 2.5
    assert report.rto.measured_s == report.phases["recovered"]
    assert report.rto.met is True
    assert emulation(rig.lab, "drilllab", TakeoverLab).takeovers == 1
    assert rig.lab.faults.active() == []  # restored
    assert rig.drills.get(report.id) == report
    rows = [(r.phase, r.action, r.outcome) for r in rig.audit.page(newest_first=False)]
    assert rows == [
        ("drill", "drill.api-failover", "started"),
        ("intent", "lab.fault", ""),
        ("result", "lab.fault", "ok"),
        ("intent", "lab.fault_clear", ""),
        ("result", "lab.fault_clear", "ok"),
        ("drill", "drill.api-failover", "passed"),
    ]


async def test_a_drill_whose_stop_condition_trips_aborts_and_restores(rig: Rig) -> None:
    # The scenario forgot that clients lose the VIP during the takeover.
    report = await rig.run([]).run("api-primary")
    assert report.result == "aborted"
    assert report.deviations[0] == (
        "aborted: stop condition: 1 unexpected failure(s) (> 0): services.healthy@api"
    )
    assert report.restored is True
    assert report.phases["failover"] is None
    assert "postflight" in [e.step for e in report.timeline]
    assert not any(d.startswith("postflight") for d in report.deviations)
    assert rig.lab.faults.get("services.down", "api-primary") is None
    outcomes = [(r.action, r.outcome) for r in rig.audit.page(newest_first=False)]
    assert ("lab.fault_clear", "ok") in outcomes
    assert outcomes[-1] == ("drill.api-failover", "aborted")


async def test_the_injected_lab_fault_reverts_by_itself_if_nobody_restores(rig: Rig) -> None:
    # The dead man's switch at the fault: a console that dies mid-drill leaves a fault
    # with a lifetime, and the lab ends it.
    inject = lab_fault_actions(rig.lab.faults)[0]
    target = Target("lab-target", "api-primary")
    plan = await rig.runner.plan(inject, [target], {"fault": "services.down", "revert_after_s": 1})
    assert plan.previews[0].lines == (
        "lab: inject services.down on api-primary, reverts by itself after 1 s",
    )
    (result,) = await rig.runner.execute(plan, "api-primary")
    assert result.outcome == "ok"
    assert rig.lab.faults.get("services.down", "api-primary") is not None

    async def gone() -> bool:
        return rig.lab.faults.get("services.down", "api-primary") is None

    await eventually(gone, "the fault to revert by itself", timeout=5)
