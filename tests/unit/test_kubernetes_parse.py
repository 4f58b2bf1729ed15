"""The Kubernetes parsers and state derivations, on the real samples and on arbitrary input."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.plugin import ParseError
from plugins.kubernetes.api_status import parse_status
from plugins.kubernetes.collect import cluster_readings
from plugins.kubernetes.parse import ANN_AT, ANN_BY, ANN_REASON, GPU, parse_time
from plugins.kubernetes.parse_events import parse_event, scheduling_reasons, short_reason
from plugins.kubernetes.parse_nodes import parse_labels_fragment, parse_node, parse_node_list
from plugins.kubernetes.parse_pods import (
    PodInfo,
    parse_pdb_list,
    parse_pod,
    parse_pod_list,
    pod_gpu_requests,
)
from plugins.kubernetes.state import ClusterState, gpu_totals, node_view, pending_pods

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples" / "kubernetes"


def sample(name: str) -> str:
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"sample {name} not available")
    return path.read_text()


# --------------------------------------------------------------------------- real samples


def test_real_gpu_node_list_gives_gpus_product_and_conditions():
    nodes, rv = parse_node_list(sample("edgexr-nodelist-gpu-a16-vgpu.json"))
    assert rv is None  # kubectl writes "" for a List: unknown, not "0"
    (node,) = nodes
    assert node.name == "nori"
    assert node.gpu_capacity == 1 and node.gpu_allocatable == 1
    assert node.gpu_product == "NVIDIA-A16-4Q"
    assert node.ready is True and not node.unschedulable
    # EtcdIsVoter=True is good news; the pressures are False: nothing is bad.
    assert node.bad_conditions == ()
    assert node.mig_capacity == {}
    assert node.kubelet == "v1.31.6+rke2r1"


def test_real_pending_pod_gives_its_scheduler_reason():
    pods, _ = parse_pod_list(sample("qovery-podlist-pending-unschedulable.json"))
    (pod,) = pods
    assert pod.phase == "Pending" and pod.node is None
    assert pod.unschedulable_reason == "Unschedulable"
    assert pod.unschedulable_message == "0/5 nodes are available: 5 Insufficient memory."
    assert short_reason(pod.unschedulable_message) == "Insufficient memory"
    assert pod.owner_kind == "StatefulSet" and pod.gpus == {}
    assert pod.resource_version == "53444298"  # an int in this sample: kept as text
    assert pod.empty_dir and pod.status_text == "Pending"


def test_real_pdb_list_gives_budgets_and_selectors():
    pdbs = parse_pdb_list(sample("qovery-pdb-list.json"))
    assert len(pdbs) == 4
    first = pdbs[0]
    assert first.key == "kube-system/cilium-operator"
    assert first.max_unavailable == 1 and first.min_available is None
    assert first.disruptions_allowed == 1 and first.current_healthy == 1
    assert first.selector == {"io.cilium/app": "operator", "name": "cilium-operator"}
    pod = PodInfo(
        "kube-system", "op-1", labels={"io.cilium/app": "operator", "name": "cilium-operator"}
    )
    assert first.matches(pod)
    assert not first.matches(PodInfo("default", "op-1", labels=dict(pod.labels)))


def test_real_eviction_429_names_the_blocking_pdb():
    status = parse_status(sample("eviction-429-pdb-status.json"))
    assert status.code == 429 and status.reason == "TooManyRequests"
    assert status.pdb_block("shop") == (
        "blocked by PDB shop/my-super-app-pdb (needs 6 healthy pods and has 6 currently)"
    )
    assert parse_status(json.dumps({"kind": "Status", "code": 404})).pdb_block("x") is None


@pytest.mark.parametrize(
    ("name", "product", "count", "config"),
    [
        (
            "gpu-operator-docs-mig-labels-1g10gb.txt",
            "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb",
            7,
            "all-1g.10gb",
        ),
        (
            "gpu-operator-docs-mig-labels-3g40gb.txt",
            "NVIDIA-H100-80GB-HBM3-MIG-3g.40gb",
            2,
            "all-3g.40gb",
        ),
    ],
)
def test_real_mig_labels_give_product_strategy_and_config(name, product, count, config):
    labels = parse_labels_fragment(sample(name))
    node = parse_node(
        {
            "kind": "Node",
            "metadata": {"name": "h100", "labels": labels},
            "status": {"capacity": {GPU: str(count)}},
        }
    )
    assert node.gpu_product == product and node.gpu_count_label == count
    assert node.mig_strategy == "single" and node.mig_config == config
    assert node.mig_config_state == "success" and node.gpu_capacity == count


# --------------------------------------------------------------------------- details


def test_mig_resources_are_read_per_profile_and_unknown_counts_are_none():
    node = parse_node(
        {
            "metadata": {"name": "n"},
            "status": {
                "capacity": {GPU: "2", "nvidia.com/mig-1g.10gb": "14", "cpu": "128"},
                "allocatable": {GPU: "oops", "nvidia.com/mig-1g.10gb": "14"},
            },
        }
    )
    assert node.gpu_capacity == 2 and node.gpu_allocatable is None
    assert node.mig_capacity == {"nvidia.com/mig-1g.10gb": 14}
    assert parse_node({"metadata": {"name": "cpu"}}).gpu_capacity is None


def test_pod_gpu_request_is_the_sum_of_containers_or_the_largest_init_container():
    spec = {
        "containers": [
            {"resources": {"limits": {GPU: "2"}}},
            {"resources": {"requests": {GPU: "1"}, "limits": {GPU: "1"}}},
        ],
        "initContainers": [{"resources": {"limits": {GPU: "4"}}}],
    }
    assert pod_gpu_requests(spec) == {GPU: 4}
    spec["initContainers"] = [{"resources": {"limits": {GPU: "1"}}}]
    assert pod_gpu_requests(spec) == {GPU: 3}


def test_scheduler_messages_split_into_counted_reasons():
    msg = (
        "0/6 nodes are available: 1 node(s) had untolerated taint "
        "{node-role.kubernetes.io/control-plane: }, 2 node(s) were unschedulable, "
        "3 Insufficient nvidia.com/gpu. preemption: 0/6 nodes are available: 6 "
        "Preemption is not helpful for scheduling."
    )
    assert scheduling_reasons(msg) == [
        (1, "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"),
        (2, "node(s) were unschedulable"),
        (3, "Insufficient nvidia.com/gpu"),
    ]
    assert short_reason(msg) == "Insufficient nvidia.com/gpu"
    assert short_reason("0/2 nodes are available: 2 node(s) were unschedulable.") == (
        "node(s) were unschedulable"
    )
    assert short_reason(None) is None


def test_times_parse_with_fractions_and_offsets_and_odd_ones_are_unknown():
    assert parse_time("2025-03-19T20:41:16Z") == 1742416876.0
    assert parse_time("2025-03-19T21:41:16.5+01:00") == 1742416876.5
    assert parse_time("yesterday") is None and parse_time(None) is None


def _node(
    name: str,
    *,
    ready: str = "True",
    unschedulable: bool = False,
    gpus: int | None = 8,
    annotations: dict[str, str] | None = None,
) -> dict:
    status: dict = {
        "conditions": [
            {
                "type": "Ready",
                "status": ready,
                "reason": "KubeletReady",
                "message": "kubelet stopped",
                "lastTransitionTime": "2025-03-19T20:41:16Z",
            }
        ]
    }
    if gpus is not None:
        status["capacity"] = status["allocatable"] = {GPU: str(gpus)}
    return {
        "kind": "Node",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"unschedulable": unschedulable},
        "status": status,
    }


def _pod(
    name: str,
    node: str | None,
    gpus: int = 0,
    owner: str | None = "ReplicaSet",
    phase: str = "Running",
    created: str = "2025-03-19T20:00:00Z",
) -> dict:
    meta: dict = {"name": name, "namespace": "ml", "uid": f"u-{name}", "creationTimestamp": created}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "x", "controller": True}]
    spec: dict = {"containers": [{"name": "c", "resources": {"limits": {GPU: str(gpus)}}}]}
    if node:
        spec["nodeName"] = node
    return {"kind": "Pod", "metadata": meta, "spec": spec, "status": {"phase": phase}}


def test_node_view_follows_the_workloads_conventions():
    pods = [parse_pod(_pod("train", "g1", 6)), parse_pod(_pod("ds", "g1", 0, "DaemonSet"))]
    view = node_view(parse_node(_node("g1")), pods)
    assert (view.allocation, view.drained, view.gpu_allocated) == ("ready", False, 6)
    assert view.workloads == "ml/train (6 GPU); and 1 DaemonSet pods"
    assert view.reason is None
    cordoned = parse_node(
        _node(
            "g1",
            unschedulable=True,
            annotations={ANN_REASON: "bad GPU 3", ANN_BY: "alice", ANN_AT: "2025-03-19T21:00:00Z"},
        )
    )
    view = node_view(cordoned, pods)
    assert (view.allocation, view.drained) == ("cordoned", False)
    assert (view.reason, view.reason_by) == ("bad GPU 3", "alice")
    assert view.reason_since == parse_time("2025-03-19T21:00:00Z")
    view = node_view(cordoned, pods[1:])  # only the DaemonSet pod is left
    assert (view.allocation, view.drained) == ("drained", True)
    down = node_view(parse_node(_node("g1", ready="Unknown")), pods)
    assert down.allocation == "not-ready"
    assert down.reason == "Unknown: kubelet stopped"


def test_gpu_totals_and_pending_pods_of_a_cluster():
    state = ClusterState()
    state.replace_nodes(
        [
            parse_node(_node("g1")),
            parse_node(_node("g2", unschedulable=True)),
            parse_node(_node("cpu", gpus=None)),
        ]
    )
    state.replace_pods(
        [
            parse_pod(_pod("a", "g1", 6)),
            parse_pod(_pod("b", "g2", 2)),
            parse_pod(_pod("wait", None, 8, phase="Pending", created="2025-03-19T20:00:00Z")),
        ]
    )
    totals = gpu_totals(state)
    assert (totals.total, totals.allocated, totals.unavailable, totals.idle) == (16, 8, 6, 2)
    now = parse_time("2025-03-19T20:10:00Z") or 0.0
    (pending,) = pending_pods(state, now)
    assert pending.reason == "waiting for scheduler" and pending.wait_s == 600
    readings = {r.metric: r.value for r in cluster_readings(state, "k", "gpu-operator", now)}
    assert readings["kubernetes.pending"] == 1
    assert readings["kubernetes.longest_waits"] == "10m\tml/wait\t8\twaiting for scheduler"
    assert readings["kubernetes.gpus_total"] == 16
    empty = {r.metric: r.value for r in cluster_readings(ClusterState(), "k", "g", now)}
    assert empty["kubernetes.gpus_total"] is None  # no GPU node known: unknown, not 0


def test_event_gives_the_latest_time_and_count():
    event = parse_event(
        {
            "kind": "Event",
            "metadata": {"name": "p.1", "namespace": "ml"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ml"},
            "reason": "FailedScheduling",
            "message": "0/1 nodes are available",
            "count": 4,
            "firstTimestamp": "2025-03-19T20:00:00Z",
            "lastTimestamp": "2025-03-19T20:05:00Z",
        }
    )
    assert event.count == 4 and event.last_seen == parse_time("2025-03-19T20:05:00Z")


# --------------------------------------------------------------------------- robustness

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(
    data=_json
    | st.fixed_dictionaries(
        {"metadata": st.fixed_dictionaries({"name": st.text(min_size=1, max_size=5)})},
        optional={"spec": _json, "status": _json},
    )
)
def test_object_parsers_raise_only_parse_error(data):
    for parse in (
        parse_node,
        parse_pod,
        parse_event,
        parse_node_list,
        parse_pod_list,
        parse_pdb_list,
        parse_status,
    ):
        with contextlib.suppress(ParseError):
            parse(data)


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=80))
def test_text_parsers_raise_only_parse_error(text):
    for parse in (parse_labels_fragment, parse_status, parse_node_list):
        with contextlib.suppress(ParseError):
            parse(text)
    scheduling_reasons(text)
    short_reason(text)
