"""A ``Frame`` from an exporter's exposition, as Prometheus would answer a plan's queries.

For the pure mapping tests: evaluates the few PromQL shapes plans use
(``METRIC``, ``METRIC{resource=~"re"}``, ``METRIC == 1`` / ``> 0``, ``op by (k, ...) (that)``
with op max or sum, and ``timestamp(METRIC)``) over one scrape, with the target
labels a scrape adds (``instance``, ``job``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from console.sources.exposition import ExpoSample, Exposition
from console.sources.fleet import LIVE, Frame, PromPlan
from console.transports.prometheus import Sample

_BY = re.compile(r"^(max|sum) by \(([^)]*)\) \((.+)\)$")
_SEL = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(\w+)=~"([^"]*)"\})?(?:\s*(==|>)\s*(\S+))?$')


def _select(expo: Exposition, expr: str) -> list[ExpoSample]:
    m = _SEL.match(expr.strip())
    if m is None:
        raise ValueError(f"unsupported expression {expr!r}")
    name, label, pattern, op, rhs = m.groups()
    out = []
    for s in expo.family(name):
        if label and not re.fullmatch(pattern, s.labels.get(label, "")):
            continue
        if op == "==" and s.value != float(rhs):
            continue
        if op == ">" and not s.value > float(rhs):
            continue
        out.append(s)
    return out


def _num(value: float | None) -> float | None:
    """As the query client reads a value: NaN and infinities are unknown."""
    return value if value is not None and math.isfinite(value) else None


def evaluate(
    expo: Exposition, expr: str, target: Mapping[str, str], at: float, scraped: float
) -> list[Sample]:
    if expr.startswith("timestamp(") and expr.endswith(")"):
        return [Sample({**s.labels, **target}, at, scraped) for s in _select(expo, expr[10:-1])]
    m = _BY.match(expr)
    if m is None:
        return [
            Sample({"__name__": s.name, **s.labels, **target}, at, _num(s.value))
            for s in _select(expo, expr)
        ]
    op, keys, inner = m.group(1), [k.strip() for k in m.group(2).split(",")], m.group(3)
    groups: dict[tuple[str, ...], float] = {}
    for s in _select(expo, inner):
        labels = {**s.labels, **target}
        key = tuple(labels.get(k, "") for k in keys)
        old = groups.get(key)
        groups[key] = (
            s.value if old is None else (old + s.value if op == "sum" else max(old, s.value))
        )
    return [
        Sample({k: v for k, v in zip(keys, key, strict=True) if v}, at, _num(value))
        for key, value in groups.items()
    ]


def frame_of(
    plan: PromPlan,
    scrapes: Mapping[str, Exposition],
    *,
    at: float,
    scraped: float | None = None,
    job: str = "job",
    extra: Mapping[str, str] | None = None,
) -> Frame:
    """One refresh of ``plan`` over exporters' scrapes (instance -> exposition)."""
    samples: dict[str, list[Sample]] = {}
    for key, expr in plan.expressions().items():
        got: list[Sample] = []
        for instance, expo in scrapes.items():
            target = {"instance": instance, "job": job, **(extra or {})}
            got += evaluate(expo, expr, target, at, at if scraped is None else scraped)
        samples[key] = got
    return Frame(samples, at)


def values(readings: Any, target: str) -> dict[str, Any]:
    return {r.metric: r.value for r in readings if r.target == target}


__all__ = ["LIVE", "evaluate", "frame_of", "values"]
