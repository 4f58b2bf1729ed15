"""The Prometheus side of a fleet collector: which node a series is, one refresh, staleness.

A plugin declares a ``PromPlan`` (one PromQL expression per metric family, one
*liveness* metric whose sample timestamps date each entity, and optional
history expressions for ``query_range`` backfill); ``fetch`` runs one refresh
(every family at the same evaluation time, concurrently); the plugin's pure
mapping turns the samples into the same readings its direct collectors make.

Which node a series is (``NodeMatcher``), in order:

1. its ``instance`` label equals the node's declared exporter address
   (``exporters: {dcgm: "10.0.1.{num}:9400"}`` on the node group);
2. a host label the exporter sets (dcgm-exporter's ``Hostname``, or any the plugin
   names) equals the node name, or its first DNS label does
   (``gpu001.site.example`` is ``gpu001``);
3. the host part of ``instance`` (without the port) equals the node name or its
   first DNS label, or an address only that node has (its SSH host, its BMC).

A series that matches no node is ignored (and counted in ``Frame.unmatched``).

Staleness: Prometheus drops a series that its exporter stopped reporting (a
staleness marker) or whose target is down; a sample older than
``stale_after_s`` (remote-write setups keep the last value for 5 minutes) is
treated the same. Either way the entity is *absent*: its readings become
unknown, dated at its last sample (``console.plugin.Absent``), never 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from console.plugin import Absent
from console.transports.prometheus import InstantResult, PromClient, Sample

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory

log = logging.getLogger(__name__)

LIVE = "__live__"
"""The family key of the liveness query (``timestamp(<liveness metric>)``)."""


def by(metric: str, keys: Sequence[str], op: str = "max") -> str:
    """``max by (instance, gpu) (METRIC)``: one series per entity, only the key labels kept
    (a fleet-sized answer is then a third of the raw series' bytes)."""
    return f"{op} by ({', '.join(keys)}) ({metric})"


@dataclass(frozen=True, slots=True)
class PromPlan:
    """What a plugin asks Prometheus at each refresh."""

    exporter: str
    """The exporter's name in a node's ``exporters:`` (``dcgm``, ``ipmi``, ``node``)."""
    families: Mapping[str, str]
    """Family key (a metric name) -> PromQL expression."""
    liveness: str
    """A plain metric whose ``timestamp()`` dates each entity (and carries all its labels)."""
    history: Mapping[str, str] = field(default_factory=dict)
    """Store metric -> PromQL expression, backfilled with query_range at the first refresh."""

    def expressions(self) -> dict[str, str]:
        """Every instant query of one refresh, by key (the liveness query included)."""
        return {**self.families, LIVE: f"timestamp({self.liveness})"}


@dataclass(slots=True)
class Frame:
    """One refresh's answers: samples by family key, at one evaluation time."""

    samples: dict[str, list[Sample]]
    at: float
    history: dict[str, list[tuple[Mapping[str, str], tuple[tuple[float, float | None], ...]]]] = (
        field(default_factory=dict)
    )
    warnings: tuple[str, ...] = ()
    unmatched: int = 0

    def family(self, key: str) -> list[Sample]:
        return self.samples.get(key, [])


_BACKFILLED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
"""Per console (its Transports object): the collectors that have backfilled history."""


async def fetch(
    client: PromClient,
    plan: PromPlan,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 - sent to Prometheus as well
    backfill: tuple[Any, str, float, int] | None = None,
) -> Frame:
    """One refresh: every family (and the liveness query) at the same evaluation time.

    ``backfill`` = (owner, collector id, step, points): the first time an owner (the
    console's transports) runs this collector, the plan's history expressions are read
    with query_range too. Any query's error raises (the collector then failed).
    """
    at = time.time()
    instant = client.query_many(plan.expressions(), timeout=timeout)
    ranges: dict[str, Any] = {}
    if backfill is not None and plan.history:
        owner, cid, step, points = backfill
        done = _BACKFILLED.setdefault(owner, set())
        if cid not in done and points > 0:
            start = at - step * points
            ranges = {
                m: client.query_range(e, start=start, end=at - step, step=step, timeout=timeout)
                for m, e in plan.history.items()
            }
    keys = list(ranges)
    got = await asyncio.gather(instant, *(ranges[k] for k in keys))
    results: dict[str, InstantResult] = got[0]
    frame = Frame({k: list(r.samples) for k, r in results.items()}, at)
    frame.warnings = tuple(w for r in results.values() for w in r.warnings)
    for k, rr in zip(keys, got[1:], strict=True):
        frame.history[k] = [(s.labels, s.points) for s in rr.series]
    if keys and backfill is not None:
        _BACKFILLED.setdefault(backfill[0], set()).add(backfill[1])
    if frame.warnings:
        log.info("%s warned: %s", client.where, "; ".join(frame.warnings[:3]))
    return frame


# --------------------------------------------------------------------------- nodes


def _first_label(host: str) -> str:
    """``gpu001.site.example`` -> ``gpu001``; an IP address stays whole."""
    if host.replace(".", "").isdigit() or ":" in host:
        return host
    return host.split(".", 1)[0]


def instance_host(instance: str) -> str:
    """``10.0.0.1:9400`` -> ``10.0.0.1``; ``[fe80::1]:9100`` -> ``fe80::1``; no port: itself."""
    if instance.startswith("["):
        return instance[1 : instance.find("]")] if "]" in instance else instance
    if instance.count(":") == 1:
        return instance.rsplit(":", 1)[0]
    return instance


class NodeMatcher:
    """Maps a series' labels to an inventory node (the rule is in the module's docstring)."""

    def __init__(
        self,
        inventory: Inventory,
        exporter: str,
        host_labels: Sequence[str] = (),
        nodes: Iterable[str] | None = None,
    ) -> None:
        wanted = set(nodes) if nodes is not None else set(inventory.nodes)
        self.host_labels = tuple(host_labels)
        self._declared: dict[str, str] = {}
        self._names: dict[str, str] = {}
        addresses: dict[str, set[str]] = defaultdict(set)
        for name, node in inventory.nodes.items():
            if name not in wanted:
                continue
            declared = node.exporters.get(exporter)
            if declared:
                self._declared[declared] = name
            self._names[name.lower()] = name
            addresses[node.ssh.host.lower()].add(name)
            if node.bmc is not None:
                addresses[node.bmc.address.lower()].add(name)
        # An address several nodes share (the lab's 127.0.0.1, a jump host) names none.
        self._addresses = {a: next(iter(ns)) for a, ns in addresses.items() if len(ns) == 1}
        self._cache: dict[tuple[str, ...], str | None] = {}

    def _by_name(self, host: str) -> str | None:
        low = host.lower()
        return self._names.get(low) or self._names.get(_first_label(low))

    def node_of(self, labels: Mapping[str, str]) -> str | None:
        instance = labels.get("instance", "")
        key = (instance, *(labels.get(h, "") for h in self.host_labels))
        if key in self._cache:
            return self._cache[key]
        found = self._declared.get(instance) if instance else None
        for h in self.host_labels:
            if found is None and labels.get(h):
                found = self._by_name(labels[h])
        if found is None and instance:
            host = instance_host(instance)
            found = self._by_name(host) or self._addresses.get(host.lower())
        if len(self._cache) < 200_000:
            self._cache[key] = found
        return found


# --------------------------------------------------------------------------- grouping


def group(
    samples: Iterable[Sample],
    matcher: NodeMatcher,
    key_labels: Sequence[str],
    pick: str = "max",
) -> tuple[dict[tuple[str, ...], float | None], int]:
    """Samples by (node, *key label values); several per key (MIG instances) -> max or sum.

    Returns the map and how many samples matched no node.
    """
    out: dict[tuple[str, ...], float | None] = {}
    unmatched = 0
    for s in samples:
        node = matcher.node_of(s.labels)
        if node is None:
            unmatched += 1
            continue
        key = (node, *(s.labels.get(k, "") for k in key_labels))
        old = out.get(key)
        if key not in out or old is None:
            out[key] = s.value
        elif s.value is not None:
            out[key] = old + s.value if pick == "sum" else max(old, s.value)
    return out, unmatched


def liveness(
    samples: Iterable[Sample], matcher: NodeMatcher, key_labels: Sequence[str]
) -> tuple[dict[tuple[str, ...], tuple[float, Mapping[str, str]]], int]:
    """From ``timestamp(metric)``: (node, *keys) -> (newest sample time, that series' labels)."""
    out: dict[tuple[str, ...], tuple[float, Mapping[str, str]]] = {}
    unmatched = 0
    for s in samples:
        node = matcher.node_of(s.labels)
        if node is None or s.value is None:
            unmatched += node is None
            continue
        key = (node, *(s.labels.get(k, "") for k in key_labels))
        if key not in out or s.value > out[key][0]:
            out[key] = (s.value, s.labels)
    return out, unmatched


NO_SERIES = "no series in Prometheus"


def no_series(
    target: str, metrics: Sequence[str], last_seen: float | None, node: str | None
) -> Absent:
    """``metrics`` of ``target`` gone from Prometheus: unknown, dated at ``last_seen``."""
    return Absent(target, tuple(metrics), NO_SERIES, last_seen, node, "prometheus")


def no_series_error(exporter: str, what: str) -> str:
    """The status error of a target with no current series (``what``: ``gpu001``)."""
    return f"no current series from {exporter} for {what} in Prometheus"


def age_word(seconds: float) -> str:
    s = max(0.0, seconds)
    return f"{s:.0f}s" if s < 120 else f"{s / 60:.0f}m" if s < 7200 else f"{s / 3600:.0f}h"


# --------------------------------------------------------------------------- absent: when last seen

LOOKUP_WINDOW_S = 600.0
"""How far back the last sample of something absent is looked for."""
MAX_LOOKUPS = 20
"""Nodes whose absent series are dated per refresh (each one query, once per console)."""
NEVER = -1.0

_SEEN: weakref.WeakKeyDictionary[Any, dict[str, dict[str, float]]] = weakref.WeakKeyDictionary()


def seen_book(owner: Any, collector: str) -> dict[str, float]:
    """Per console (owner: its Transports) and collector: Store target -> last sample time
    (``NEVER``: looked up, none within ``LOOKUP_WINDOW_S``)."""
    return _SEEN.setdefault(owner, {}).setdefault(collector, {})


def selector(matcher: NodeMatcher, node: str, inventory: Inventory, exporter: str) -> str:
    """Label matchers that select ``node``'s series (the NodeMatcher's rule, as PromQL)."""
    n = inventory.nodes.get(node)
    declared = n.exporters.get(exporter) if n is not None else None
    if declared:
        return f'instance="{_quote(declared)}"'
    name = _regex_quote(node)
    if matcher.host_labels:
        return f'{matcher.host_labels[0]}=~"(?i){name}(\\\\..*)?"'
    return f'instance=~"(?i){name}(\\\\..*)?(:[0-9]+)?"'


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _regex_quote(text: str) -> str:
    out = "".join("\\\\" + c if c in ".^$*+?()[]{}|\\" else c for c in text)
    return out.replace('"', '\\"')


async def date_absent(
    client: PromClient,
    absent: Sequence[Any],
    *,
    owner: Any,
    collector: str,
    metric: str,
    selectors: Mapping[str, str],
    target_of: Any,
) -> list[Any]:
    """``absent`` (``console.plugin.Absent``) with ``last_seen`` filled from Prometheus.

    For what this console never saw, the raw samples of ``metric`` over the lookup window
    are read (``metric{<node selector>}[10m]``: each sample with its own timestamp), one
    query per node, at most ``MAX_LOOKUPS`` nodes per refresh and once per console.
    ``target_of(node, labels)`` names the Store target a series belongs to (None: skip).
    """
    from dataclasses import replace

    book = seen_book(owner, collector)
    todo: dict[str, list[Any]] = {}
    out: list[Any] = []
    for a in absent:
        known = book.get(a.target)
        if a.last_seen is None and known is None and a.node in selectors:
            todo.setdefault(a.node, []).append(a)
        elif a.last_seen is None and known is not None and known != NEVER:
            out.append(replace(a, last_seen=known))
        else:
            out.append(a)
    nodes = list(todo)[:MAX_LOOKUPS]
    window = f"{LOOKUP_WINDOW_S:.0f}s"
    results = await asyncio.gather(
        *(client.query(f"{metric}{{{selectors[n]}}}[{window}]") for n in nodes),
        return_exceptions=True,
    )
    for node, result in zip(nodes, results, strict=True):
        last: dict[str, float] = {}
        if not isinstance(result, BaseException):
            for series in result.series:
                if not series.points:
                    continue
                ts = series.points[-1][0]
                target = target_of(node, series.labels)
                for t in (target, node):
                    if t is not None:
                        last[t] = max(last.get(t, 0.0), ts)
        for a in todo[node]:
            found = last.get(a.target)
            if not isinstance(result, BaseException):
                book[a.target] = found if found is not None else NEVER
            out.append(replace(a, last_seen=found) if found is not None else a)
    for node in list(todo)[MAX_LOOKUPS:]:
        out += todo[node]
    return out


def remember(owner: Any, collector: str, seen: Mapping[str, float]) -> None:
    """Record the last sample time of what this refresh found (so a later absence is
    dated without a lookup)."""
    seen_book(owner, collector).update(seen)


# --------------------------------------------------------------------------- tests, benchmarks


def frame_from_expositions(
    texts: Mapping[str, str],
    plan: PromPlan,
    *,
    at: float,
    job: str = "lab",
    aliases: Mapping[str, Sequence[str]] | None = None,
    strict: bool = False,
) -> Frame:
    """The Frame Prometheus would answer ``plan`` with right after scraping these
    expositions (``instance -> text``), for testing mappings on real exporter output.

    Each family key is answered by the samples of the metric of that name (or its
    ``aliases``) with ``instance``/``job`` added, unaggregated (a mapping groups by its key
    labels anyway); server-side label filters in the expressions are not applied. The
    liveness query's answer dates every sample of the liveness metric at ``at``.
    """
    from console.sources.exposition import parse_exposition

    by_name: dict[str, list[Sample]] = defaultdict(list)
    for instance, text in texts.items():
        for s in parse_exposition(text, strict=strict).samples:
            labels = {"__name__": s.name, **s.labels, "instance": instance, "job": job}
            value = (
                None if s.value != s.value or s.value in (float("inf"), float("-inf")) else s.value
            )
            by_name[s.name].append(Sample(labels, at, value))
    samples: dict[str, list[Sample]] = {}
    for key in plan.families:
        names = (key, *((aliases or {}).get(key, ())))
        samples[key] = [s for n in names for s in by_name.get(n, [])]
    samples[LIVE] = [
        Sample({k: v for k, v in s.labels.items() if k != "__name__"}, at, at)
        for s in by_name.get(plan.liveness, [])
    ]
    return Frame(samples, at)
