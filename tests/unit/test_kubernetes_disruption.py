"""The lab's disruption-controller arithmetic and taint-manager timing, without a server."""

from __future__ import annotations

import pytest

from plugins.kubernetes.lab_disruption import (
    TaintEviction,
    budget,
    scaled_value,
    toleration_window,
)

UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}


@pytest.mark.parametrize(
    ("value", "total", "want"),
    [("50%", 7, 4), ("50%", 3, 2), ("50%", 1, 1), ("30%", 10, 3), ("0%", 5, 0), (2, 9, 2)],
)
def test_percentages_round_up_like_get_scaled_value_from_int_or_percent(value, total, want):
    assert scaled_value(value, total) == want


@pytest.mark.parametrize("value", ["5", "abc%", None, True])
def test_values_that_are_not_an_int_or_a_percentage_are_refused(value):
    with pytest.raises(ValueError):
        scaled_value(value, 4)


def test_budgets_follow_get_expected_pod_count():
    # Integer minAvailable: expected pods are the pods the selector matches.
    assert budget({"minAvailable": 2}, matched=4, healthy=3, scale=3).allowed == 1
    assert budget({"minAvailable": 2}, matched=4, healthy=3, scale=3).expected == 4
    # Percentages and maxUnavailable scale on the controllers' replicas, rounding up.
    b = budget({"minAvailable": "50%"}, matched=3, healthy=3, scale=3)
    assert (b.desired, b.expected, b.allowed) == (2, 3, 1)
    b = budget({"maxUnavailable": "50%"}, matched=3, healthy=3, scale=3)
    assert (b.desired, b.allowed) == (1, 2)
    b = budget({"maxUnavailable": 0}, matched=2, healthy=2, scale=2)
    assert b.allowed == 0
    # Nothing expected: no disruption allowed, whatever is healthy.
    assert budget({"maxUnavailable": 1}, matched=1, healthy=1, scale=0).allowed == 0


def test_the_toleration_window_is_the_shortest_matching_toleration():
    tols = [
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
        {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
    ]
    assert toleration_window(tols, [UNREACHABLE]) == 300  # the first match is used
    assert toleration_window(tols[1:], [UNREACHABLE]) == 60
    assert toleration_window([{"operator": "Exists"}], [UNREACHABLE]) is None  # forever
    other = {"key": "example.com/broken", "value": "yes", "effect": "NoExecute"}
    assert toleration_window(tols[:1], [UNREACHABLE, other]) == 0  # untolerated: at once
    equal = {"key": "example.com/broken", "value": "yes", "effect": "NoExecute"}
    assert toleration_window([equal], [other]) is None


def pod(name: str, node: str, seconds: int) -> dict:
    return {
        "metadata": {"namespace": "ns", "name": name},
        "spec": {
            "nodeName": node,
            "tolerations": [
                {
                    "key": UNREACHABLE["key"],
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": seconds,
                }
            ],
        },
    }


def node(tainted: bool) -> dict:
    return {"spec": {"taints": [UNREACHABLE] if tainted else []}}


def test_the_taint_manager_evicts_after_the_toleration_and_a_recovery_cancels_it():
    te = TaintEviction()
    pods = [pod("a", "n1", 10)]
    assert te.due(pods, {"n1": node(True)}, 100.0) == []
    assert te.due(pods, {"n1": node(True)}, 109.0) == []
    assert te.due(pods, {"n1": node(True)}, 110.0) == pods
    # The node came back: the pending eviction is cancelled, and the clock restarts.
    te = TaintEviction()
    te.due(pods, {"n1": node(True)}, 100.0)
    assert te.due(pods, {"n1": node(False)}, 105.0) == []
    assert te.due(pods, {"n1": node(True)}, 111.0) == []
    assert te.due(pods, {"n1": node(True)}, 121.0) == pods
