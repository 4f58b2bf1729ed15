from __future__ import annotations

from console.plugin import Reading
from console.store import Store
from console.workloads import drained_everywhere, scheduler_views, workloads_on


def test_a_node_no_scheduler_manages_counts_as_drained() -> None:
    assert drained_everywhere(Store(), "gpu001") == (True, "")


def test_views_join_every_scheduler_and_workloads_read_for_previews() -> None:
    store = Store()
    store.put(
        [
            Reading("gpu001", "slurm.allocation", "alloc"),
            Reading("gpu001", "slurm.workloads", "job 81723 train-llm (alice)"),
            Reading("gpu001", "slurm.drained", False),
            Reading("gpu001", "kubernetes.allocation", "cordoned"),
            Reading("gpu001", "kubernetes.workloads", ""),
            Reading("gpu001", "kubernetes.drained", True),
        ]
    )
    assert [v.scheduler for v in scheduler_views(store, "gpu001")] == ["kubernetes", "slurm"]
    assert workloads_on(store, "gpu001") == ["slurm: job 81723 train-llm (alice)"]
    ok, why = drained_everywhere(store, "gpu001")
    assert not ok and why == "slurm: gpu001 is alloc, not drained"


def test_unknown_drain_state_is_not_drained() -> None:
    store = Store()
    store.put(
        [Reading("gpu002", "slurm.allocation", None), Reading("gpu002", "slurm.drained", None)]
    )
    ok, why = drained_everywhere(store, "gpu002")
    assert not ok and "unknown" in why
    assert workloads_on(store, "gpu002") == ["slurm: what runs there is unknown"]


def test_reasons_are_read_with_who_and_since_per_scheduler() -> None:
    from console.workloads import out_of_service, service_reason

    store = Store()
    store.put(
        [
            Reading("gpu003", "slurm.allocation", "drained"),
            Reading("gpu003", "slurm.reason", "alice: replace GPU 3"),
            Reading("gpu003", "slurm.reason_by", "root"),
            Reading("gpu003", "slurm.reason_since", 1700000000.0),
            Reading("inf01", "kubernetes.allocation", "cordoned"),
            Reading("inf01", "kubernetes.reason", ""),
            Reading("gpu001", "slurm.allocation", "alloc"),
            Reading("gpu002", "slurm.allocation", "down"),
        ]
    )
    why = service_reason(store, "gpu003", "slurm")
    assert (why.allocation, why.reason, why.by, why.since) == (
        "drained",
        "alice: replace GPU 3",
        "root",
        1700000000.0,
    )
    found = out_of_service(store)
    # oldest known reason first; unknown times last; in-service nodes absent
    assert [(s.node, s.scheduler) for s in found] == [
        ("gpu003", "slurm"),
        ("gpu002", "slurm"),
        ("inf01", "kubernetes"),
    ]
    assert found[1].reason is None and found[1].since is None  # not published: unknown
    assert found[2].reason == "" and found[2].by is None  # published empty: none given
