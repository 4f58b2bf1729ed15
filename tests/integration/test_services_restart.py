"""``services.restart`` through the real ActionRunner, against the lab over SSH."""

from __future__ import annotations

import pytest

from console.actions import ActionRefused, ActionRunner
from console.lab import Lab
from console.plugin import Role, Target
from console.store import Store
from plugins.services.actions import RESTART, restart_targets
from plugins.services.collect import collect_http, collect_systemd
from plugins.services.manifest import plugin as services_plugin
from tests.integration.support import (
    ctx_for,
    lab_fixture,
    runner_fixture,
)
from tests.integration.test_services_lab import emulation, services_inventory

lab = lab_fixture(services_inventory, [services_plugin], seed=5)


runner = runner_fixture()


def minio(lab: Lab) -> Target:
    (target,) = [
        t
        for t in restart_targets(lab.inventory, lab.inventory.plugin_configs["services"])
        if t.name == "minio-stor01"
    ]
    return target


async def test_restart_targets_are_the_checks_with_a_unit_and_a_node(lab: Lab):
    names = {
        t.name for t in restart_targets(lab.inventory, lab.inventory.plugin_configs["services"])
    }
    assert names == {"minio-stor01", "es", "gitea"}


async def test_restart_of_a_failed_unit_previews_confirms_audits_and_verifies(
    lab: Lab, runner: ActionRunner
):
    lab.faults.inject("services.unit_failed", "minio-stor01")
    # What the console would know: the poller's readings of the failed unit.
    ctx = ctx_for(lab.inventory, runner.transports, "services")
    store = runner.store
    assert isinstance(store, Store)
    store.put(await collect_systemd(ctx, Target("node", "stor01", node="stor01")))
    plan = await runner.plan(RESTART, [minio(lab)], {})
    assert plan.confirm_text == "minio-stor01"
    node = lab.inventory.nodes["stor01"]
    where = f"stor01 ({node.ssh.user}@127.0.0.1:{node.ssh.port})"
    (preview,) = plan.previews
    assert preview.lines[0] == f"systemctl restart minio.service on {where}"
    assert "failed (exit-code)" in preview.lines[1]

    (result,) = await runner.execute(plan, "minio-stor01")
    assert result.outcome == "ok", result.detail
    assert result.detail.startswith("minio.service on stor01 active (running) after ")
    assert "health check ok" in result.detail
    assert emulation(lab).restarts == [("stor01", "minio.service")]

    rows = runner.audit.page(newest_first=False)
    assert [r.phase for r in rows] == ["intent", "result"]
    intent, last = rows
    assert intent.phase == "intent" and intent.action == "services.restart"
    assert intent.targets == ("minio-stor01",) and intent.operator == "alice"
    assert "systemctl restart minio.service on stor01" in intent.detail
    assert last.phase == "result" and last.outcome == "ok"
    state = await collect_http(ctx, Target("service", "minio-stor01"))
    assert {r.metric: r.value for r in state}["services.state"] == "ok"


async def test_a_wrong_typed_confirmation_runs_nothing(lab: Lab, runner: ActionRunner):
    lab.faults.inject("services.unit_failed", "minio-stor01")
    plan = await runner.plan(RESTART, [minio(lab)], {})
    for typed in ("minio-stor0", "MINIO-STOR01", " minio-stor01", ""):
        with pytest.raises(ActionRefused):
            await runner.execute(plan, typed)
    assert emulation(lab).restarts == []
    assert all(r.phase != "intent" for r in runner.audit.page())


async def test_restart_that_cannot_bring_the_unit_up_fails_with_what_was_seen(
    lab: Lab, runner: ActionRunner
):
    # services.down persists: the unit fails again after the restart.
    lab.faults.inject("services.down", "minio-stor01")
    plan = await runner.plan(RESTART, [minio(lab)], {})
    (result,) = await runner.execute(plan, "minio-stor01")
    assert result.outcome == "failed"
    assert "minio.service on stor01 is failed (exit-code) after the restart" in result.detail


async def test_a_viewer_may_not_restart(lab: Lab, runner: ActionRunner):
    runner.role = Role.VIEWER
    with pytest.raises(ActionRefused):
        await runner.plan(RESTART, [minio(lab)], {})
    assert emulation(lab).restarts == []
