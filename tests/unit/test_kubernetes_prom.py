"""kube-state-metrics' series -> the kubernetes plugin's readings (``plugins.kubernetes.prom``).

Expositions are written as kube-state-metrics v2 serves them (label order as it
writes them, a condition as three series, a phase as five, resources sanitised).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.inventory.load import apply_plugin_configs, inventory_from_data
from console.inventory.model import Inventory
from console.plugin import FleetResult
from console.sources.exposition import parse_exposition
from plugins.kubernetes import prom
from plugins.kubernetes.config import KubernetesConfig
from plugins.kubernetes.prom_state import NO_MESSAGE, resource_name
from tests.unit.prom_frames import frame_of, values

NOW = 1_800_000_000.0
KSM = "10.0.0.7:8080"


def _cond(node: str, current: dict[str, str]) -> str:
    return "".join(
        f'kube_node_status_condition{{node="{node}",condition="{c}",status="{s}"}} '
        f"{int(s == want)}\n"
        for c, want in current.items()
        for s in ("true", "false", "unknown")
    )


def _pod(ns: str, name: str, node: str, kind: str, phase: str, created: float) -> str:
    uid = f"uid-{name}"
    p = f'namespace="{ns}",pod="{name}",uid="{uid}"'
    out = (
        f'kube_pod_info{{{p},host_ip="10.0.0.1",pod_ip="10.42.0.9",node="{node}",'
        f'created_by_kind="{kind}",created_by_name="{name[:-2]}",priority_class="",'
        f'host_network="false"}} 1\n'
    )
    out += "".join(
        f'kube_pod_status_phase{{{p},phase="{ph}"}} {int(ph == phase)}\n'
        for ph in ("Pending", "Running", "Succeeded", "Failed", "Unknown")
    )
    return out + f"kube_pod_created{{{p}}} {created:.0f}\n"


def _req(ns: str, name: str, node: str, resource: str, n: int, init: bool = False) -> str:
    fam = (
        "kube_pod_init_container_resource_requests"
        if init
        else "kube_pod_container_resource_requests"
    )
    return (
        f'{fam}{{namespace="{ns}",pod="{name}",uid="uid-{name}",container="c",node="{node}",'
        f'resource="{resource}",unit="integer"}} {n}\n'
    )


CAP = 'resource="nvidia_com_gpu",unit="integer"'
MIG = 'resource="nvidia_com_mig_1g_10gb",unit="integer"'
READY = {
    "MemoryPressure": "false",
    "DiskPressure": "false",
    "PIDPressure": "false",
    "Ready": "true",
}
SCRAPE = (
    "# HELP kube_node_spec_unschedulable [STABLE] Whether a node can schedule new pods.\n"
    "# TYPE kube_node_spec_unschedulable gauge\n"
    'kube_node_spec_unschedulable{node="gpu01"} 0\n'
    'kube_node_spec_unschedulable{node="gpu02.k8s.example"} 1\n'
    'kube_node_spec_unschedulable{node="cpu01"} 0\n'
    "# TYPE kube_node_status_condition gauge\n"
    + _cond("gpu01", READY)
    + _cond("gpu02.k8s.example", READY)
    + _cond("cpu01", {**READY, "Ready": "false", "DiskPressure": "true"})
    + "# TYPE kube_node_spec_taint gauge\n"
    'kube_node_spec_taint{node="gpu02.k8s.example",key="node.kubernetes.io/unschedulable",'
    'value="",effect="NoSchedule"} 1\n'
    'kube_node_spec_taint{node="cpu01",key="node.kubernetes.io/not-ready",value="",'
    'effect="NoExecute"} 1\n'
    "# TYPE kube_node_status_capacity gauge\n"
    'kube_node_status_capacity{node="gpu01",resource="cpu",unit="core"} 128\n'
    f'kube_node_status_capacity{{node="gpu01",{CAP}}} 2\n'
    f'kube_node_status_capacity{{node="gpu01",{MIG}}} 7\n'
    f'kube_node_status_capacity{{node="gpu02.k8s.example",{CAP}}} 4\n'
    "# TYPE kube_node_status_allocatable gauge\n"
    f'kube_node_status_allocatable{{node="gpu01",{CAP}}} 2\n'
    f'kube_node_status_allocatable{{node="gpu01",{MIG}}} 7\n'
    f'kube_node_status_allocatable{{node="gpu02.k8s.example",{CAP}}} 3\n'
    "# TYPE kube_node_labels gauge\n"
    'kube_node_labels{node="gpu01",label_nvidia_com_gpu_product="NVIDIA-H100-80GB-HBM3",'
    'label_nvidia_com_mig_strategy="mixed"} 1\n'
    'kube_node_labels{node="gpu02.k8s.example"} 1\n'
    'kube_node_labels{node="cpu01"} 1\n'
    "# TYPE kube_node_annotations gauge\n"
    'kube_node_annotations{node="gpu01"} 1\n'
    'kube_node_annotations{node="gpu02.k8s.example",annotation_dcconsole_io_cordon_reason='
    '"PSU swap",annotation_dcconsole_io_cordoned_by="alice"} 1\n'
    'kube_node_annotations{node="cpu01"} 1\n'
    "# TYPE kube_pod_info gauge\n"
    + _pod("ml", "train-0", "gpu01", "ReplicaSet", "Running", NOW - 3600)
    + _pod("ml", "mig-nb-1", "gpu01", "ReplicaSet", "Running", NOW - 3600)
    + _pod("gpu-operator", "nvidia-driver-daemonset-x", "gpu01", "DaemonSet", "Running", NOW - 9e4)
    + _pod(
        "gpu-operator",
        "nvidia-device-plugin-daemonset-y",
        "cpu01",
        "DaemonSet",
        "Running",
        NOW - 9e4,
    )
    + _pod("kube-system", "kube-apiserver-cpu01", "cpu01", "Node", "Running", NOW - 9e4)
    + _pod("ml", "big-0", "", "ReplicaSet", "Pending", NOW - 600)
    + _pod("ml", "done-1", "gpu02.k8s.example", "Job", "Succeeded", NOW - 7200)
    + _req("ml", "train-0", "gpu01", "nvidia_com_gpu", 2)
    + _req("ml", "mig-nb-1", "gpu01", "nvidia_com_mig_1g_10gb", 1)
    + _req("ml", "big-0", "", "nvidia_com_gpu", 4)
    + _req("ml", "big-0", "", "nvidia_com_gpu", 8, init=True)
    + _req("ml", "train-0", "gpu01", "cpu", 4)
    + 'kube_pod_status_unschedulable{namespace="ml",pod="big-0",uid="uid-big-0"} 1\n'
    'kube_pod_container_status_waiting_reason{namespace="gpu-operator",'
    'pod="nvidia-device-plugin-daemonset-y",uid="uid-nvidia-device-plugin-daemonset-y",'
    'container="nvidia-device-plugin",reason="CrashLoopBackOff"} 1\n'
)


def inventory(clusters: tuple[str, ...] = ("k1",)) -> Inventory:
    data = {
        "site": {"name": "t"},
        "ssh": {"user": "ops"},
        "nodes": [
            {"nodes": "gpu[01-03]", "role": "gpu-infer", "clusters": {"kubernetes": "k1"}},
            {
                "nodes": "cpu01",
                "role": "cpu",
                "clusters": {"kubernetes": "k1"},
                "exporters": {"kube-state-metrics": KSM},
            },
            {
                "nodes": "edge01",
                "role": "cpu",
                "clusters": {"kubernetes": "k2"} if "k2" in clusters else {},
            },
        ],
        "clusters": {"kubernetes": {c: {"context": c} for c in clusters}},
        "prometheus": {"url": "http://prom:9090"},
        "plugins": {"kubernetes": {"source": "prometheus"}},
    }
    return apply_plugin_configs(inventory_from_data(data), {"kubernetes": KubernetesConfig})


def run(scrapes: dict[str, str], inv: Inventory | None = None, **kw: Any) -> FleetResult:
    inv = inv or inventory()
    frame = frame_of(
        prom.PLAN,
        {i: parse_exposition(t) for i, t in scrapes.items()},
        at=NOW,
        scraped=kw.pop("scraped", NOW - 2),
        **kw,
    )
    targets = prom.prom_targets(inv, inv.plugin_configs["kubernetes"])
    return prom.map_ksm(frame, inv, targets, stale_after=120, now=NOW)


def test_nodes_map_to_the_scheduler_states_the_watches_give():
    result = run({KSM: SCRAPE})
    assert result.errors == {}
    gpu01 = values(result.readings, "gpu01")
    assert gpu01["kubernetes.allocation"] == "ready" and gpu01["kubernetes.drained"] is False
    assert (gpu01["kubernetes.gpu_capacity"], gpu01["kubernetes.gpu_allocated"]) == (2, 2)
    assert gpu01["kubernetes.gpu_product"] == "NVIDIA-H100-80GB-HBM3"
    assert gpu01["kubernetes.mig"] == "mig-1g.10gb 1/7"
    assert gpu01["kubernetes.workloads"] == (
        "ml/train-0 (2 GPU); ml/mig-nb-1 (1 mig-1g.10gb); and 1 DaemonSet pods"
    )
    # The FQDN node is the inventory's gpu02; cordoned with the console's annotations.
    gpu02 = values(result.readings, "gpu02")
    assert gpu02["kubernetes.allocation"] == "drained" and gpu02["kubernetes.drained"] is True
    assert (gpu02["kubernetes.reason"], gpu02["kubernetes.reason_by"]) == ("PSU swap", "alice")
    assert gpu02["kubernetes.taints"] == "node.kubernetes.io/unschedulable:NoSchedule"
    assert gpu02["kubernetes.node_name"] == "gpu02.k8s.example"
    cpu01 = values(result.readings, "cpu01")
    assert cpu01["kubernetes.allocation"] == "not-ready"
    assert cpu01["kubernetes.reason"] == f"NotReady: {NO_MESSAGE}"
    assert cpu01["kubernetes.reason_since"] is None
    assert cpu01["kubernetes.conditions"] == "DiskPressure=True"
    assert "kube-system/kube-apiserver-cpu01" in cpu01["kubernetes.pod_list"]
    assert all(r.source == "prometheus" and r.ts == NOW - 2 for r in result.readings)


def test_the_cluster_queue_counts_gpus_pending_pods_and_operator_pods():
    cluster = values(run({KSM: SCRAPE}).readings, "k8s:k1")
    # gpu01: 2 of 2 in use; gpu02 cordoned: 4 unavailable. A finished pod holds nothing.
    assert (cluster["kubernetes.gpus_total"], cluster["kubernetes.gpus_allocated"]) == (6, 2)
    assert (cluster["kubernetes.gpus_unavailable"], cluster["kubernetes.gpus_idle"]) == (4, 0)
    assert cluster["kubernetes.nodes"] == 3 and cluster["kubernetes.nodes_not_ready"] == 1
    assert cluster["kubernetes.pending"] == 1
    # No events in KSM: the reason is the pod's PodScheduled reason; the init container's
    # request is the larger, so the pod waits for 8.
    assert cluster["kubernetes.pending_reasons"] == "1\tUnschedulable"
    assert cluster["kubernetes.longest_waits"] == "10m\tml/big-0\t8\tUnschedulable"
    assert cluster["kubernetes.longest_wait_s"] == 600
    assert cluster["kubernetes.operator_unhealthy"] == 1
    assert cluster["kubernetes.operator_pods"].startswith(
        "gpu-operator/nvidia-device-plugin-daemonset-y\tcpu01\tCrashLoopBackOff"
    )
    assert cluster["kubernetes.mig_summary"] == "mig-1g.10gb 1/7"


def test_without_the_annotations_allowlist_a_cordoned_node_says_why_it_cannot_tell():
    scrape = "".join(
        line + "\n" for line in SCRAPE.splitlines() if not line.startswith("kube_node_annotations")
    )
    reason = next(
        r
        for r in run({KSM: scrape}).readings
        if r.target == "gpu02" and r.metric == "kubernetes.reason"
    )
    assert reason.value == "cordoned" and "annotation" in reason.detail


def test_a_member_kube_state_metrics_does_not_list_is_unknown_with_age_never_zero():
    result = run({KSM: SCRAPE})
    assert not [r for r in result.readings if r.target == "gpu03"]
    (gone,) = [a for a in result.absent if a.target == "gpu03"]
    assert "kubernetes.allocation" in gone.metrics and gone.last_seen is None
    assert "not in kube-state-metrics" in gone.why


def test_kube_state_metrics_gone_or_stale_fails_the_cluster_and_dates_its_nodes():
    empty = run({})
    assert "k1" in empty.errors and not empty.readings
    assert {a.target for a in empty.absent} == {"k8s:k1", "gpu01", "gpu02", "gpu03", "cpu01"}
    stale = run({KSM: SCRAPE}, scraped=NOW - 900)
    assert "no current series from kube-state-metrics" in stale.errors["k1"]
    node = next(a for a in stale.absent if a.target == "gpu02")
    assert node.last_seen == NOW - 900  # the FQDN series dates the inventory node


def test_two_clusters_on_one_prometheus_do_not_mix():
    other = (
        'kube_node_spec_unschedulable{node="edge01"} 0\n'
        + _cond("edge01", READY)
        + _pod("ml", "edge-0", "edge01", "ReplicaSet", "Pending", NOW - 60)
    )
    inv = inventory(("k1", "k2"))
    result = run({KSM: SCRAPE, "10.9.9.9:8080": other}, inv)
    assert result.errors == {}
    assert values(result.readings, "k8s:k2")["kubernetes.nodes"] == 1
    assert values(result.readings, "k8s:k1")["kubernetes.nodes"] == 3
    assert values(result.readings, "k8s:k2")["kubernetes.pending"] == 1
    assert values(result.readings, "k8s:k1")["kubernetes.pending"] == 1


def test_sanitised_resource_names_turn_back_into_gpu_resources():
    assert resource_name("nvidia_com_gpu") == "nvidia.com/gpu"
    assert resource_name("nvidia_com_mig_3g_40gb") == "nvidia.com/mig-3g.40gb"
    assert resource_name("nvidia_com_mig_1g_10gb_me") == "nvidia.com/mig-1g.10gb+me"
    assert resource_name("cpu") is None


def test_a_refresh_is_one_query_per_family_each_aggregated_on_the_server():
    exprs = prom.PLAN.expressions()
    assert len(exprs) == 16
    raw = {"kube_node_labels", "kube_node_annotations"}  # allowlisted labels vary: kept whole
    assert all("by (" in e or k in raw or e.startswith("timestamp(") for k, e in exprs.items())


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    nodes=st.dictionaries(
        st.sampled_from(["gpu01", "gpu02", "cpu01", "ghost", "gpu01.fq.dn"]),
        st.tuples(
            st.sampled_from(["true", "false", "unknown", "odd"]),
            st.one_of(st.none(), st.integers(-2, 8), st.just("NaN")),
            st.booleans(),
        ),
        max_size=5,
    ),
    pods=st.lists(
        st.tuples(
            st.sampled_from(["gpu01", "", "ghost"]),
            st.sampled_from(["Pending", "Running", "Succeeded", "Weird"]),
            st.one_of(st.integers(-1, 8), st.just("+Inf")),
        ),
        max_size=6,
    ),
)
def test_any_scrape_maps_without_raising_and_counts_are_never_negative(nodes, pods):
    lines = []
    for name, (ready, gpus, cordoned) in nodes.items():
        lines.append(f'kube_node_spec_unschedulable{{node="{name}"}} {int(cordoned)}')
        lines.append(
            f'kube_node_status_condition{{node="{name}",condition="Ready",status="{ready}"}} 1'
        )
        if gpus is not None:
            lines.append(
                f'kube_node_status_capacity{{node="{name}",resource="nvidia_com_gpu",'
                f'unit="integer"}} {gpus}'
            )
    for i, (node, phase, gpus) in enumerate(pods):
        lines.append(_pod("ns", f"p-{i}", node, "ReplicaSet", phase, NOW - 5).rstrip())
        lines.append(
            _req("ns", f"p-{i}", node, "nvidia_com_gpu", 0).replace(" 0", f" {gpus}").rstrip()
        )
    result = run({KSM: "\n".join(lines) + "\n"})
    for r in result.readings:
        if r.metric.startswith("kubernetes.gpus_") or r.metric in ("kubernetes.pending",):
            assert r.value is None or (isinstance(r.value, int) and r.value >= 0), r
    listed = {r.target for r in result.readings}
    assert "gpu03" not in listed


def test_the_node_card_of_a_node_gone_from_prometheus_says_unknown_and_why():
    from console.plugin import Reading
    from console.store import Store
    from plugins.kubernetes.card import card

    store = Store()
    why = "no series in Prometheus (last sample 42s ago)"
    store.put([Reading("gpu01", "kubernetes.allocation", None, detail=why)])
    (line,) = card(store, inventory().nodes["gpu01"])
    assert line.text == f"? unknown ({why})"
