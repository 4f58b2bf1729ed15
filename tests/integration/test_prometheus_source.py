"""Prometheus as a source, end to end: the lab's exporters -> a real Prometheus -> the
console's fleet collectors -> the Store, compared with what the direct path reads.

One lab and one Prometheus for the whole session (``prom_lab``); the lab's clock
crawls (1/1000) so both sources see the same simulated moment.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.lab.prometheus_peer import PrometheusPeer
from console.plugin import Target
from console.poller import Poller
from console.store import Store
from console.transports import Transports
from console.transports.prometheus import PromClient, PromError, PromUnavailable
from plugins.gpu import prom as gpu_prom
from plugins.gpu.lab import GpuLab
from plugins.power.actions import ACTIONS as POWER_ACTIONS
from plugins.power.lab import PowerLab
from tests.integration.prom_support import PROM_PLUGINS, PromLab
from tests.integration.support import action_runner, ctx_for, eventually, open_transports

#: Store metrics a temperature or a noisy sensor: equal within this much.
TOLERANCE = {
    "gpu.util_pct": 2.0,
    "gpu.power_w": 8.0,
    "gpu.mem_pct": 1.0,
    "power.power_w": 20.0,
    "gpu.temp_c": 1.0,
    "power.inlet_c": 1.5,
    "power.exhaust_c": 1.5,
    "power.sensors": None,  # a JSON table with the temperatures in it: compared below
}
#: Readings the direct path computes from its own two reads in a row (throughputs,
#: rates): each source's first values differ by construction.
NOT_COMPARED = {"infiniband.xmit_gbps", "infiniband.rcv_gbps", "infiniband.counter_events"}
#: Not in ipmi_exporter's output (unknown from Prometheus, documented).
NOT_EXPORTED = {"power.identify", "power.sel"}


def _collectors(env: PromLab, names: tuple[str, ...] = PROM_PLUGINS) -> list[Any]:
    return [(p, c) for p in env.plugins if p.name in names for c in p.collectors]


def _client(env: PromLab, transports: Transports, url: str | None = None) -> PromClient:
    inv = env.inventory(url=url)
    assert inv.doc.prometheus is not None
    return transports.prometheus.get(inv.doc.prometheus, base_dir=inv.base_dir(), name="t")


# --------------------------------------------------------------------------- the client


async def test_an_instant_query_returns_every_lab_exporter_and_counts_its_bytes(prom_lab: PromLab):
    async with open_transports() as transports:
        client = _client(prom_lab, transports)
        result = await client.query("up")
    jobs = {s.labels["job"] for s in result.samples}
    assert {"dcgm", "ipmi", "node"} <= jobs
    assert result.result_type == "vector"
    assert all(s.value == 1.0 for s in result.samples if s.labels["job"] == "dcgm")
    assert result.bytes > 0
    assert client.stats.queries == 1 and client.stats.bytes == result.bytes


async def test_a_range_query_returns_a_matrix_with_one_point_per_step(prom_lab: PromLab):
    async with open_transports() as transports:
        client = _client(prom_lab, transports)

        async def four_seconds_of_history() -> Any:
            now = time.time()
            got = await client.query_range(
                "max(DCGM_FI_DEV_GPU_TEMP)", start=now - 4, end=now, step=1
            )
            return got if got.series and len(got.series[0].points) == 5 else None

        result = await eventually(four_seconds_of_history, "4 s of scraped history")
    (series,) = result.series
    steps = [b[0] - a[0] for a, b in zip(series.points, series.points[1:], strict=False)]
    assert all(abs(s - 1.0) < 1e-6 for s in steps)
    assert all(v is not None and 20 < v < 100 for _, v in series.points)
    assert client.stats.range_queries >= 1 and client.stats.errors == 0


async def test_a_bad_query_raises_with_prometheus_error_type_and_words(prom_lab: PromLab):
    async with open_transports() as transports:
        client = _client(prom_lab, transports)
        with pytest.raises(PromError) as err:
            await client.query("sum(")
    assert err.value.error_type == "bad_data"
    assert err.value.status == 400
    assert "parse error" in str(err.value)
    assert client.stats.errors == 1


# --------------------------------------------------------------------------- agreement


def _comparable(store_p: Store, store_d: Store) -> list[tuple[str, str, Any, Any]]:
    rows = []
    for (target, metric), reading in store_p._latest.items():
        direct = store_d.latest(target, metric)
        if direct is None or metric in NOT_COMPARED | NOT_EXPORTED:
            continue
        rows.append((target, metric, reading.value, direct.value))
    return rows


def _agrees(metric: str, prom: Any, direct: Any) -> bool:
    if metric == "power.sensors":
        # ipmi_exporter lists the temperature and power sensors too; Redfish gives those
        # as chassis readings (power.inlet_c ...), not as sensors.
        extra = {"Inlet Temp", "Exhaust Temp", "Pwr Consumption"}
        return _sensor_names(prom) <= _sensor_names(direct) | extra
    tol = TOLERANCE.get(metric)
    if tol is not None and isinstance(prom, int | float) and isinstance(direct, int | float):
        return abs(prom - direct) <= tol
    if isinstance(prom, float) and isinstance(direct, int | float):
        return math.isclose(prom, direct, rel_tol=1e-6, abs_tol=1e-6)
    return bool(prom == direct)


def _sensor_names(raw: Any) -> set[str]:
    import json

    return {row[0] for row in json.loads(raw)} if isinstance(raw, str) else set()


async def test_readings_from_prometheus_equal_what_the_direct_path_reads(prom_lab: PromLab):
    """Same Store keys, same values (temperatures within a degree: the scrape lag)."""
    # IB error rates need a previous total: each poller (session) keeps its own, so the two
    # paths start equal whatever earlier tests read on the same port names.
    async with open_transports() as transports:
        store_p, store_d = Store(), Store()
        direct = Poller(store_d, prom_lab.direct_inventory(), transports, _collectors(prom_lab))
        via_prom = Poller(store_p, prom_lab.inventory(), transports, _collectors(prom_lab))
        assert {j.spec.id for j in via_prom.jobs} >= {"gpu.prom", "power.prom", "infiniband.prom"}
        assert not {"gpu.fast", "power.bmc", "infiniband.ports"} & {
            j.spec.id for j in via_prom.jobs
        }
        assert await direct.poll_once() == len(direct.jobs)
        assert await via_prom.poll_once() == len(via_prom.jobs)
    rows = _comparable(store_p, store_d)
    plugins = {m.split(".")[0] for _, m, _, _ in rows}
    assert plugins == {"gpu", "power", "infiniband"}
    assert len(rows) > 1000
    wrong = [r for r in rows if not _agrees(r[1], r[2], r[3])]
    assert not wrong, sorted({(m, str(p)[:300], str(d)[:300]) for _, m, p, d in wrong})[:6]
    # Every GPU and every port the direct path sees, Prometheus shows too.
    direct_targets = {t for (t, m) in store_d._latest if m in ("gpu.util_pct", "infiniband.state")}
    prom_targets = {t for (t, m) in store_p._latest if m in ("gpu.util_pct", "infiniband.state")}
    assert direct_targets == prom_targets
    assert store_p.pane_status(["gpu.fast", "gpu.full", "gpu.prom"]).state == "ok"


async def test_a_refresh_sends_one_query_per_family_whatever_the_number_of_hosts(prom_lab: PromLab):
    inv = prom_lab.inventory(("gpu",))
    targets = list(gpu_prom.prom_targets(inv, inv.plugin_configs["gpu"]))
    assert len(targets) == 10
    async with open_transports() as transports:
        ctx = ctx_for(inv, transports, "gpu")
        few = await gpu_prom.collect_prom(ctx, targets[:2])  # the first round also backfills
        (client,) = transports.prometheus.all()
        counts = []
        for chosen in (targets[:1], targets[:2], targets):
            before = client.stats.snapshot()
            await gpu_prom.collect_prom(ctx, chosen)
            after = client.stats.snapshot()
            counts.append((after[0] - before[0], after[1] - before[1]))
    assert counts == [(len(gpu_prom.PLAN.expressions()), 0)] * 3
    assert {r.node for r in few.readings if r.node} == {"gpu001", "gpu002"}


# --------------------------------------------------------------------------- staleness


@pytest.fixture
def fallen_gpu(prom_lab: PromLab) -> Iterator[tuple[str, int]]:
    """gpu008's GPU 5 falls off the bus (its dcgm series end); put back afterwards."""
    node, index = "gpu008", 5
    prom_lab.call(lambda lab: lab.faults.inject("gpu.fell_off_bus", node, params={"gpu": index}))
    yield node, index

    def restore(lab: Any) -> None:
        for f in lab.faults.active():
            if f.name == "gpu.fell_off_bus" and f.target == node:
                lab.faults.clear(f.id)
        gpu_lab = lab.emulations["gpu"]
        assert isinstance(gpu_lab, GpuLab)
        gpu_lab.hosts[node].gpus[index].lost = False

    prom_lab.call(restore)


async def test_a_gpu_the_exporter_stops_reporting_is_unknown_with_its_age_not_zero(
    prom_lab: PromLab, fallen_gpu: tuple[str, int]
):
    node, index = fallen_gpu
    target = f"{node}/{index}"
    inv = prom_lab.inventory(("gpu",))
    async with open_transports() as transports:
        store = Store()
        poller = Poller(store, inv, transports, _collectors(prom_lab, ("gpu",)))
        client = _client(prom_lab, transports)
        query = f'count(DCGM_FI_DEV_GPU_UTIL{{Hostname="{node}"}})'

        async def gone() -> bool:
            got = await client.query(query)
            return bool(got.samples) and got.samples[0].value == 7

        await eventually(gone, "Prometheus to drop the fallen GPU's series", timeout=20)
        assert await poller.poll_once() == 1
    util = store.latest(target, "gpu.util_pct")
    assert util is not None and util.value is None
    assert "last sample" in util.detail and "ago" in util.detail
    assert util.ts < time.time() - 0.5  # dated at its last sample, not now
    assert store.value(target, "gpu.state") is None
    # Its neighbours are current; the node is not failing (7 of 8 GPUs report).
    assert store.value(f"{node}/{index - 1}", "gpu.state") == "ok"
    assert store.value(node, "gpu.count") == 7
    assert store.status("gpu.prom", node, 15).last_error is None


async def test_a_host_whose_exporter_stops_answering_is_failing_and_its_values_unknown(
    prom_lab: PromLab,
):
    node = "gpu007"
    dcgm = prom_lab.exporter("dcgm")
    inv = prom_lab.inventory(("gpu",))
    async with open_transports() as transports:
        store = Store()
        poller = Poller(store, inv, transports, _collectors(prom_lab, ("gpu",)))
        assert await poller.poll_once() == 1
        assert store.value(f"{node}/0", "gpu.util_pct") is not None
        client = _client(prom_lab, transports)
        await prom_lab.acall(lambda lab: dcgm.hidden.add(node))
        try:

            async def down() -> bool:
                got = await client.query(f'up{{job="dcgm",instance="{dcgm.instances[node]}"}}')
                return bool(got.samples) and got.samples[0].value == 0

            await eventually(down, "Prometheus to mark the exporter down", timeout=20)
            await poller.poll_once()
        finally:
            await prom_lab.acall(lambda lab: dcgm.hidden.discard(node))
    status = store.status("gpu.prom", node, 15)
    assert status.last_error is not None and "no current series" in status.last_error
    util = store.latest(f"{node}/0", "gpu.util_pct")
    assert util is not None and util.value is None and "last sample" in util.detail
    pane = store.pane_status(["gpu.fast", "gpu.full", "gpu.prom", "gpu.nvml"])
    assert pane.state == "ok" and pane.error == "1 of 10 failing"


# --------------------------------------------------------------------------- Prometheus down


async def test_prometheus_stopped_fails_the_panes_with_the_error_and_actions_go_direct(
    prom_lab: PromLab, tmp_path: Path
):
    own = PrometheusPeer(tmp_path / "prom", {})
    own.start(wait_targets=False)
    try:
        inv = prom_lab.inventory(("gpu", "power"), url=own.url)
        async with open_transports() as transports:
            store = Store()
            poller = Poller(store, inv, transports, _collectors(prom_lab, ("gpu", "power")))
            await poller.poll_once()
            assert all(
                "no current series" in (s.last_error or "") for s in store.collector_statuses()
            )
            own.stop()
            assert await poller.poll_once() == 0
            pane = store.pane_status(["power.bmc", "power.prom"])
            assert pane.state == "failed"
            assert pane.error is not None and own.url.split("//")[1] in pane.error
            with pytest.raises(PromUnavailable):
                await _client(prom_lab, transports, own.url).query("up")

            # An action does not depend on the source: identify goes to the BMC itself.
            spec = next(a for a in POWER_ACTIONS if a.id == "power.identify")
            async with action_runner(inv, transports, tmp_path / "audit.db") as runner:
                plan = await runner.plan(spec, [Target("node", "cpu02", node="cpu02")], {})
                (result,) = await runner.execute(plan, None)
            assert result.outcome == "ok", result.detail
    finally:
        own.stop()
    power_lab = prom_lab.call(lambda lab: lab.emulations["power"])
    assert isinstance(power_lab, PowerLab)
    assert prom_lab.call(lambda lab: power_lab.bmcs["cpu02"].identify) is True
    prom_lab.call(lambda lab: setattr(power_lab.bmcs["cpu02"], "identify", False))


# --------------------------------------------------------------------------- the demo


async def test_the_demo_behind_prometheus_reads_through_it_and_stops_it(tmp_path: Path):
    """``dcc --source prometheus``: the lab's exporters, a real Prometheus, the same panes."""
    from console.options import LaunchOptions
    from console.session import start_session

    options = LaunchOptions(
        audit_db=tmp_path / "audit" / "audit.db",
        scenario=None,
        lab_state_dir=tmp_path / "lab",
        poll=False,
        source="prometheus",
    )
    session = await start_session(options)
    try:
        assert session.poller is not None and session.closers
        configs = session.inventory.plugin_configs
        assert {n for n in PROM_PLUGINS if configs[n].source == "prometheus"} == set(PROM_PLUGINS)
        ids = {j.spec.id for j in session.poller.jobs}
        assert {"gpu.prom", "power.prom", "infiniband.prom"} <= ids and "gpu.fast" not in ids
        await session.poller.poll_once(lambda j: j.fleet)
        assert session.store.pane_status(["gpu.fast", "gpu.prom"]).state == "ok"
        assert session.store.value("gpu001/0", "gpu.state") == "ok"
        peer = session.closers[0].__self__  # type: ignore[attr-defined]
        assert isinstance(peer, PrometheusPeer) and peer.running
        assert peer.url.startswith("http://127.0.0.1:")
    finally:
        await session.stop()
    assert not peer.running  # stopped with the console
