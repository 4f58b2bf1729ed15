"""The Slurm exporter's series -> the slurm plugin's readings (pure; ``plugins.slurm.prom``).

Expositions are written as prometheus-slurm-exporter (vpenso, 0.24) serves them:
Go client order (families and labels sorted), ``status`` as Slurm 23.02+'s state
words joined by ``+``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.inventory.load import apply_plugin_configs, inventory_from_data
from console.inventory.model import Inventory
from console.plugin import FleetResult
from console.sources.exposition import parse_exposition
from console.sources.fleet import Frame
from console.transports.prometheus import parse_envelope, parse_range
from plugins.slurm import prom
from plugins.slurm.config import SlurmConfig
from plugins.slurm.status import queue_status
from tests.unit.prom_frames import frame_of, values

NOW = 1_800_000_000.0
INSTANCE = "10.0.0.5:9341"
SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples" / "prometheus"

SCRAPE = """\
# HELP slurm_node_cpu_total Total CPUs per node
# TYPE slurm_node_cpu_total gauge
slurm_node_cpu_total{node="cpu01",partition="cpu,batch",status="idle"} 64
slurm_node_cpu_total{node="gpu01",partition="gpu",status="mixed"} 128
slurm_node_cpu_total{node="gpu02",partition="gpu",status="idle+drain"} 128
slurm_node_cpu_total{node="gpu03",partition="gpu",status="down+drain+not_responding"} 128
slurm_node_cpu_total{node="gpu04",partition="gpu",status="mixed+drain+reboot_requested"} 128
# HELP slurm_node_gpu_alloc Allocated GPUs per node
# TYPE slurm_node_gpu_alloc gauge
slurm_node_gpu_alloc{gpu_type="a100",node="gpu01",status="mixed"} 1
slurm_node_gpu_alloc{gpu_type="h100",node="gpu01",status="mixed"} 5
slurm_node_gpu_alloc{gpu_type="h100",node="gpu02",status="idle+drain"} 0
slurm_node_gpu_alloc{gpu_type="h100",node="gpu03",status="down+drain+not_responding"} 0
slurm_node_gpu_alloc{gpu_type="h100",node="gpu04",status="mixed+drain+reboot_requested"} 2
# HELP slurm_node_gpu_total Total GPUs per node
# TYPE slurm_node_gpu_total gauge
slurm_node_gpu_total{gpu_type="a100",node="gpu01",status="mixed"} 2
slurm_node_gpu_total{gpu_type="h100",node="gpu01",status="mixed"} 6
slurm_node_gpu_total{gpu_type="h100",node="gpu02",status="idle+drain"} 8
slurm_node_gpu_total{gpu_type="h100",node="gpu03",status="down+drain+not_responding"} 8
slurm_node_gpu_total{gpu_type="h100",node="gpu04",status="mixed+drain+reboot_requested"} 8
# HELP slurm_queue_completing Completing jobs in the cluster
# TYPE slurm_queue_completing gauge
slurm_queue_completing 1
# HELP slurm_queue_pending Pending jobs in queue
# TYPE slurm_queue_pending gauge
slurm_queue_pending 12
# HELP slurm_queue_pending_dependency Pending jobs because of dependency in queue
# TYPE slurm_queue_pending_dependency gauge
slurm_queue_pending_dependency 3
# HELP slurm_queue_running Running jobs in the cluster
# TYPE slurm_queue_running gauge
slurm_queue_running 4
# HELP slurm_user_jobs_running_host Running jobs for user on host
# TYPE slurm_user_jobs_running_host gauge
slurm_user_jobs_running_host{host="gpu01",user="alice"} 2
slurm_user_jobs_running_host{host="gpu01",user="bob"} 1
slurm_user_jobs_running_host{host="gpu04",user="bob"} 1
"""


def inventory(clusters: dict[str, Any] | None = None, **section: Any) -> Inventory:
    clusters = clusters or {"train": {"controller": "cpu01"}}
    hpc = {"slurm": "hpc"} if "hpc" in clusters else {}
    data = {
        "site": {"name": "t"},
        "ssh": {"user": "ops"},
        "nodes": [
            {
                "nodes": "gpu[01-05]",
                "role": "gpu-train",
                "hardware": {"gpu_count": 8},
                "clusters": {"slurm": "train"},
            },
            {"nodes": "cpu01", "role": "cpu", "clusters": {"slurm": "train"}},
            {"nodes": "hpc[01-02]", "role": "gpu-train", "clusters": hpc},
            {"nodes": "ctl02", "role": "cpu", "exporters": {"slurm": "10.0.0.9:9341"}},
        ],
        "clusters": {"slurm": clusters},
        "prometheus": {"url": "http://prom:9090"},
        "plugins": {"slurm": {"source": "prometheus", **section}},
    }
    return apply_plugin_configs(inventory_from_data(data), {"slurm": SlurmConfig})


def run(
    scrapes: dict[str, str], inv: Inventory | None = None, *, scraped: float = NOW - 3, **kw: Any
) -> FleetResult:
    inv = inv or inventory()
    frame = frame_of(
        prom.PLAN,
        {i: parse_exposition(t) for i, t in scrapes.items()},
        at=NOW,
        scraped=scraped,
        **kw,
    )
    targets = prom.prom_targets(inv, inv.plugin_configs["slurm"])
    return prom.map_slurm(frame, inv, targets, stale_after=120, now=NOW)


def test_a_scrape_maps_to_the_readings_sinfo_and_squeue_give():
    result = run({INSTANCE: SCRAPE})
    assert result.errors == {}
    mixed = values(result.readings, "gpu01")
    assert mixed["slurm.allocation"] == "mixed" and mixed["slurm.state"] == "mixed"
    assert (mixed["slurm.gpus_total"], mixed["slurm.gpus_used"]) == (8, 6)  # two GPU types
    assert mixed["slurm.jobs"] == 3 and mixed["slurm.drained"] is False
    assert mixed["slurm.workloads"] == "alice: 2 jobs; bob: 1 job"
    assert (mixed["slurm.reason"], mixed["slurm.next_state"], mixed["slurm.reboot"]) == ("", "", "")
    assert mixed["slurm.partitions"] == "gpu" and mixed["slurm.cluster"] == "train"
    drained = values(result.readings, "gpu02")
    assert drained["slurm.allocation"] == "drained" and drained["slurm.state"] == "idle+DRAIN"
    assert drained["slurm.drained"] is True and drained["slurm.jobs"] == 0
    assert drained["slurm.workloads"] == ""
    down = values(result.readings, "gpu03")
    assert down["slurm.allocation"] == "down" and down["slurm.drained"] is True
    assert down["slurm.reboot"] is None  # "reboot timed out" is in the reason: not exported
    rebooting = values(result.readings, "gpu04")
    assert rebooting["slurm.allocation"] == "drain" and rebooting["slurm.reboot"] == "requested"
    assert rebooting["slurm.next_state"] is None
    assert values(result.readings, "cpu01")["slurm.gpus_total"] == 0  # no GPU GRES
    assert values(result.readings, "cpu01")["slurm.partitions"] == "cpu,batch"


def test_what_the_exporter_lacks_is_unknown_with_why_never_guessed():
    result = run({INSTANCE: SCRAPE})
    by = {(r.target, r.metric): r for r in result.readings}
    reason = by[("gpu02", "slurm.reason")]
    assert reason.value is None and "drain reasons" in reason.detail
    assert by[("gpu02", "slurm.reason_by")].value is None
    assert by[("slurm:train", "slurm.gpus_pending")].value is None
    jobs = by[("slurm:train", "slurm.live_jobs")]
    assert jobs.value is None and "job ids" in jobs.detail
    assert all(r.source == "prometheus" for r in result.readings)


def test_the_queue_summary_counts_completing_as_running_and_splits_dependency():
    result = run({INSTANCE: SCRAPE})
    cluster = values(result.readings, "slurm:train")
    assert cluster["slurm.jobs_running"] == 5 and cluster["slurm.jobs_pending"] == 12
    assert cluster["slurm.gpus_total"] == 32 and cluster["slurm.gpus_alloc"] == 8
    # Out of service: gpu02 8 + gpu03 8 + gpu04 (8 - 2 in use) = 22.
    assert cluster["slurm.gpus_unavail"] == 22 and cluster["slurm.gpus_idle"] == 2
    assert cluster["slurm.nodes_out"] == 3
    summary = json.loads(cluster["slurm.queue"])
    assert summary["pending_by_reason"] == {"Dependency": 3, "other reasons": 9}
    assert summary["waits"] == [] and summary["gpus_pending"] is None
    assert {"name": "gpu", "state": None, "nodes": 4, "gpus": 32} in summary["partitions"]


def test_the_pane_reads_the_queue_from_this_source_as_from_the_direct_one():
    from console.store import Store

    store = Store()
    store.put(run({INSTANCE: SCRAPE}).readings)
    q = queue_status(store, "train")
    assert (q.gpus_total, q.jobs_pending, q.via) == (32, 12, "prometheus")
    assert q.ts == NOW - 3  # dated at the scrape, not at the query


def test_a_node_missing_from_fresh_series_is_unknown_with_its_age_never_zero():
    result = run({INSTANCE: SCRAPE})
    assert not [r for r in result.readings if r.target == "gpu05"]
    (gone,) = [a for a in result.absent if a.target == "gpu05"]
    assert "slurm.gpus_total" in gone.metrics and gone.why.startswith("not in the Slurm exporter")
    # A node whose last sample is older than stale_after is absent, dated at that sample.
    old = run({INSTANCE: SCRAPE}, scraped=NOW - 600)
    assert old.errors == {
        "train": "no current series from the Slurm exporter for cluster train in Prometheus"
    }
    (node,) = [a for a in old.absent if a.target == "gpu01"]
    assert node.last_seen == NOW - 600


def test_queue_zeros_an_exporter_serves_when_sinfo_fails_are_not_believed():
    zeros = "".join(
        f"# TYPE slurm_queue_{q} gauge\nslurm_queue_{q} 0\n"
        for q in ("pending", "running", "completing", "pending_dependency")
    )
    result = run({INSTANCE: zeros})
    assert "train" in result.errors
    assert not [r for r in result.readings if r.value == 0]
    cluster = next(a for a in result.absent if a.target == "slurm:train")
    assert "slurm.jobs_pending" in cluster.metrics and cluster.node == "cpu01"


def test_without_the_users_collector_jobs_are_unknown_not_zero():
    scrape = SCRAPE.split("# HELP slurm_user_jobs_running_host")[0]
    result = run({INSTANCE: scrape})
    mixed, drained, down = (values(result.readings, n) for n in ("gpu01", "gpu02", "gpu03"))
    assert mixed["slurm.jobs"] is None and mixed["slurm.workloads"] is None
    assert drained["slurm.drained"] is True  # idle+DRAIN: Slurm itself says nothing runs
    assert down["slurm.drained"] is None  # a GPU reset must not rely on a guess
    idle = scrape.replace("slurm_queue_running 4", "slurm_queue_running 0").replace(
        "slurm_queue_completing 1", "slurm_queue_completing 0"
    )
    assert values(run({INSTANCE: idle}).readings, "gpu01")["slurm.jobs"] == 0


def test_older_exporters_long_text_states_and_missing_partition_label_are_understood():
    scrape = (
        "# TYPE slurm_node_cpu_total gauge\n"
        'slurm_node_cpu_total{node="gpu01",status="drained"} 128\n'
        'slurm_node_cpu_total{node="gpu02",status="down*"} 128\n'
        'slurm_node_cpu_total{node="gpu03",status="idle~"} 128\n'
    )
    result = run({INSTANCE: scrape})
    states = {n: values(result.readings, n)["slurm.state"] for n in ("gpu01", "gpu02", "gpu03")}
    assert states == {
        "gpu01": "idle+DRAIN",
        "gpu02": "down+NOT_RESPONDING",
        "gpu03": "idle+POWERED_DOWN",
    }
    parts = next(r for r in result.readings if r.metric == "slurm.partitions")
    assert parts.value is None and "partition label" in parts.detail


def test_series_of_two_clusters_do_not_mix_and_node_lists_are_expanded():
    inv = inventory(
        {"train": {"controller": "cpu01"}, "hpc": {"controller": "ctl02"}},
    )
    hpc = (
        "# TYPE slurm_node_cpu_total gauge\n"
        'slurm_node_cpu_total{node="hpc01",partition="p",status="allocated"} 64\n'
        'slurm_node_cpu_total{node="hpc02",partition="p",status="allocated"} 64\n'
        "# TYPE slurm_queue_running gauge\nslurm_queue_running 1\n"
        "# TYPE slurm_user_jobs_running_host gauge\n"
        'slurm_user_jobs_running_host{host="hpc[01-02]",user="dana"} 1\n'
    )
    # hpc's exporter is the instance its controller declares; train's is known by its nodes.
    result = run({INSTANCE: SCRAPE, "10.0.0.9:9341": hpc}, inv)
    assert result.errors == {}
    assert values(result.readings, "slurm:hpc")["slurm.jobs_running"] == 1
    assert values(result.readings, "slurm:train")["slurm.jobs_running"] == 5
    assert values(result.readings, "hpc02")["slurm.workloads"] == "dana: 1 job"
    assert values(result.readings, "hpc01")["slurm.cluster"] == "hpc"


def test_a_cluster_label_names_the_cluster_even_on_an_unknown_instance():
    result = run({"elsewhere:1": SCRAPE}, extra={"cluster": "train"})
    assert result.errors == {} and values(result.readings, "gpu01")["slurm.jobs"] == 3


def test_backfill_of_a_real_slurm_web_range_answer_is_oldest_first_on_the_cluster():
    path = SAMPLES / "slurmweb-query-range-matrix-gpus.json"
    if not path.exists():
        pytest.skip("../shared/samples is not here")
    data, _ = parse_envelope(path.read_bytes(), 200, "sample")
    allocated = [s for s in parse_range(data) if s.labels.get("state") == "allocated"]
    frame = Frame({}, NOW, history={"slurm.gpus_alloc": [(s.labels, s.points) for s in allocated]})
    inv = inventory()
    result = prom.map_slurm(
        frame, inv, prom.prom_targets(inv, inv.plugin_configs["slurm"]), stale_after=120, now=NOW
    )
    points = [r for r in result.readings if r.metric == "slurm.gpus_alloc"]
    assert len(points) == len(allocated[0].points) > 100
    assert {r.target for r in points} == {"slurm:train"}
    assert [r.ts for r in points] == sorted(r.ts for r in points)


def test_one_refresh_is_one_query_per_family_whatever_the_cluster_size():
    assert len(prom.PLAN.expressions()) == 8
    assert all("by (" in e or e.startswith("timestamp(") for e in prom.PLAN.expressions().values())


STATUS_WORDS = st.sampled_from(
    [
        "idle",
        "mixed",
        "allocated",
        "down",
        "drain",
        "not_responding",
        "reboot_requested",
        "completing",
        "drained",
        "down*",
        "idle~",
        "",
        "weird",
        "+",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    nodes=st.dictionaries(
        st.sampled_from(["gpu01", "gpu02", "gpu03", "cpu01", "ghost9", "gpu[01-02]"]),
        st.tuples(
            st.lists(STATUS_WORDS, min_size=0, max_size=3).map("+".join),
            st.one_of(st.none(), st.integers(0, 16)),
            st.one_of(st.none(), st.integers(-1, 16), st.just("NaN")),
        ),
        max_size=6,
    ),
    running=st.one_of(st.none(), st.integers(0, 50)),
)
def test_any_scrape_maps_without_raising_and_unknowns_stay_none(nodes, running):
    lines = ["# TYPE slurm_node_cpu_total gauge"]
    for name, (status, total, alloc) in nodes.items():
        lines.append(f'slurm_node_cpu_total{{node="{name}",status="{status}"}} 8')
        if total is not None:
            lines.append(f'slurm_node_gpu_total{{gpu_type="x",node="{name}"}} {total}')
        if alloc is not None:
            lines.append(f'slurm_node_gpu_alloc{{gpu_type="x",node="{name}"}} {alloc}')
        lines.append(f'slurm_user_jobs_running_host{{host="{name}",user="u"}} 1')
    if running is not None:
        lines.append(f"slurm_queue_running {running}")
    result = run({INSTANCE: "\n".join(lines) + "\n"})
    listed = {r.target for r in result.readings}
    for a in result.absent:
        assert a.target not in listed or a.target.startswith("slurm:")
    for r in result.readings:
        if r.metric in ("slurm.gpus_total", "slurm.jobs", "slurm.jobs_running"):
            assert r.value is None or (isinstance(r.value, int) and r.value >= 0), r
    assert "gpu04" not in listed and "gpu05" not in listed  # never listed: never a value


def test_the_node_card_of_a_node_gone_from_prometheus_says_unknown_and_why():
    from console.plugin import Reading
    from console.store import Store
    from plugins.slurm.card import card

    store = Store()
    why = "no series in Prometheus (last sample 42s ago)"
    store.put([Reading("gpu01", "slurm.allocation", None, detail=why)])
    lines = card(store, inventory().nodes["gpu01"])
    assert lines[0].text == f"? unknown ({why})"
    assert [ln.text for ln in lines if ln.label == "jobs"] == ["unknown"]
