"""The drill engine on a scripted world: a real ActionRunner and audit log, a fake clock.

The world is a primary, a standby and the VIP clients use; the standby takes
the VIP ``takeover_s`` after the primary stops. The probe writes what the world
looks like into the Store at each refresh, as the poller would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from console.actions import ActionRunner
from console.audit import AuditLog
from console.identity import Operator
from console.inventory.load import inventory_from_data
from console.plugin import (
    ActionSpec,
    CheckSpec,
    Finding,
    Outcome,
    Preview,
    Reading,
    Role,
    Severity,
    Target,
)
from console.store import Store, StoreView
from console.transports import Transports
from console.wizards.drill_env import DrillEnv
from console.wizards.drill_model import catalogue_from_data
from console.wizards.drill_report import DrillStore
from console.wizards.drill_run import DrillRun, stopwatch_lines


@dataclass
class World:
    now: float = 0.0
    up: dict[str, bool] = field(
        default_factory=lambda: {"primary": True, "standby": True, "vip": True, "db": True}
    )
    stopped_at: float | None = None
    takeover_s: float = 12.0
    breaks_db: bool = False
    """The fault takes the database down too (more than expected)."""
    contact: bool = True
    stops: int = 0
    starts: int = 0

    def state(self, name: str) -> bool:
        if name == "vip" and self.stopped_at is not None:
            return self.now - self.stopped_at >= self.takeover_s
        if name == "db" and self.stopped_at is not None and self.breaks_db:
            return False
        return self.up[name]


class Clock:
    def __init__(self, world: World) -> None:
        self.world = world

    def __call__(self) -> float:
        return self.world.now

    async def sleep(self, seconds: float) -> None:
        self.world.now += seconds
        await asyncio.sleep(0)  # a real suspension point, as a real sleep is


@dataclass
class WorldProbe:
    world: World
    store: Store

    async def refresh(self, names: frozenset[str]) -> bool:
        if not self.world.contact:
            return False
        self.store.put(
            [Reading(n, "t.up", self.world.state(n), ts=self.world.now) for n in self.world.up]
        )
        return True


def check_up(store: StoreView, target: Target) -> Finding:
    v = store.value(target.name, "t.up")
    sev = Severity.UNKNOWN if v is None else Severity.OK if v else Severity.CRITICAL
    return Finding(sev, target.name, f"{target.name} {'?' if v is None else 'up' if v else 'down'}")


def actions(world: World) -> tuple[ActionSpec, ActionSpec]:
    async def preview(ctx: Any, t: Target, i: Any) -> Preview:
        return Preview((f"world: {t.name}",))

    async def stop(ctx: Any, t: Target, i: Any) -> Outcome:
        world.up[t.name] = False
        world.stopped_at = world.now
        world.stops += 1
        return Outcome(True, "stopped")

    async def start(ctx: Any, t: Target, i: Any) -> Outcome:
        world.up[t.name] = True
        world.stopped_at = None
        world.starts += 1
        return Outcome(True, "started")

    async def verify(ctx: Any, t: Target, i: Any, o: Outcome) -> Outcome:
        return o

    common: dict[str, Any] = {"target_kind": "svc", "targets": lambda inv, cfg: ()}
    return (
        ActionSpec(
            "t.stop",
            "stop",
            preview=preview,
            execute=stop,
            verify=verify,
            destructive=True,
            **common,
        ),
        ActionSpec("t.start", "start", preview=preview, execute=start, verify=verify, **common),
    )


def scenario_data(**stop: Any) -> dict[str, Any]:
    return {
        "drills": [
            {
                "id": "ha",
                "title": "Lose the primary",
                "scope": "drill-test",
                "steady_state": [
                    {"check": "t.up", "target": n} for n in ("primary", "standby", "vip", "db")
                ],
                "inject": {"action": "t.stop", "target": "primary"},
                "signals": [
                    {"phase": "detect", "check": "t.up", "target": "primary", "expect": "fail"},
                    {"phase": "failover", "check": "t.up", "target": "vip", "expect": "recover"},
                    {"phase": "recovered", "check": "t.up", "target": "standby"},
                ],
                "targets": {"rto_s": 30},
                "stop": {"expected_failures": ["vip"], "contact_lost_s": 10, **stop},
                "max_duration_s": 60,
                "restore": {"action": "t.start", "target": "primary"},
                "preflight_timeout_s": 5,
                "postflight_timeout_s": 5,
                "poll_interval_s": 1,
            }
        ]
    }


@dataclass
class Rig:
    world: World
    env: DrillEnv
    audit: AuditLog
    store: DrillStore

    def run(self, **stop: Any) -> DrillRun:
        scenario = catalogue_from_data(scenario_data(**stop)).drills[0]
        return DrillRun(scenario, self.env)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    world = World()
    store = Store()
    clock = Clock(world)
    inventory = inventory_from_data(
        {"site": {"name": "t"}, "nodes": [{"nodes": "n1", "role": "cpu"}]}, None
    )
    audit = AuditLog(tmp_path / "audit.db", fallback_path=tmp_path / "fallback.jsonl")
    transports = Transports.create()
    runner = ActionRunner(
        audit, inventory, transports, store, Operator(user="alice"), Role.OPERATOR, False, {}
    )
    drills = DrillStore(tmp_path / "drills.db")
    env = DrillEnv(
        runner=runner,
        store=store,
        checks={"t.up": CheckSpec("t.up", "up", "svc", check_up)},
        actions={a.id: a for a in actions(world)},
        known_targets={},
        probe=WorldProbe(world, store),
        drills=drills,
        clock=clock,
        sleep=clock.sleep,
        wall=lambda: 1_800_000_000 + world.now,
    )
    try:
        yield Rig(world, env, audit, drills)
    finally:
        audit.close()
        await transports.close()


async def test_a_drill_measures_detect_failover_and_recovery_and_passes_inside_the_rto(
    rig: Rig,
) -> None:
    report = await rig.run().run("primary")
    assert report.result == "passed", report.deviations
    assert report.phases["detect"] == 0.0
    # The VIP comes back 12 s after the stop; polled every second.
    assert report.phases["failover"] == 12.0
    assert report.rto.measured_s == 12.0 and report.rto.met is True
    assert report.restored is True and rig.world.up["primary"] is True
    steps = [e.step for e in report.timeline]
    assert steps[:3] == ["start", "preflight", "inject"]
    assert steps.index("failover") < steps.index("restore") < steps.index("postflight")
    assert {e.who for e in report.timeline if e.step == "inject"} == {"alice"}
    assert report.deviations == []


async def test_the_report_is_stored_and_exports_as_markdown_and_json(rig: Rig) -> None:
    report = await rig.run().run("primary")
    stored = rig.store.get(report.id)
    assert stored is not None and stored == report
    assert [r.id for r in rig.store.list()] == [report.id]
    md = stored.to_markdown()
    assert "# Drill report: Lose the primary" in md
    assert "| RTO | 30.0 s | 12.0 s | met |" in md and "**PASSED**" in md
    data = json.loads(stored.to_json())
    assert data["result"] == "passed" and data["operator"] == "alice"
    assert data["phases"]["failover"] == 12.0
    assert oct(rig.store.path.stat().st_mode & 0o777) == "0o600"


async def test_inject_and_restore_go_through_the_audited_runner_bracketed_by_drill_rows(
    rig: Rig,
) -> None:
    report = await rig.run().run("primary")
    rows = rig.audit.page(newest_first=False)
    assert [(r.phase, r.action, r.outcome) for r in rows] == [
        ("drill", "drill.ha", "started"),
        ("intent", "t.stop", ""),
        ("result", "t.stop", "ok"),
        ("intent", "t.start", ""),
        ("result", "t.start", "ok"),
        ("drill", "drill.ha", "passed"),
    ]
    assert rows[0].params["drill_id"] == report.id
    assert {r.operator for r in rows} == {"alice"}


async def test_an_rto_over_the_target_fails_the_drill_with_a_deviation(rig: Rig) -> None:
    rig.world.takeover_s = 40
    report = await rig.run().run("primary")
    assert report.result == "failed"
    assert report.rto.measured_s == 40.0 and report.rto.met is False
    assert "RTO 40.0 s over the target 30 s" in report.deviations
    assert report.restored is True


async def test_more_failures_than_expected_trip_the_stop_condition_and_restore(rig: Rig) -> None:
    rig.world.breaks_db = True
    report = await rig.run().run("primary")
    assert report.result == "aborted"
    assert report.deviations[0].startswith("aborted: stop condition: 1 unexpected failure(s)")
    assert "t.up@db" in report.deviations[0]
    assert report.restored is True and rig.world.starts == 1 and rig.world.up["primary"]
    assert report.phases["failover"] is None
    abort = [e for e in report.timeline if e.step == "abort"]
    assert abort and abort[0].who == "drill"


async def test_a_stop_condition_tolerates_up_to_n_unexpected_failures(rig: Rig) -> None:
    rig.world.breaks_db = True
    report = await rig.run(max_unexpected_failures=1).run("primary")
    # Within the tolerance: no abort, the drill passes, but the DR review sees it.
    assert report.result == "passed"
    assert report.deviations == ["unexpected failures within the tolerance (1): t.up@db"]
    assert report.phases["failover"] == 12.0


async def test_losing_contact_with_the_targets_restores_after_the_limit(rig: Rig) -> None:
    run = rig.run()
    original = rig.env.probe

    class Silent:
        async def refresh(self, names: frozenset[str]) -> bool:
            if rig.world.stops and rig.world.now >= 3:
                return False  # the network to the targets is gone 3 s into the drill
            return await original.refresh(names)

    rig.env.probe = Silent()
    report = await run.run("primary")
    assert report.result == "aborted"
    assert "lost contact with the targets for 11.0 s" in report.deviations[0]
    assert rig.world.starts == 1


async def test_the_maximum_duration_aborts_and_restores(rig: Rig) -> None:
    rig.world.takeover_s = 1_000
    report = await rig.run().run("primary")
    assert report.result == "aborted"
    assert "maximum duration 60 s exceeded" in report.deviations[0]
    assert report.restored is True


async def test_an_operator_abort_restores_and_names_the_operator(rig: Rig) -> None:
    run = rig.run()

    def abort_at_5s(r: DrillRun) -> None:
        if r.elapsed is not None and r.elapsed >= 5:
            r.abort()

    run.on_change = abort_at_5s
    report = await run.run("primary")
    assert report.result == "aborted"
    (abort,) = [e for e in report.timeline if e.step == "abort"]
    assert abort.who == "alice" and abort.text == "aborted by the operator"
    assert rig.world.starts == 1


async def test_a_broken_steady_state_refuses_the_drill_and_injects_nothing(rig: Rig) -> None:
    rig.world.up["db"] = False
    report = await rig.run().run("primary")
    assert report.result == "refused" and report.restored is None
    assert rig.world.stops == 0
    assert report.deviations[0].startswith("preflight: steady state does not hold: t.up@db")


async def test_a_wrong_typed_confirmation_refuses_the_drill(rig: Rig) -> None:
    report = await rig.run().run("primar")
    assert report.result == "refused" and rig.world.stops == 0
    assert "typed confirmation" in report.deviations[0]
    phases = [r.phase for r in rig.audit.page(newest_first=False)]
    assert phases == ["drill", "refused", "drill"]


async def test_the_stopwatch_shows_the_phases_and_the_elapsed_time(rig: Rig) -> None:
    run = rig.run()
    seen: list[list[str]] = []

    def record(r: DrillRun) -> None:
        if r.step == "observe" and r.phases.get("detect") is not None:
            seen.append(stopwatch_lines(r))

    run.on_change = record
    await run.run("primary")
    first = seen[0]
    assert first[0] == 'Drill "Lose the primary" · target RTO 30s · stop if > 0 unexpected failures'
    assert first[1].startswith("observe  detect 0.0s   failover —   recovered —   ▶ 00:")
    assert first[2] == "A abort and restore"


async def test_a_drill_cancelled_mid_fault_still_restores_and_records_it(rig: Rig) -> None:
    # The console quitting (its task cancelled) while the fault is in.
    run = rig.run()
    task: asyncio.Task[Any] | None = None

    def cancel_at_5s(r: DrillRun) -> None:
        if task is not None and r.step == "observe" and r.elapsed and r.elapsed >= 5:
            task.cancel()  # the console quits while the fault is in

    run.on_change = cancel_at_5s
    task = asyncio.create_task(run.run("primary"))
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rig.world.starts == 1 and rig.world.up["primary"]
    stored = rig.store.get(run.report.id)
    assert stored is not None and stored.result == "aborted" and stored.restored is True
    assert rig.audit.page()[0].outcome == "aborted"


async def test_an_abort_during_the_preflight_injects_nothing_and_restores_nothing(
    rig: Rig,
) -> None:
    # Ctrl-C on `dcc drill run` (or A in the console) while the preflight still runs.
    run = rig.run()
    run.on_change = lambda r: r.abort("interrupted (Ctrl-C)") if r.step == "preflight" else None
    report = await run.run("primary")
    assert report.result == "aborted" and report.restored is None
    assert rig.world.stops == 0 and rig.world.starts == 0
    assert report.deviations == ["aborted before the fault went in: interrupted (Ctrl-C)"]
    (abort,) = [e for e in report.timeline if e.step == "abort"]
    assert abort.who == "alice" and "nothing was injected" in abort.text
    phases = [(r.phase, r.outcome) for r in rig.audit.page(newest_first=False)]
    assert phases == [("drill", "started"), ("drill", "aborted")]


async def test_the_report_names_the_console_process_that_runs_the_drill(rig: Rig) -> None:
    import os
    import socket

    report = await rig.run().run("primary")
    assert (report.console_host, report.pid) == (socket.gethostname(), os.getpid())
