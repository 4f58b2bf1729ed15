"""Counter totals to rates (resets, wraps, saturation) and the port judgement."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from console.plugin import Severity
from plugins.infiniband.config import InfinibandConfig
from plugins.infiniband.health import CounterTracker, judge, worst


def test_rate_is_errors_in_the_window_per_minute():
    t = CounterTracker(window_s=300)
    assert t.update("p", "symbol_error", 0, 0.0).rate_per_min is None
    for minute in range(1, 11):
        step = t.update("p", "symbol_error", minute * 30, minute * 60.0)
    assert step.rate_per_min == pytest.approx(30.0, rel=0.05)


def test_one_early_event_is_divided_by_the_whole_window_not_the_startup_span():
    t = CounterTracker(window_s=300)
    t.update("p", "link_downed", 5, 0.0)
    step = t.update("p", "link_downed", 6, 15.0)
    assert step.rate_per_min == pytest.approx(0.2)


def test_a_total_that_goes_down_is_a_reset_and_counts_what_accrued_since():
    t = CounterTracker(window_s=60)
    t.update("p", "symbol_error", 1000, 0.0)
    step = t.update("p", "symbol_error", 6, 60.0)
    assert step.event == "reset"
    assert step.rate_per_min == pytest.approx(6.0)


def test_a_32_bit_data_counter_near_its_top_wraps_instead_of_resetting():
    t = CounterTracker(window_s=60)
    t.update("p", "port_xmit_data", 2**32 - 100, 0.0)
    step = t.update("p", "port_xmit_data", 50, 60.0)
    assert step.event == "wrap" and step.rate_per_min == pytest.approx(150.0)


def test_an_error_counter_at_its_maximum_is_saturated():
    t = CounterTracker()
    assert t.update("p", "local_link_integrity_errors", 15, 0.0).event == "saturated"
    assert t.update("p", "symbol_error", 65535, 1.0).event == "saturated"


def test_unknown_total_gives_unknown_rate():
    assert CounterTracker().update("p", "symbol_error", None, 0.0).rate_per_min is None


ACTIVE = {
    "infiniband.state": "ACTIVE",
    "infiniband.phys_state": "LinkUp",
    "infiniband.link_layer": "InfiniBand",
    "infiniband.rate_gbps": 400.0,
    "infiniband.width": 4,
    "infiniband.speed": "NDR",
}


def test_healthy_ndr_port_has_no_problem():
    assert judge(ACTIVE, InfinibandConfig(), 400.0) == []


def test_ndr_port_running_at_hdr_is_degraded():
    (p,) = judge(
        ACTIVE | {"infiniband.rate_gbps": 200.0, "infiniband.speed": "HDR"},
        InfinibandConfig(),
        400.0,
    )
    assert p.kind == "degraded" and p.severity is Severity.WARNING
    assert p.text == "running 200 (HDR) < expected 400 Gb/s"


def test_2x_width_is_degraded():
    probs = judge(ACTIVE | {"infiniband.width": 2}, InfinibandConfig(), None)
    assert [p.text for p in probs] == ["width 2X < expected 4X"]


@pytest.mark.parametrize(
    ("state", "phys", "sev", "text"),
    [
        ("DOWN", "Polling", Severity.CRITICAL, "physical state Polling"),
        ("DOWN", "Disabled", Severity.WARNING, "administratively disabled"),
        ("INIT", "LinkErrorRecovery", Severity.CRITICAL, "physical state LinkErrorRecovery"),
        ("INIT", "LinkUp", Severity.CRITICAL, "port init"),
    ],
)
def test_ports_not_active_or_in_a_bad_physical_state(state, phys, sev, text):
    (p,) = judge(
        ACTIVE | {"infiniband.state": state, "infiniband.phys_state": phys},
        InfinibandConfig(),
        400.0,
    )
    assert (p.severity, p.text) == (sev, text)


def test_roce_port_is_not_held_to_the_ib_rate():
    assert (
        judge(
            ACTIVE | {"infiniband.link_layer": "Ethernet", "infiniband.rate_gbps": 100.0},
            InfinibandConfig(),
            400.0,
        )
        == []
    )


def test_one_link_down_warns_and_two_in_the_window_is_flapping():
    one = judge(ACTIVE | {"infiniband.rate.link_downed": 0.2}, InfinibandConfig(), None)
    two = judge(ACTIVE | {"infiniband.rate.link_downed": 0.4}, InfinibandConfig(), None)
    assert (one[0].kind, one[0].severity) == ("flapping", Severity.WARNING)
    assert (two[0].kind, two[0].severity) == ("flapping", Severity.CRITICAL)
    assert "flapping" in two[0].text


def test_thresholds_per_counter_come_from_the_config():
    cfg = InfinibandConfig.model_validate({"thresholds": {"symbol_error": {"warn": 100}}})
    assert judge(ACTIVE | {"infiniband.rate.symbol_error": 50}, cfg, None) == []
    (p,) = judge(ACTIVE | {"infiniband.rate.symbol_error": 50}, InfinibandConfig(), None)
    assert p.severity is Severity.CRITICAL and worst([p]) is Severity.CRITICAL


def test_unknown_counter_names_in_thresholds_are_refused():
    with pytest.raises(ValidationError, match="unknown counter"):
        InfinibandConfig.model_validate({"thresholds": {"symbol_errors": {"warn": 1}}})
