"""Sparklines: a short history as block characters (``▁▂▃▅▆▇``), for cells and cards."""

from __future__ import annotations

import math
from collections.abc import Sequence

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 8, *, floor: float | None = None) -> str:
    """The last ``width`` values scaled between their min (or ``floor``) and max.

    Unknown values (NaN) are blanks, so a gap in the data shows as a gap; a flat
    series draws at the bottom rather than inventing a variation.
    """
    tail = list(values)[-width:]
    known = [v for v in tail if not math.isnan(v)]
    if not known:
        return " " * len(tail)
    low = min(known) if floor is None else min(floor, min(known))
    high = max(known)
    span = high - low
    out = []
    for v in tail:
        if math.isnan(v):
            out.append(" ")
        elif span <= 0:
            out.append(BLOCKS[0])
        else:
            frac = (v - low) / span
            if not math.isfinite(frac):  # a span past float range: halves are all we can say
                frac = 1.0 if v >= low / 2 + high / 2 else 0.0
            out.append(BLOCKS[min(len(BLOCKS) - 1, max(0, int(frac * len(BLOCKS))))])
    return "".join(out)
