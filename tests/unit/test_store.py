"""The Store: float32 history rings, latest readings, pane states, alerts, thresholds."""

from __future__ import annotations

import math
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.plugin import Finding, Reading, Severity
from console.store import (
    HISTORY_LEN,
    PANE_STATUS_REUSE_S,
    SHORT_HISTORY_LEN,
    STALE_AFTER_INTERVALS,
    PaneStatus,
    Ring,
    Store,
    threshold_findings,
)


class FakeClock:
    """A clock the test moves by hand, so ages are exact."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- Ring


def test_ring_keeps_insertion_order_before_it_is_full() -> None:
    ring = Ring(5)
    for v in (1.0, 2.0, 3.0):
        ring.append(v)
    assert ring.values() == [1.0, 2.0, 3.0]
    assert len(ring) == 3


def test_ring_wraps_and_keeps_the_newest_values_oldest_first() -> None:
    ring = Ring(4)
    for v in range(1, 11):
        ring.append(float(v))
    assert ring.values() == [7.0, 8.0, 9.0, 10.0]
    assert len(ring) == 4


def test_ring_stores_unknown_as_nan() -> None:
    ring = Ring(3)
    ring.append(1.5)
    ring.append(None)
    ring.append(2.5)
    values = ring.values()
    assert values[0] == 1.5
    assert math.isnan(values[1])
    assert values[2] == 2.5


def test_ring_memory_is_a_float32_array_once_values_differ() -> None:
    ring = Ring(150)
    ring.append(1.0)
    ring.append(2.0)
    buf = ring._buf
    assert isinstance(buf, array)
    assert buf.typecode == "f"
    assert buf.itemsize == 4
    assert len(buf) == 150


def test_ring_of_a_constant_series_holds_one_value_and_no_array() -> None:
    ring = Ring(150)
    for _ in range(200):
        ring.append(81559.0)
    assert ring._buf is None
    assert ring.values() == [81559.0] * 150
    assert len(ring) == 150


def test_ring_keeps_a_constant_run_when_a_different_value_comes() -> None:
    ring = Ring(4)
    for v in (None, None, 3.0, 3.0, 3.0, 5.0):
        ring.append(v)
    assert ring.values()[1:] == [3.0, 3.0, 3.0, 5.0][1:]
    assert ring.values() == [3.0, 3.0, 3.0, 5.0]
    ring2 = Ring(5)
    for v in (None, None, 1.25):
        ring2.append(v)
    values = ring2.values()
    assert math.isnan(values[0]) and math.isnan(values[1]) and values[2] == 1.25


def test_ring_stores_float32_values_whether_constant_or_not() -> None:
    const, varying = Ring(3), Ring(3)
    for _ in range(3):
        const.append(0.1)
    varying.append(0.1)
    varying.append(0.2)
    assert const.values()[0] == varying.values()[0] == array("f", [0.1])[0]


# --------------------------------------------------------------------------- readings


def test_latest_and_value_return_the_newest_reading() -> None:
    store = Store()
    store.put([Reading("gpu001", "gpu.temp_c", 60.0, ts=1.0, source="nvml")])
    store.put([Reading("gpu001", "gpu.temp_c", 65.0, ts=2.0, source="nvml")])
    latest = store.latest("gpu001", "gpu.temp_c")
    assert latest is not None
    assert latest.value == 65.0
    assert latest.ts == 2.0
    assert latest.source == "nvml"
    assert store.value("gpu001", "gpu.temp_c") == 65.0


def test_unknown_target_or_metric_reads_as_none_not_zero() -> None:
    store = Store()
    assert store.latest("gpu001", "gpu.temp_c") is None
    assert store.value("gpu001", "gpu.temp_c") is None
    assert store.history("gpu001", "gpu.temp_c") == []
    assert store.readings_for("gpu001") == {}


def test_by_metric_returns_one_reading_per_target() -> None:
    store = Store()
    store.put(
        [
            Reading("gpu001", "gpu.temp_c", 60.0),
            Reading("gpu002", "gpu.temp_c", 70.0),
            Reading("gpu001", "gpu.power_w", 300.0),
        ]
    )
    by = store.by_metric("gpu.temp_c")
    assert set(by) == {"gpu001", "gpu002"}
    assert by["gpu002"].value == 70.0
    assert set(store.readings_for("gpu001")) == {"gpu.temp_c", "gpu.power_w"}


def test_history_records_numbers_and_nan_for_a_later_unknown() -> None:
    store = Store(history_len=3)
    for v in (1, 2.5, None, 4, 5):
        store.put([Reading("gpu001", "gpu.temp_c", v)])
    hist = store.history("gpu001", "gpu.temp_c")
    assert len(hist) == 3
    assert math.isnan(hist[0])
    assert hist[1:] == [4.0, 5.0]


def test_text_and_bool_values_have_no_history() -> None:
    store = Store()
    store.put([Reading("svc:a", "services.state", "up"), Reading("svc:a", "services.ok", True)])
    assert store.history("svc:a", "services.state") == []
    assert store.history("svc:a", "services.ok") == []
    assert store.value("svc:a", "services.ok") is True


def test_an_int_too_large_for_a_float_is_stored_as_infinity_not_a_crash() -> None:
    store = Store()
    store.put([Reading("bmc1", "power.counter", 10**400)])
    store.put([Reading("bmc1", "power.counter", -(10**400))])
    assert store.history("bmc1", "power.counter") == [math.inf, -math.inf]


def test_every_change_bumps_the_version_and_calls_listeners() -> None:
    store = Store()
    calls: list[int] = []
    store.subscribe(lambda: calls.append(store.version))
    store.put([Reading("a", "m.x", 1.0)])
    store.put([])  # nothing written, nothing changed
    store.record_attempt("m.c", "a", 10.0, None)
    assert calls == [1, 2]


def test_targets_with_prefix_lists_matching_targets() -> None:
    store = Store()
    store.put([Reading("svc:a", "s.x", 1), Reading("svc:b", "s.x", 1), Reading("gpu1", "s.x", 1)])
    assert sorted(store.targets_with_prefix("svc:")) == ["svc:a", "svc:b"]


# --------------------------------------------------------------------------- attempts


def test_record_attempt_counts_consecutive_failures_and_resets_on_success() -> None:
    clock = FakeClock()
    store = Store(clock=clock)
    store.record_attempt("c.x", "n1", 10.0, "boom")
    store.record_attempt("c.x", "n1", 10.0, "boom again")
    st = store.status("c.x", "n1", 10.0)
    assert st.failures == 2
    assert st.last_error == "boom again"
    assert st.last_ok is None
    clock.now += 5
    store.record_attempt("c.x", "n1", 10.0, None)
    assert st.failures == 0
    assert st.last_error is None
    assert st.last_ok == clock.now
    assert st.last_attempt == clock.now


# --------------------------------------------------------------------------- pane status


def test_pane_is_loading_before_any_attempt() -> None:
    store = Store()
    assert store.pane_status(["c.x"]).state == "loading"
    store.status("c.x", "n1", 10.0)  # registered, never run
    assert store.pane_status(["c.x"]).state == "loading"


def test_pane_is_ok_after_a_good_read() -> None:
    store = Store(clock=FakeClock())
    store.record_attempt("c.x", "n1", 10.0, None)
    status = store.pane_status(["c.x"])
    assert status.state == "ok"
    assert status.error is None


def test_pane_is_failed_with_the_error_when_every_target_fails() -> None:
    store = Store(clock=FakeClock())
    store.record_attempt("c.x", "n1", 10.0, "connection refused")
    store.record_attempt("c.x", "n2", 10.0, "connection refused")
    status = store.pane_status(["c.x"])
    assert status.state == "failed"
    assert status.error == "connection refused"


def test_pane_is_ok_with_a_count_when_only_some_targets_fail() -> None:
    clock = FakeClock()
    store = Store(clock=clock)
    store.record_attempt("c.x", "n1", 10.0, None)
    store.record_attempt("c.x", "n2", 10.0, "refused")
    status = store.pane_status(["c.x"])
    assert status.state == "ok"
    assert status.error == "1 of 2 failing"


def test_pane_turns_stale_with_its_age_once_reads_stop_succeeding() -> None:
    clock = FakeClock()
    store = Store(clock=clock)
    store.record_attempt("c.x", "n1", 10.0, None)
    store.record_attempt("c.x", "n2", 10.0, None)
    limit = STALE_AFTER_INTERVALS * 10.0
    clock.now += limit  # exactly at the limit: not yet stale
    assert store.pane_status(["c.x"]).state == "ok"
    clock.now += 10.0
    store.record_attempt("c.x", "n2", 10.0, None)  # n2 fresh again, n1 is not
    status = store.pane_status(["c.x"])
    # One late target does not make the whole pane stale: it says how many are late.
    assert (status.state, status.error) == ("ok", "1 of 2 failing or late")
    clock.now += limit + 5.0  # now nothing on the pane is current
    status = store.pane_status(["c.x"])
    assert status.state == "stale"
    assert status.age == pytest.approx(limit + 5.0)  # the age of the newest good data


def test_pane_recovers_from_stale_to_ok_after_a_good_read() -> None:
    clock = FakeClock()
    store = Store(clock=clock)
    store.record_attempt("c.x", "n1", 1.0, None)
    clock.now += 100
    assert store.pane_status(["c.x"]).state == "stale"
    store.record_attempt("c.x", "n1", 1.0, None)
    assert store.pane_status(["c.x"]).state == "ok"


def test_a_remembered_pane_status_still_follows_the_clock() -> None:
    # The status is judged once and reused between attempts: the reuse must end when a
    # target's data turns stale by the clock alone, and a stale age must keep growing.
    clock = FakeClock()
    start = clock.now
    store = Store(clock=clock)
    store.record_attempt("c.x", "n1", 10.0, None)
    clock.now += 5.0
    store.record_attempt("c.x", "n2", 10.0, None)
    for _ in range(3):
        assert store.pane_status(["c.x"]) == PaneStatus("ok")
        clock.now += 1.0
    clock.now = start + STALE_AFTER_INTERVALS * 10.0 + 0.5  # n1 late, n2 not yet
    assert store.pane_status(["c.x"]).error == "1 of 2 failing or late"
    clock.now += 10.0
    first = store.pane_status(["c.x"])
    clock.now += 2.0
    second = store.pane_status(["c.x"])
    assert (first.state, second.state) == ("stale", "stale")
    assert second.age == pytest.approx((first.age or 0.0) + 2.0)


def test_pane_status_only_looks_at_the_given_collectors_and_targets() -> None:
    store = Store(clock=FakeClock())
    store.record_attempt("c.x", "n1", 10.0, "down")
    store.record_attempt("c.x", "n2", 10.0, None)
    store.record_attempt("c.y", "n1", 10.0, None)
    assert store.pane_status(["c.x"], targets=["n1"]).state == "failed"
    assert store.pane_status(["c.x"], targets=["n2"]).state == "ok"
    assert store.pane_status(["c.y"]).state == "ok"
    assert store.pane_status(["c.z"]).state == "loading"


# --------------------------------------------------------------------------- alerts


def test_a_finding_keeps_its_since_while_it_stays_true() -> None:
    clock = FakeClock(100.0)
    store = Store(clock=clock)
    f = Finding(Severity.WARNING, "n1", "hot", key="t:n1")
    store.set_findings([f])
    clock.now = 200.0
    store.set_findings([Finding(Severity.CRITICAL, "n1", "hotter", key="t:n1")])
    (alert,) = store.alerts()
    assert alert.since == 100.0
    assert alert.last_seen == 200.0
    assert alert.finding.message == "hotter"


def test_a_resolved_finding_is_dropped_and_returns_with_a_new_since() -> None:
    clock = FakeClock(100.0)
    store = Store(clock=clock)
    a = Finding(Severity.WARNING, "n1", "hot", key="t:n1")
    b = Finding(Severity.WARNING, "n2", "hot", key="t:n2")
    store.set_findings([a, b])
    clock.now = 150.0
    store.set_findings([b])
    assert [x.key for x in store.alerts()] == ["t:n2"]
    clock.now = 160.0
    store.set_findings([a, b])
    since = {x.key: x.since for x in store.alerts()}
    assert since == {"t:n1": 160.0, "t:n2": 100.0}


def test_ok_findings_are_not_alerts() -> None:
    store = Store()
    store.set_findings([Finding(Severity.OK, "n1", "fine", key="k")])
    assert store.alerts() == []


def test_alerts_are_sorted_worst_first_then_oldest_first() -> None:
    clock = FakeClock(1.0)
    store = Store(clock=clock)
    store.set_findings([Finding(Severity.WARNING, "old", "w", key="old")])
    clock.now = 2.0
    store.set_findings(
        [
            Finding(Severity.WARNING, "old", "w", key="old"),
            Finding(Severity.WARNING, "new", "w", key="new"),
            Finding(Severity.CRITICAL, "crit", "c", key="crit"),
        ]
    )
    assert [a.key for a in store.alerts()] == ["crit", "old", "new"]


def test_unchanged_findings_do_not_bump_the_version() -> None:
    store = Store()
    f = Finding(Severity.WARNING, "n1", "hot", key="k")
    store.set_findings([f])
    before = store.version
    store.set_findings([f])
    assert store.version == before


def test_alert_key_falls_back_to_target_and_message() -> None:
    store = Store()
    store.set_findings([Finding(Severity.WARNING, "n1", "hot")])
    assert store.alerts()[0].key == "n1:hot"


# --------------------------------------------------------------------------- thresholds


def _store_with(metric: str, values: dict[str, object]) -> Store:
    store = Store()
    store.put([Reading(t, metric, v) for t, v in values.items()])  # type: ignore[arg-type]
    return store


def test_threshold_above_is_past_only_strictly_above_the_level() -> None:
    store = _store_with("gpu.temp_c", {"at_warn": 80, "over_warn": 80.5, "at_crit": 90, "over": 91})
    found = {f.target: f for f in threshold_findings(store, {"gpu.temp_c": (80, 90, "above")})}
    assert set(found) == {"over_warn", "at_crit", "over"}
    assert found["over_warn"].severity is Severity.WARNING
    assert found["at_crit"].severity is Severity.WARNING
    assert found["over"].severity is Severity.CRITICAL
    assert found["over"].message == "temp_c 91 > 90"
    assert found["over"].key == "threshold:gpu.temp_c:over"


def test_threshold_below_is_past_only_strictly_below_the_level() -> None:
    store = _store_with("ups.charge_pct", {"at_warn": 50, "under_warn": 49, "at": 20, "under": 19})
    found = {f.target: f for f in threshold_findings(store, {"ups.charge_pct": (50, 20, "below")})}
    assert set(found) == {"under_warn", "at", "under"}
    assert found["under_warn"].severity is Severity.WARNING
    assert found["at"].severity is Severity.WARNING
    assert found["under"].severity is Severity.CRITICAL
    assert found["under"].message == "charge_pct 19 < 20"


def test_threshold_ignores_unknown_text_and_bool_values() -> None:
    store = _store_with("x.v", {"none": None, "text": "hot", "flag": True, "nan": math.nan})
    assert threshold_findings(store, {"x.v": (0, 0, "above")}) == []


def test_threshold_with_only_a_critical_level_skips_warning() -> None:
    store = _store_with("x.v", {"a": 5, "b": 15})
    found = threshold_findings(store, {"x.v": (None, 10, "above")})
    assert [(f.target, f.severity) for f in found] == [("b", Severity.CRITICAL)]


def test_threshold_on_an_overflowing_int_is_critical_not_a_crash() -> None:
    store = _store_with("x.v", {"a": 10**400})
    (f,) = threshold_findings(store, {"x.v": (1, 2, "above")})
    assert f.severity is Severity.CRITICAL
    assert "inf" in f.message


def test_threshold_finding_names_the_reading_node() -> None:
    store = Store()
    store.put([Reading("svc:minio", "services.latency_ms", 3000, node="stor01")])
    (f,) = threshold_findings(store, {"services.latency_ms": (500, 2000, "above")})
    assert f.node == "stor01"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["n1", "n2", "n3"]),
            st.sampled_from([None, None, None, "refused"]),
            st.floats(min_value=0.0, max_value=25.0),
        ),
        max_size=40,
    )
)
def test_a_remembered_pane_status_is_always_the_one_judged_afresh(
    steps: list[tuple[str, str | None, float]],
) -> None:
    clock = FakeClock()
    store = Store(clock=clock)
    intervals = {"n1": 1.0, "n2": 5.0, "n3": 10.0}
    for target, error, wait in steps:
        store.record_attempt("c.x", target, intervals[target], error)
        for moment in (0.0, wait / 2, wait / 2):
            clock.now += moment
            remembered = store.pane_status(["c.x"])
            afresh = Store._pane_status(store, ["c.x"], None, clock.now)[0]
            assert (remembered.state, remembered.error) == (afresh.state, afresh.error)
            # A stale age may be up to PANE_STATUS_REUSE_S old (it is judged again then).
            assert remembered.age == pytest.approx(afresh.age, abs=PANE_STATUS_REUSE_S)


def test_history_is_long_only_for_the_metrics_named_long() -> None:
    # Most series only feed a sparkline; the few that rules read far back keep it all.
    store = Store(long_history={"gpu.util_pct"})
    for i in range(HISTORY_LEN + 10):
        store.put(
            [Reading("n1/0", "gpu.util_pct", float(i)), Reading("n1/0", "gpu.temp_c", float(i))]
        )
    long, short = store.history("n1/0", "gpu.util_pct"), store.history("n1/0", "gpu.temp_c")
    assert len(long) == HISTORY_LEN
    assert len(short) == SHORT_HISTORY_LEN
    assert short == long[-SHORT_HISTORY_LEN:]  # the same newest samples


def test_the_next_status_change_is_when_the_first_target_turns_stale() -> None:
    clock = FakeClock()
    store = Store(clock=clock)
    assert store.next_status_change() == math.inf  # nothing judged yet
    store.record_attempt("c.x", "n1", 10.0, None)
    clock.now += 4.0
    store.record_attempt("c.x", "n2", 10.0, None)
    store.pane_status(["c.x"])
    assert store.next_status_change() == 1000.0 + STALE_AFTER_INTERVALS * 10.0
    clock.now += 100.0
    assert store.pane_status(["c.x"]).state == "stale"
    assert store.next_status_change() == clock.now + PANE_STATUS_REUSE_S  # a growing age
    store.record_attempt("c.x", "n1", 10.0, None)
    assert store.next_status_change() == math.inf  # judged before that attempt: not current
