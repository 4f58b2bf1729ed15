"""The Store's fleet-size indexes: what changed since a version, prefixes, metrics, failures."""

from __future__ import annotations

from console.plugin import Reading
from console.store import Store


def r(target: str, metric: str, value: object = 1.0, node: str | None = None) -> Reading:
    return Reading(target, metric, value, ts=1.0, node=node)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_changed_nodes_names_only_the_nodes_written_after_a_version() -> None:
    store = Store()
    store.put([r("gpu001/0", "gpu.util_pct", 1.0, node="gpu001"), r("gpu002", "power.power_w")])
    mark = store.version
    assert store.changed_nodes(mark) == set()
    store.put([r("gpu002/3", "gpu.util_pct", 5.0, node="gpu002")])
    store.put([r("svc:minio", "services.up", True, node="stor01")])
    assert store.changed_nodes(mark) == {"gpu002", "stor01"}
    assert store.changed_nodes(0) == {"gpu001", "gpu002", "stor01"}


def test_changed_nodes_of_one_plugin_ignores_other_plugins_readings_of_the_node() -> None:
    store = Store()
    store.put([r("gpu001", "power.power_w")])
    mark = store.version
    store.put([r("gpu001/0", "gpu.util_pct", node="gpu001")])
    assert store.changed_nodes(mark) == {"gpu001"}
    assert store.changed_nodes(mark, "power") == set()
    assert store.changed_nodes(mark, "gpu") == {"gpu001"}
    assert store.changed_nodes(mark, "slurm") == set()


def test_node_version_moves_only_when_that_node_changes() -> None:
    store = Store()
    assert store.node_version("gpu001") == 0
    store.put([r("gpu001", "gpu.smi", "ok")])
    first = store.node_version("gpu001")
    store.put([r("gpu002", "gpu.smi", "ok")])
    assert store.node_version("gpu001") == first
    store.put([r("gpu001/1", "gpu.temp_c", 60.0, node="gpu001")])
    assert store.node_version("gpu001") > first


def test_targets_with_prefix_finds_a_nodes_targets_among_many_in_sorted_order() -> None:
    store = Store()
    store.put([r(f"gpu{n:04d}/{i}", "gpu.util_pct") for n in range(1, 200) for i in (7, 0, 3)])
    store.put([r("gpu0010", "gpu.smi", "ok"), r("gpu00100/0", "gpu.util_pct")])
    assert store.targets_with_prefix("gpu0010/") == ["gpu0010/0", "gpu0010/3", "gpu0010/7"]
    assert store.targets_with_prefix("nope") == []
    assert len(store.targets_with_prefix("")) == 199 * 3 + 2


def test_by_metric_and_metric_names_follow_replaced_readings() -> None:
    store = Store()
    store.put([r("a", "t.x", 1.0), r("b", "t.x", 2.0), r("a", "t.y", "s")])
    store.put([r("a", "t.x", 3.0)])
    assert {t: x.value for t, x in store.by_metric("t.x").items()} == {"a": 3.0, "b": 2.0}
    assert sorted(store.metric_names()) == ["t.x", "t.y"]
    assert store.latest("a", "t.x") is not None and store.latest("a", "t.x").value == 3.0
    assert store.latest("zz", "t.x") is None and store.value("a", "t.z") is None


def test_history_of_a_series_is_kept_per_target_and_metric() -> None:
    store = Store(history_len=4)
    for v in (1.0, 2.0, None, 4.0, 5.0):
        store.put([r("gpu001/0", "gpu.util_pct", v)])
    store.put([r("gpu001/1", "gpu.util_pct", 9.0)])
    values = store.history("gpu001/0", "gpu.util_pct")
    assert values[0] == 2.0 and values[1] != values[1] and values[2:] == [4.0, 5.0]
    assert store.history("gpu001/1", "gpu.util_pct") == [9.0]
    assert store.history("gpu001/0", "gpu.nope") == []


def test_failing_statuses_are_exactly_those_whose_last_attempt_failed() -> None:
    store = Store()
    store.record_attempt("c", "a", 10, "refused")
    store.record_attempt("c", "b", 10, None)
    store.record_attempts("f", {"x": "timeout", "y": None}, 10)
    assert {(s.collector, s.target) for s in store.failing_statuses()} == {("c", "a"), ("f", "x")}
    store.record_attempt("c", "a", 10, None)
    store.record_attempts("f", {"x": None}, 10)
    assert store.failing_statuses() == []


def test_pane_status_is_judged_again_after_an_attempt_even_at_the_same_instant() -> None:
    clock = Clock()
    store = Store(clock=clock)
    store.status("c", "a", 10)
    assert store.pane_status(["c"]).state == "loading"
    store.record_attempt("c", "a", 10, "refused")
    assert store.pane_status(["c"]).state == "failed"
    store.record_attempt("c", "a", 10, None)
    assert store.pane_status(["c"]).state == "ok"
    clock.now += 31  # three intervals without a good read
    assert store.pane_status(["c"]).state == "stale"


def test_pane_status_counts_failing_and_late_targets_once_each() -> None:
    clock = Clock()
    store = Store(clock=clock)
    for t in ("a", "b", "c"):
        store.record_attempt("c", t, 10, None)
    clock.now += 35
    store.record_attempt("c", "a", 10, None)
    store.record_attempt("c", "b", 10, "refused")  # failing and late: one target
    status = store.pane_status(["c"])
    assert status.state == "ok"
    assert status.error == "2 of 3 failing or late"
