"""Fleet-scoped collectors in the poller: one run for all targets, outcomes per target,
absent series as unknown readings dated at their last sample."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from console.inventory import Inventory, inventory_from_data
from console.plugin import (
    Absent,
    CollectContext,
    FleetResult,
    Plugin,
    Reading,
    Target,
    fleet_collector,
)
from console.poller import Poller
from console.store import Store
from console.transports import Transports

NODES = ("n1", "n2", "n3")


def targets(inventory: Inventory, config: Any) -> Sequence[Target]:
    return [Target("node", n, node=n, attrs={"interval": 0.05}) for n in NODES]


class Fleet:
    """A fleet collector whose answers the test sets; it records each run's targets."""

    def __init__(self) -> None:
        self.runs: list[list[str]] = []
        self.result = FleetResult()
        self.fail: Exception | None = None

    async def __call__(self, ctx: CollectContext, chosen: Sequence[Target]) -> FleetResult:
        self.runs.append([t.name for t in chosen])
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        return self.result


@pytest.fixture
async def transports() -> AsyncIterator[Transports]:
    t = Transports.create()
    yield t
    await t.close()


def make(fleet: Fleet, transports: Transports) -> tuple[Poller, Store]:
    inv = inventory_from_data({"site": {"name": "t"}})
    store = Store()
    spec = fleet_collector("t.prom", targets, fleet, interval=0.05, timeout=2.0)
    plugin = Plugin(name="t", description="test", collectors=(spec,))
    return Poller(store, inv, transports, [(plugin, spec)]), store


async def test_one_job_runs_once_for_every_target_and_records_each(transports: Transports):
    fleet = Fleet()
    now = time.time()
    fleet.result = FleetResult(
        readings=[Reading(n, "t.v", i, ts=now) for i, n in enumerate(NODES)],
        errors={"n3": "no series for n3"},
    )
    poller, store = make(fleet, transports)
    assert len(poller.jobs) == 1 and len(poller.jobs[0].targets) == 3
    assert store.pane_status(["t.prom"]).state == "loading"
    assert await poller.poll_once() == 1
    assert fleet.runs == [list(NODES)]
    assert [store.value(n, "t.v") for n in NODES] == [0, 1, 2]
    assert {s.target: s.last_error for s in store.collector_statuses()} == {
        "n1": None,
        "n2": None,
        "n3": "no series for n3",
    }
    assert store.pane_status(["t.prom"]).error == "1 of 3 failing"


async def test_a_failed_run_fails_every_target_with_its_error(transports: Transports):
    fleet = Fleet()
    fleet.fail = RuntimeError("prometheus 127.0.0.1:9: connection refused")
    poller, store = make(fleet, transports)
    assert await poller.poll_once() == 0
    pane = store.pane_status(["t.prom"])
    assert pane.state == "failed" and pane.error == "prometheus 127.0.0.1:9: connection refused"
    assert all(s.failures == 1 for s in store.collector_statuses())


async def test_absent_readings_become_unknown_dated_at_their_last_sample(transports: Transports):
    fleet = Fleet()
    poller, store = make(fleet, transports)
    earlier = time.time() - 42
    store.put([Reading("n1/0", "t.util", 97.0, ts=earlier)])
    fleet.result = FleetResult(
        absent=[
            Absent("n1/0", ("t.util", "t.temp"), "no series in Prometheus", node="n1"),
            Absent("n2/0", ("t.util",), "stale in Prometheus", last_seen=earlier - 60, node="n2"),
            Absent("n3/0", ("t.util",), "no series in Prometheus", node="n3"),
        ]
    )
    await poller.poll_once()
    util = store.latest("n1/0", "t.util")
    assert util is not None and util.value is None and util.ts == earlier
    assert util.detail.startswith("no series in Prometheus (last sample 4")
    assert math.isnan(store.history("n1/0", "t.util")[-1])  # unknown in the history too
    stale = store.latest("n2/0", "t.util")
    assert stale is not None and stale.value is None and "(last sample 10" in stale.detail
    never = store.latest("n3/0", "t.util")
    assert never is not None and never.value is None and never.detail == "no series in Prometheus"


async def test_the_loop_runs_the_fleet_job_again_and_never_overlaps(transports: Transports):
    fleet = Fleet()
    poller, store = make(fleet, transports)
    poller.start()
    try:
        deadline = time.monotonic() + 5
        while len(fleet.runs) < 3:
            assert time.monotonic() < deadline, "the fleet job did not run three times"
            await asyncio.sleep(0.01)
    finally:
        await poller.stop()
    assert all(run == list(NODES) for run in fleet.runs)
    assert {s.target for s in store.collector_statuses()} == set(NODES)  # no "*" status


async def test_a_plugins_memory_is_shared_by_its_collectors_and_private_to_its_poller(
    transports: Transports,
):
    # Counter rates need the previous totals for as long as the session lives; two
    # sessions in one process (two consoles in a test, a restarted session) never share.
    seen: list[tuple[str, int]] = []

    def remembering(name: str) -> Fleet:
        class Remembering(Fleet):
            async def __call__(self, ctx: CollectContext, chosen: Sequence[Target]) -> FleetResult:
                ctx.memory[name] = ctx.memory.get(name, 0) + 1
                seen.append((name, id(ctx.memory)))
                return await super().__call__(ctx, chosen)

        return Remembering()

    inv = inventory_from_data({"site": {"name": "t"}})
    specs = [
        fleet_collector(f"t.{n}", targets, remembering(n), interval=0.05, timeout=2.0)
        for n in ("a", "b")
    ]
    plugin = Plugin(name="t", description="test", collectors=tuple(specs))
    first = Poller(Store(), inv, transports, [(plugin, s) for s in specs])
    second = Poller(Store(), inv, transports, [(plugin, s) for s in specs])
    await first.poll_once()
    await first.poll_once()
    await second.poll_once()
    first_ids = {i for _, i in seen[:4]}
    second_ids = {i for _, i in seen[4:]}
    assert len(first_ids) == 1 and len(second_ids) == 1  # one mapping per plugin and poller
    assert first_ids != second_ids
    assert first.jobs[0].context.memory == {"a": 2, "b": 2}
    assert second.jobs[0].context.memory == {"a": 1, "b": 1}
