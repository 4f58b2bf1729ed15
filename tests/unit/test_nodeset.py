"""Node sets: ClusterShell parsing, written order kept, bounded size."""

from __future__ import annotations

import time

import pytest

from console.inventory.nodeset import NodeSetError, count, expand, fold


def test_expand_keeps_zero_padding() -> None:
    assert expand("gpu[001-003]") == ["gpu001", "gpu002", "gpu003"]


def test_expand_keeps_the_order_written() -> None:
    assert expand("stor1,cpu[01-02],gpu5") == ["stor1", "cpu01", "cpu02", "gpu5"]


def test_expand_applies_exclusion() -> None:
    assert expand("gpu[1-5]!gpu3") == ["gpu1", "gpu2", "gpu4", "gpu5"]


def test_expand_drops_repeats() -> None:
    assert expand("n[1-3],n2") == ["n1", "n2", "n3"]


def test_expand_two_dimensions() -> None:
    assert expand("r[1-2]n[1-2]") == ["r1n1", "r1n2", "r2n1", "r2n2"]


@pytest.mark.parametrize("bad", ["gpu[1-", "x[a-b]", "a]", "", "  ", "gpu[01-5]", "n[3-1]"])
def test_bad_node_sets_raise_node_set_error(bad: str) -> None:
    with pytest.raises(NodeSetError):
        expand(bad)


def test_groups_are_refused() -> None:
    with pytest.raises(NodeSetError, match="@groups"):
        expand("@gpu")


@pytest.mark.parametrize("huge", ["n[1-100000000]", "r[1-1000]n[1-1000]", "a[1-60000],b[1-60000]"])
def test_huge_ranges_are_refused_without_expanding(huge: str) -> None:
    started = time.perf_counter()
    with pytest.raises(NodeSetError, match="more than 100,000 names"):
        expand(huge)
    assert time.perf_counter() - started < 0.5


def test_count_does_not_list() -> None:
    assert count("n[1-50000]") == 50000


def test_fold_is_the_inverse_of_expand() -> None:
    names = expand("gpu[001-016],cpu[01-32]")
    assert fold(names) == "cpu[01-32],gpu[001-016]"
    assert fold([]) == ""
