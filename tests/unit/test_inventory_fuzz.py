"""Random text and random structures: the loader only ever raises InventoryError."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.inventory import InventoryError, inventory_from_data, load_inventory

_DIR = Path(tempfile.mkdtemp(prefix="dcc-fuzz-"))

VALID: dict[str, Any] = {
    "site": {"name": "f"},
    "rooms": [{"name": "h", "racks": [{"name": "R1", "power_budget_kw": 30, "units": 42}]}],
    "ssh": {"user": "ops", "known_hosts": "kh"},
    "nodes": [
        {
            "nodes": "gpu[01-04]",
            "role": "gpu-train",
            "rack": "R1",
            "u_start": 1,
            "u_height": 4,
            "bmc": {"address": "10.0.0.{num}", "password": "env:P"},
            "clusters": {"slurm": "s"},
        }
    ],
    "clusters": {"slurm": {"s": {"controller": "gpu01"}}},
    "thresholds": {"services.latency_ms": {"warn": 1, "crit": 2}},
}

YAMLISH = st.text(
    alphabet=st.sampled_from(list(": -[]{}\n\t#&*!'\"|>,.%@`?\r\ufeffabcnodesitr0129\\\x00é")),
    max_size=200,
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
)
STRUCT = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
PATHS = [
    ("site",),
    ("site", "name"),
    ("rooms", 0, "racks", 0, "units"),
    ("nodes", 0, "nodes"),
    ("nodes", 0, "u_start"),
    ("nodes", 0, "bmc"),
    ("nodes", 0, "bmc", "password"),
    ("clusters", "slurm", "s", "controller"),
    ("ssh", "port"),
    ("nodes", 0),
    ("plugins",),
    ("nodes", 0, "role"),
    ("thresholds", "services.latency_ms"),
]


def _load_text(text: str) -> None:
    path = _DIR / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_inventory(path)
    except InventoryError as exc:
        assert exc.problems and all(str(p) for p in exc.problems)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(YAMLISH)
def test_random_yamlish_text_only_raises_inventory_error(text: str) -> None:
    _load_text(text)


@settings(max_examples=60, deadline=None)
@given(STRUCT)
def test_random_structures_as_yaml_only_raise_inventory_error(value: Any) -> None:
    _load_text(yaml.safe_dump(value, allow_unicode=True))
    if isinstance(value, dict):
        try:
            inventory_from_data(value, None)
        except InventoryError as exc:
            assert exc.problems


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(PATHS), STRUCT)
def test_a_valid_inventory_with_one_value_replaced_only_raises_inventory_error(
    path: tuple[str | int, ...], value: Any
) -> None:
    data = copy.deepcopy(VALID)
    here: Any = data
    for part in path[:-1]:
        here = here[part]
    here[path[-1]] = value
    _load_text(yaml.safe_dump(data, allow_unicode=True))
    try:
        inventory_from_data(data, None)
    except InventoryError as exc:
        assert exc.problems
