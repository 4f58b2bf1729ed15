from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from console.sparkline import BLOCKS, sparkline


def test_rising_series_rises_and_keeps_only_the_last_values() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], width=4) == "▁▃▆█"


def test_unknown_values_are_gaps_not_zeros() -> None:
    assert sparkline([1.0, math.nan, 3.0], width=3) == "▁ █"


def test_values_past_float_range_do_not_crash() -> None:
    assert sparkline([-1.7e308, 1.7e308], width=2) == "▁█"


def test_flat_and_empty_series() -> None:
    assert sparkline([5.0, 5.0], width=8) == "▁▁"
    assert sparkline([], width=8) == ""
    assert sparkline([math.nan, math.nan]) == "  "


@given(st.lists(st.floats(allow_infinity=False), max_size=40), st.integers(1, 20))
def test_any_series_gives_at_most_width_block_or_blank_cells(
    values: list[float], width: int
) -> None:
    line = sparkline(values, width)
    assert len(line) == min(width, len(values))
    assert set(line) <= set(BLOCKS) | {" "}
