"""The `/` filter over the demo inventory: node sets, groups, text, and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.filtering import FilterError, parse_filter
from console.inventory import Inventory, load_inventory

DEMO = Path(__file__).resolve().parents[2] / "inventory" / "demo.yaml"


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load_inventory(DEMO)


def names(*n: str) -> frozenset[str]:
    return frozenset(n)


GPUS_R01 = names("gpu001", "gpu002", "gpu003", "gpu004")
CPUS = names("cpu01", "cpu02", "cpu03", "cpu04")


def test_an_empty_filter_means_everything(inv: Inventory) -> None:
    assert parse_filter("", inv) is None
    assert parse_filter("  , ", inv) is None


def test_a_node_set_selects_its_nodes(inv: Inventory) -> None:
    assert parse_filter("gpu[001-004]", inv) == GPUS_R01


def test_a_node_set_with_commas_inside_brackets_is_one_term(inv: Inventory) -> None:
    assert parse_filter("gpu[001,003]", inv) == names("gpu001", "gpu003")
    assert parse_filter("gpu[001,003],cpu01", inv) == names("gpu001", "gpu003", "cpu01")


def test_a_node_set_keeps_only_nodes_in_the_inventory(inv: Inventory) -> None:
    assert parse_filter("gpu[007-012]", inv) == names("gpu007", "gpu008")


def test_an_exact_node_name_selects_only_that_node(inv: Inventory) -> None:
    assert parse_filter("cpu01", inv) == names("cpu01")


def test_terms_add_up_across_spaces_and_commas(inv: Inventory) -> None:
    assert parse_filter("cpu01, stor01 inf02", inv) == names("cpu01", "stor01", "inf02")


def test_text_matches_node_names_containing_it_case_insensitively(inv: Inventory) -> None:
    assert parse_filter("STOR", inv) == names("stor01", "stor02")
    assert parse_filter("gpu00", inv) == frozenset(f"gpu00{i}" for i in range(1, 9))
    assert parse_filter("nothing-like-this", inv) == frozenset()


def test_rack_group_matches_case_insensitively(inv: Inventory) -> None:
    assert parse_filter("@rack:R01", inv) == GPUS_R01
    assert parse_filter("@rack:r01", inv) == GPUS_R01


def test_room_group(inv: Inventory) -> None:
    assert parse_filter("@room:hall-1", inv) == frozenset(inv.nodes)


def test_role_group(inv: Inventory) -> None:
    assert parse_filter("@role:storage", inv) == names("stor01", "stor02")
    assert parse_filter("@role:gpu-infer", inv) == names("inf01", "inf02")


def test_slurm_group(inv: Inventory) -> None:
    expected = frozenset(f"gpu00{i}" for i in range(1, 9)) | CPUS
    assert parse_filter("@slurm:train", inv) == expected


def test_k8s_group_and_its_long_name(inv: Inventory) -> None:
    expected = names("inf01", "inf02") | CPUS
    assert parse_filter("@k8s:k8s-demo", inv) == expected
    assert parse_filter("@kubernetes:k8s-demo", inv) == expected


def test_partition_group(inv: Inventory) -> None:
    assert parse_filter("@partition:cpu", inv) == CPUS
    assert parse_filter("@partition:gpu", inv) == frozenset(f"gpu00{i}" for i in range(1, 9))


def test_label_group(inv: Inventory) -> None:
    assert parse_filter("@label:pod=b", inv) == names("gpu005", "gpu006", "gpu007", "gpu008")
    assert parse_filter("@label:pod=zzz", inv) == frozenset()


def test_groups_and_node_sets_combine(inv: Inventory) -> None:
    assert parse_filter("@role:storage gpu[001-002]", inv) == names(
        "stor01", "stor02", "gpu001", "gpu002"
    )


def test_an_unknown_group_is_an_error_naming_the_known_ones(inv: Inventory) -> None:
    with pytest.raises(FilterError) as err:
        parse_filter("@nosuch:x", inv)
    message = str(err.value)
    assert message.startswith("@nosuch:x: unknown group")
    assert "@rack:" in message and "@label:" in message


def test_a_group_without_a_value_is_an_error(inv: Inventory) -> None:
    with pytest.raises(FilterError):
        parse_filter("@rack:", inv)


def test_a_bad_node_set_is_an_error_naming_the_term(inv: Inventory) -> None:
    with pytest.raises(FilterError) as err:
        parse_filter("gpu[001-", inv)
    assert str(err.value).startswith("gpu[001-: not a node set")


def test_an_oversized_node_set_is_an_error_not_a_hang(inv: Inventory) -> None:
    with pytest.raises(FilterError):
        parse_filter("n[1-100000000]", inv)
