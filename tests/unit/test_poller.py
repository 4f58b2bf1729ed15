"""The poller on a real event loop: plain async collectors in a test Plugin, tiny intervals.

Synchronisation is by events and by polling loops with a deadline, never by a
bare sleep; the only sleeps are the collectors' own simulated work.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from console.inventory import Inventory, inventory_from_data
from console.plugin import CollectContext, CollectorSpec, Plugin, Reading, Target
from console.poller import Poller
from console.store import Store
from console.transports import Transports

CollectFn = Callable[[CollectContext, Target], Any]


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail the test at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.005)


def targets_of(*names: str, **attrs: Any) -> Callable[[Inventory, Any], Sequence[Target]]:
    def targets(inventory: Inventory, config: Any) -> Sequence[Target]:
        return [Target("node", n, node=n, attrs=attrs.get(n, {})) for n in names]

    return targets


def spec(
    collect: CollectFn,
    *names: str,
    id: str = "t.read",
    interval: float = 0.05,
    timeout: float = 2.0,
    **attrs: Any,
) -> CollectorSpec:
    return CollectorSpec(
        id=id,
        targets=targets_of(*names, **attrs),
        collect=collect,
        interval=interval,
        timeout=timeout,
    )


@pytest.fixture
def inventory() -> Inventory:
    return inventory_from_data({"site": {"name": "test"}})


@pytest.fixture
async def transports() -> AsyncIterator[Transports]:
    t = Transports.create()
    yield t
    await t.close()


@pytest.fixture
async def make_poller(
    inventory: Inventory, transports: Transports
) -> AsyncIterator[Callable[..., Poller]]:
    """Builds pollers over a test Plugin; stops whatever a test left running."""
    made: list[Poller] = []

    def make(*specs: CollectorSpec, **kwargs: Any) -> Poller:
        plugin = Plugin("t", "test plugin", collectors=specs)
        kwargs.setdefault("rng", random.Random(1))
        poller = Poller(Store(), inventory, transports, [(plugin, s) for s in specs], **kwargs)
        made.append(poller)
        return poller

    yield make
    for poller in made:
        await poller.stop()


def reading(target: Target, value: float = 1.0) -> Reading:
    return Reading(target.name, "t.value", value, source="test")


# --------------------------------------------------------------------------- basics


async def test_a_successful_run_stores_readings_and_an_ok_status(
    make_poller: Callable[..., Poller],
) -> None:
    async def collect(ctx: CollectContext, target: Target) -> list[Reading]:
        return [reading(target, 42.0)]

    poller = make_poller(spec(collect, "n1", "n2"))
    assert await poller.poll_once() == 2
    assert poller.store.value("n1", "t.value") == 42.0
    st = poller.store.status("t.read", "n1", 0.05)
    assert st.failures == 0 and st.last_ok is not None and st.last_error is None


async def test_jobs_are_registered_as_loading_before_they_run(
    make_poller: Callable[..., Poller],
) -> None:
    async def collect(ctx: CollectContext, target: Target) -> list[Reading]:
        return []

    poller = make_poller(spec(collect, "n1", "n2"))
    assert len(poller.jobs) == 2
    assert poller.store.pane_status(["t.read"]).state == "loading"


# --------------------------------------------------------------------------- F6: slow target


async def test_a_slow_target_does_not_delay_the_others(make_poller: Callable[..., Poller]) -> None:
    runs: Counter[str] = Counter()
    slow_entered = asyncio.Event()
    never = asyncio.Event()

    async def collect(ctx: CollectContext, target: Target) -> list[Reading]:
        runs[target.name] += 1
        if target.name == "slow":
            slow_entered.set()
            await never.wait()  # hangs until its timeout
        return [reading(target)]

    fast = [f"fast{i}" for i in range(5)]
    poller = make_poller(spec(collect, "slow", *fast, interval=0.02, timeout=30.0))
    poller.start()
    await asyncio.wait_for(slow_entered.wait(), 5)
    await wait_until(lambda: all(runs[n] >= 5 for n in fast))
    assert runs["slow"] == 1
    assert poller.store.status("t.read", "slow", 0.02).running
    assert poller.store.status("t.read", "slow", 0.02).last_attempt is None


# --------------------------------------------------------------------------- timeout


async def test_a_run_past_its_timeout_is_recorded_as_timed_out(
    make_poller: Callable[..., Poller],
) -> None:
    never = asyncio.Event()

    async def collect(ctx: CollectContext, target: Target) -> list[Reading]:
        await never.wait()
        return []

    poller = make_poller(spec(collect, "n1", timeout=0.05))
    assert await poller.poll_once() == 0
    st = poller.store.status("t.read", "n1", 0.05)
    assert st.last_error == "timed out after 0.05s"
    assert st.failures == 1
    assert not st.running


async def test_a_timeout_raised_inside_the_collector_keeps_its_own_message(
    make_poller: Callable[..., Poller],
) -> None:
    async def collect(ctx: CollectContext, target: Target) -> list[Reading]:
        raise TimeoutError("HTTP read timed out after 3s")

    poller = make_poller(spec(collect, "n1", timeout=10.0))
    assert await poller.poll_once() == 0
    assert poller.store.status("t.read", "n1", 0.05).last_error == "HTTP read timed out after 3s"


async def test_waiting_for_a_concurrency_slot_does_not_count_against_the_timeout(
    make_poller: Callable[..., Poller],
) -> None:
    async def collect(ctx: CollectContext, target: Target) -> list[Reading]:
        await asyncio.sleep(0.1)  # the collector's work
        return [reading(target)]

    poller = make_poller(spec(collect, "n1", "n2", "n3", timeout=0.5), max_concurrency=1)
    # Serialised, the last run starts ~0.2 s late but itself takes only 0.1 s.
    assert await poller.poll_once() == 3


# --------------------------------------------------------------------------- no overlap


async def test_two_runs_of_one_job_never_overlap(make_poller: Callable[..., Poller]) -> None:
    active = 0
    peak = 0
    runs = 0

    async def collect(ctx: CollectContext, target: Target) -> list[Reading]:
        nonlocal active, peak, runs
        active += 1
        peak = max(peak, active)
        try:
            await asyncio.sleep(0.08)  # longer than the interval
        finally:
            active -= 1
        runs += 1
        return [reading(target)]

    poller = make_poller(spec(collect, "n1", interval=0.01))
    poller.start()
    await wait_until(lambda: active == 1)
    # A manual refresh while the loop's run is in flight is skipped, not run beside it.
    assert await poller.poll_once() == 0
    await wait_until(lambda: runs >= 4)
    assert peak == 1


# --------------------------------------------------------------------------- backoff


async def test_next_delay_doubles_per_failure_up_to_the_cap(
    make_poller: Callable[..., Poller],
) -> None:
    poller = make_poller(jitter=0.0, max_backoff=300.0)
    delays = [poller.next_delay(10.0, f) for f in range(7)]
    assert delays == [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]
    assert poller.next_delay(10.0, 10_000) == 300.0


async def test_next_delay_jitter_is_seeded_and_bounded(make_poller: Callable[..., Poller]) -> None:
    poller = make_poller(jitter=0.1, rng=random.Random(42))
    twin = random.Random(42)
    for failures in (0, 1, 2, 3):
        base = 10.0 * 2**failures
        expected = base * (1 + twin.uniform(-0.1, 0.1))
        got = poller.next_delay(10.0, failures)
        assert got == pytest.approx(expected)
        assert base * 0.9 <= got <= base * 1.1


async def test_an_interval_above_the_cap_is_not_shortened_by_backoff(
    make_poller: Callable[..., Poller],
) -> None:
    poller = make_poller(jitter=0.0, max_backoff=300.0)
    assert poller.next_delay(600.0, 3) == 600.0


async def test_backoff_grows_after_failures_and_resets_after_success(
    make_poller: Callable[..., Poller],
) -> None:
    fail = True

    async def collect(ctx: CollectContext, target: Target) -> list[Reading]:
        if fail:
            raise ConnectionError("refused")
        return [reading(target)]

    poller = make_poller(spec(collect, "n1", interval=10.0), jitter=0.0, max_backoff=1000.0)
    st = poller.store.status("t.read", "n1", 10.0)
    delays = []
    for _ in range(3):
        await poller.poll_once()
        delays.append(poller.next_delay(10.0, st.failures))
    assert [st.failures, st.last_error] == [3, "refused"]
    assert delays == [20.0, 40.0, 80.0]
    fail = False
    await poller.poll_once()
    assert st.failures == 0
    assert poller.next_delay(10.0, st.failures) == 10.0


async def test_the_running_loop_waits_longer_after_each_failure(
    make_poller: Callable[..., Poller],
) -> None:
    loop = asyncio.get_running_loop()
    starts: list[float] = []

    async def collect(ctx: CollectContext, target: Target) -> list[Reading]:
        starts.append(loop.time())
        if len(starts) <= 3:
            raise ConnectionError("refused")
        return [reading(target)]

    poller = make_poller(spec(collect, "n1", interval=0.05), jitter=0.0, max_backoff=10.0)
    poller.start()
    await wait_until(lambda: len(starts) >= 6)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # Three failures: 0.1, 0.2, 0.4 s; then success resets to the 0.05 s interval.
    assert gaps[0] >= 0.09
    assert gaps[1] >= 0.18
    assert gaps[2] >= 0.36
    assert gaps[3] < 0.2
    assert gaps[4] < 0.2
    assert poller.store.status("t.read", "n1", 0.05).failures == 0


# --------------------------------------------------------------------------- global cap


async def test_the_global_concurrency_cap_is_never_exceeded(
    make_poller: Callable[..., Poller],
) -> None:
    active = 0
    peak = 0
    done: Counter[str] = Counter()

    async def collect(ctx: CollectContext, target: Target) -> list[Reading]:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        try:
            await asyncio.sleep(0.02)
        finally:
            active -= 1
        done[target.name] += 1
        return [reading(target)]

    names = [f"n{i:02d}" for i in range(20)]
    poller = make_poller(spec(collect, *names, interval=0.01), max_concurrency=3)
    assert await poller.poll_once() == 20
    assert peak == 3
    poller.start()
    await wait_until(lambda: all(done[n] >= 3 for n in names))
    assert peak == 3


# --------------------------------------------------------------------------- bad collectors


async def test_a_collector_returning_a_non_reading_is_a_failure(
    make_poller: Callable[..., Poller],
) -> None:
    async def collect(ctx: CollectContext, target: Target) -> list[Any]:
        return [reading(target), {"value": 1}]

    poller = make_poller(spec(collect, "n1"))
    assert await poller.poll_once() == 0
    st = poller.store.status("t.read", "n1", 0.05)
    assert st.last_error == "collector returned dict, not Reading"
    assert poller.store.latest("n1", "t.value") is None  # nothing half-written


async def test_a_collector_returning_none_is_a_failure(make_poller: Callable[..., Poller]) -> None:
    async def collect(ctx: CollectContext, target: Target) -> Any:
        return None

    poller = make_poller(spec(collect, "n1"))
    assert await poller.poll_once() == 0
    assert poller.store.status("t.read", "n1", 0.05).failures == 1


async def test_a_long_error_message_is_shortened(make_poller: Callable[..., Poller]) -> None:
    async def collect(ctx: CollectContext, target: Target) -> list[Reading]:
        raise RuntimeError("x" * 1000)

    poller = make_poller(spec(collect, "n1"))
    await poller.poll_once()
    error = poller.store.status("t.read", "n1", 0.05).last_error
    assert error is not None and len(error) == 300 and error.endswith("...")


async def test_a_targets_function_that_raises_is_recorded_and_others_still_run(
    make_poller: Callable[..., Poller],
) -> None:
    def bad_targets(inventory: Inventory, config: Any) -> Sequence[Target]:
        raise RuntimeError("inventory section missing")

    async def never_called(ctx: CollectContext, target: Target) -> list[Reading]:
        raise AssertionError("a collector without targets must not run")

    async def collect(ctx: CollectContext, target: Target) -> list[Reading]:
        return [reading(target)]

    broken = CollectorSpec("t.broken", bad_targets, never_called, interval=0.05)
    poller = make_poller(broken, spec(collect, "n1", "n2", id="t.good"))
    st = poller.store.status("t.broken", "*", 0.05)
    assert st.last_error == "targets: inventory section missing"
    assert poller.store.pane_status(["t.broken"]).state == "failed"
    assert {j.spec.id for j in poller.jobs} == {"t.good"}
    assert await poller.poll_once() == 2
    assert poller.store.value("n2", "t.value") == 1.0


# --------------------------------------------------------------------------- per-target interval


async def test_a_target_interval_from_attrs_is_used(make_poller: Callable[..., Poller]) -> None:
    runs: Counter[str] = Counter()

    async def collect(ctx: CollectContext, target: Target) -> list[Reading]:
        runs[target.name] += 1
        return [reading(target)]

    poller = make_poller(
        spec(
            collect,
            "quick",
            "default",
            "ignored",
            interval=600.0,
            quick={"interval": 0.05},
            ignored={"interval": True},
        ),
    )
    by_name = {j.target.name: j for j in poller.jobs}
    assert by_name["quick"].interval == 0.05
    assert by_name["default"].interval == 600.0
    assert by_name["ignored"].interval == 600.0  # a bool is not a number of seconds
    assert poller.store.status("t.read", "quick", 0).interval == 0.05
    poller.start()
    await wait_until(lambda: runs["quick"] >= 4)
    # The others start within the first 2 s spread and then wait 600 s.
    assert runs["default"] <= 1
    assert runs["ignored"] <= 1


async def test_a_target_timeout_from_attrs_is_the_deadline(
    make_poller: Callable[..., Poller],
) -> None:
    async def slow(ctx: CollectContext, target: Target) -> list[Reading]:
        await asyncio.sleep(0.3)
        return [reading(target)]

    poller = make_poller(
        spec(slow, "patient", "hasty", timeout=0.1, patient={"timeout": 2.0}),
    )
    by_name = {j.target.name: j for j in poller.jobs}
    assert by_name["patient"].timeout == 2.0 and by_name["hasty"].timeout == 0.1
    assert await poller.run_job_once(by_name["patient"])
    assert not await poller.run_job_once(by_name["hasty"])
    assert poller.store.status("t.read", "hasty", 0).last_error == "timed out after 0.1s"


# --------------------------------------------------------------------------- start / stop


async def test_stop_cancels_every_loop_and_clears_running(
    make_poller: Callable[..., Poller],
) -> None:
    entered = asyncio.Event()
    never = asyncio.Event()

    async def collect(ctx: CollectContext, target: Target) -> list[Reading]:
        entered.set()
        await never.wait()
        return []

    poller = make_poller(spec(collect, "n1", timeout=30.0))
    poller.start()
    poller.start()  # a second start adds no loops
    assert len(poller._tasks) == 1
    await asyncio.wait_for(entered.wait(), 5)
    await poller.stop()
    assert poller._tasks == []
    assert not poller.store.status("t.read", "n1", 0.05).running
