"""The schedulers through Prometheus, end to end: the lab's Slurm exporter and
kube-state-metrics -> a real Prometheus -> ``slurm.prom`` / ``kubernetes.prom`` ->
the Store, against what ``slurm.cluster`` (SSH) and ``kubernetes.cluster`` (the API)
read from the same lab at the same moment.

Shares the session's lab and Prometheus (``prom_lab``); every test puts back what
it changed (a drained or cordoned node, a stopped exporter).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from console.inventory.model import Inventory
from console.plugin import Target
from console.poller import Poller
from console.store import Store
from plugins.kubernetes import watch
from plugins.kubernetes.lab import KubernetesLab
from plugins.slurm.lab import SlurmLab
from tests.integration.prom_support import PromLab
from tests.integration.support import action_runner, eventually, open_transports

SCHEDULERS = ("slurm", "kubernetes")
#: Worded differently by construction (checked field by field in ``_disagreements``).
REWORDED = {"slurm.workloads", "slurm.queue", "kubernetes.pending_reasons",
            "kubernetes.longest_waits"}  # fmt: skip
#: Direct-only bookkeeping of the API watches.
WATCH_ONLY = {"kubernetes.watch", "kubernetes.resyncs"}


def _collectors(env: PromLab) -> list[Any]:
    return [(p, c) for p in env.plugins if p.name in SCHEDULERS for c in p.collectors]


def _prom_inventory(env: PromLab) -> Inventory:
    return env.inventory(SCHEDULERS)


def _disagreements(
    prom: Store, direct: Store, compared: list[str] | None = None
) -> list[tuple[str, str, Any, Any]]:
    """Readings both sources have whose values differ beyond the scrape lag (the metrics
    compared are appended to ``compared``)."""
    wrong: list[tuple[str, str, Any, Any]] = []
    for (target, metric), r in prom._latest.items():
        d = direct.latest(target, metric)
        if r.source != "prometheus" or d is None:
            continue
        if r.value is None and d.value is not None:
            if not r.detail:  # what the exporter lacks is unknown, and says why
                wrong.append((target, metric, None, f"{d.value!r}, unknown without why"))
            continue
        same: bool
        if metric == "slurm.queue":
            keys = ("gpus_total", "gpus_alloc", "gpus_idle", "gpus_unavail", "jobs_running",
                    "jobs_pending", "nodes_out")  # fmt: skip
            p, q = json.loads(str(r.value)), json.loads(str(d.value))
            same = all(p[k] == q[k] for k in keys)
        elif metric == "kubernetes.pending_reasons":
            same = _count(r.value) == _count(d.value)
        elif metric == "kubernetes.longest_waits":
            same = _column(r.value, 1) == _column(d.value, 1)
        elif metric == "kubernetes.taints":
            same = sorted(str(r.value).split(", ")) == sorted(str(d.value).split(", "))
        elif metric == "kubernetes.longest_wait_s":
            same = abs(float(r.value) - float(d.value or 0)) < 5  # type: ignore[arg-type]
        elif metric == "kubernetes.reason" and str(d.value).startswith("NotReady"):
            same = str(r.value).startswith("NotReady")  # KSM has no condition message
        elif metric in REWORDED:
            continue
        else:
            same = r.value == d.value
        if not same:
            wrong.append((target, metric, r.value, d.value))
        elif compared is not None:
            compared.append(metric)
    return wrong


def _count(text: Any) -> int:
    return sum(int(line.split("\t")[0]) for line in str(text or "").splitlines())


def _column(text: Any, i: int) -> list[str]:
    return [line.split("\t")[i] for line in str(text or "").splitlines()]


async def test_scheduler_readings_through_prometheus_equal_what_ssh_and_the_api_read(
    prom_lab: PromLab,
):
    async with open_transports() as transports:
        store_p, store_d = Store(), Store()
        direct = Poller(store_d, prom_lab.direct_inventory(), transports, _collectors(prom_lab))
        via = Poller(store_p, _prom_inventory(prom_lab), transports, _collectors(prom_lab))
        assert {j.spec.id for j in via.jobs} == {"slurm.prom", "kubernetes.prom"}
        assert {j.spec.id for j in direct.jobs} == {"slurm.cluster", "kubernetes.cluster"}
        last: list[Any] = []
        compared: list[str] = []

        async def agree() -> bool:
            # Both read "now"; Prometheus lags by up to a scrape: read again until equal.
            assert await direct.poll_once() == 2 and await via.poll_once() == 2
            compared.clear()
            last[:] = _disagreements(store_p, store_d, compared)
            return not last

        try:
            await eventually(agree, "the two sources to agree", timeout=12, interval=0.5)
        except AssertionError:
            raise AssertionError(f"disagree: {last[:8]}") from None
        finally:
            await watch.stop_all()
    assert len(compared) > 250
    assert {"slurm.allocation", "slurm.gpus_used", "slurm.jobs", "slurm.jobs_pending",
            "kubernetes.allocation", "kubernetes.gpu_allocated", "kubernetes.gpus_idle",
            "kubernetes.pending", "kubernetes.workloads"} <= set(compared)  # fmt: skip
    prom_keys = {k for k, r in store_p._latest.items() if r.source == "prometheus"}
    direct_keys = {k for k in store_d._latest if k[1] not in WATCH_ONLY}
    assert direct_keys <= prom_keys, sorted(direct_keys - prom_keys)[:10]
    nodes = {t for t, m in prom_keys if m in ("slurm.allocation", "kubernetes.allocation")}
    assert {"gpu001", "gpu008", "cpu01", "inf02"} <= nodes
    for pane in (["slurm.cluster", "slurm.prom"], ["kubernetes.cluster", "kubernetes.prom"]):
        assert store_p.pane_status(pane).state == "ok"
    jobs = store_p.latest("gpu001", "slurm.jobs")
    assert jobs is not None and jobs.value == store_d.value("gpu001", "slurm.jobs")


async def test_a_refresh_costs_one_query_per_family_for_every_cluster(prom_lab: PromLab):
    from plugins.kubernetes.prom import PLAN as K8S
    from plugins.slurm.prom import PLAN as SLURM

    async with open_transports() as transports:
        via = Poller(Store(), _prom_inventory(prom_lab), transports, _collectors(prom_lab))
        await via.poll_once()  # the first refresh also backfills history (query_range)
        (client,) = transports.prometheus.all()
        before = client.stats.snapshot()
        await via.poll_once()
        after = client.stats.snapshot()
    assert (after[0] - before[0], after[1] - before[1]) == (
        len(K8S.expressions()) + len(SLURM.expressions()),
        0,
    )


async def test_stopped_exporters_fail_their_clusters_and_leave_nodes_unknown_with_age(
    prom_lab: PromLab,
):
    slurm, ksm = prom_lab.exporter("slurm"), prom_lab.exporter("kube-state-metrics")
    (slurm_host,), (ksm_host,) = slurm.instances, ksm.instances
    async with open_transports() as transports:
        store = Store()
        via = Poller(store, _prom_inventory(prom_lab), transports, _collectors(prom_lab))
        assert await via.poll_once() == 2
        client = transports.prometheus.all()[0]

        async def up(value: float) -> bool:
            got = await client.query('up{job=~"slurm|kube-state-metrics"}')
            return len(got.samples) == 2 and all(s.value == value for s in got.samples)

        await prom_lab.acall(lambda lab: (slurm.hidden.add(slurm_host), ksm.hidden.add(ksm_host)))
        try:
            await eventually(lambda: up(0.0), "Prometheus to mark both exporters down", 20)
            await via.poll_once()  # Prometheus answers; the clusters' series are gone
            # A console started now never saw these nodes: their age comes from Prometheus.
            async with open_transports() as fresh:
                late = Store()
                await Poller(
                    late, _prom_inventory(prom_lab), fresh, _collectors(prom_lab)
                ).poll_once()
        finally:
            await prom_lab.acall(
                lambda lab: (slurm.hidden.discard(slurm_host), ksm.hidden.discard(ksm_host))
            )
        await eventually(lambda: up(1.0), "both exporters back", 20)
    for collector, cluster in (("slurm.prom", "train"), ("kubernetes.prom", "k8s-demo")):
        status = store.status(collector, cluster, 15)
        assert status.last_error is not None and "no current series" in status.last_error
    assert store.pane_status(["slurm.cluster", "slurm.prom"]).state == "failed"
    for node, metric in (("gpu003", "slurm.allocation"), ("inf01", "kubernetes.allocation"),
                         ("slurm:train", "slurm.jobs_pending")):  # fmt: skip
        r = store.latest(node, metric)
        assert r is not None and r.value is None, (node, metric)
        assert "last sample" in r.detail and "ago" in r.detail
    for node, metric in (("gpu003", "slurm.allocation"), ("inf01", "kubernetes.allocation")):
        r = late.latest(node, metric)
        assert r is not None and r.value is None and "last sample" in r.detail, (node, r)


async def test_drain_and_cordon_go_to_slurm_and_the_api_when_reading_prometheus(
    prom_lab: PromLab, tmp_path: Path
) -> None:
    inv = _prom_inventory(prom_lab)
    slurm_lab = prom_lab.call(lambda lab: lab.emulations["slurm"])
    k8s_lab = prom_lab.call(lambda lab: lab.emulations["kubernetes"])
    assert isinstance(slurm_lab, SlurmLab) and isinstance(k8s_lab, KubernetesLab)
    specs = {a.id: a for p in prom_lab.plugins if p.name in SCHEDULERS for a in p.actions}
    gpu, inf = Target("node", "gpu003", node="gpu003"), Target("node", "inf02", node="inf02")
    async with open_transports() as transports:
        store = Store()
        via = Poller(store, inv, transports, _collectors(prom_lab))
        async with action_runner(inv, transports, tmp_path / "audit.db") as runner:
            try:
                for spec, target, values in (
                    (specs["slurm.drain"], gpu, {"reason": "swap PSU 2"}),
                    (specs["kubernetes.cordon"], inf, {"reason": "swap PSU 2"}),
                ):
                    (result,) = await runner.execute(
                        await runner.plan(spec, [target], values), None
                    )
                    assert result.outcome == "ok", result.detail
                assert prom_lab.call(lambda lab: slurm_lab.clusters["train"].nodes["gpu003"].drain)
                api_node = prom_lab.call(
                    lambda lab: k8s_lab.clusters["k8s-demo"].store.get("nodes", "inf02")
                )
                assert api_node is not None and api_node["spec"]["unschedulable"] is True

                async def seen() -> bool:
                    await via.poll_once()
                    return store.value("gpu003", "slurm.allocation") in ("drain", "drained") and (
                        store.value("inf02", "kubernetes.allocation") in ("cordoned", "drained")
                    )

                await eventually(seen, "Prometheus to show the drain and the cordon", 15, 0.5)
                # KSM exports the console's cordon annotations (allowlisted): who and why.
                assert str(store.value("inf02", "kubernetes.reason")).endswith("swap PSU 2")
                assert store.value("inf02", "kubernetes.reason_by") == "alice"
                reason = store.latest("gpu003", "slurm.reason")
                assert reason is not None and reason.value is None and reason.detail
            finally:
                for spec, target in ((specs["slurm.resume"], gpu),
                                     (specs["kubernetes.uncordon"], inf)):  # fmt: skip
                    await runner.execute(await runner.plan(spec, [target], {}), None)
    assert not prom_lab.call(lambda lab: slurm_lab.clusters["train"].nodes["gpu003"].drain)
