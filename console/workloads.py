"""What runs on a node, and whether a scheduler may place work there, across plugins.

Plugins never import each other; they meet in the Store. Scheduler plugins
(Slurm, Kubernetes, ...) publish, for each node they manage, readings with
these metric *suffixes* (the prefix is the plugin's name):

- ``<plugin>.allocation`` (str): the node's state in that scheduler, one of
  ``alloc``, ``mixed``, ``idle``, ``drain`` (draining: no new work, jobs still
  running), ``drained`` (no new work, nothing running), ``cordoned``, ``down``,
  ``not-ready``, ``ready``, ``unknown``.
- ``<plugin>.workloads`` (str): a short human list of what runs there
  (``job 81723 train-llm (alice); job 81799 eval``); ``""`` when nothing runs.
- ``<plugin>.drained`` (bool): True when that scheduler places no new work on
  the node *and* nothing of it runs there (what a GPU reset or a power cycle
  needs).
- ``<plugin>.reason`` (str): why the node is out of service there (a drain
  reason, a taint or condition), ``""`` when it is in service.
- ``<plugin>.reason_by`` (str): who set that reason (a user name), when known.
- ``<plugin>.reason_since`` (float): when it was set, epoch seconds, when known.

Other plugins read them through the functions below (for previews such as
"power cycle gpu007: job 81723 runs there", and for preconditions such as
"GPU reset needs the node drained").
"""

from __future__ import annotations

from dataclasses import dataclass

from console.plugin import Reading
from console.store import StoreView

ALLOCATION = ".allocation"
WORKLOADS = ".workloads"
DRAINED = ".drained"
REASON = ".reason"
REASON_BY = ".reason_by"
REASON_SINCE = ".reason_since"

OUT_OF_SERVICE = frozenset({"drain", "drained", "cordoned", "down", "not-ready"})
"""Allocations that mean the scheduler places no new work on the node."""


@dataclass(frozen=True, slots=True)
class SchedulerView:
    """One scheduler's view of one node."""

    scheduler: str
    """The plugin that published it (``slurm``, ``kubernetes``)."""
    allocation: str | None
    workloads: str | None
    drained: bool | None


def scheduler_views(store: StoreView, node: str) -> list[SchedulerView]:
    """Every scheduler's view of ``node``, sorted by scheduler name; empty if none manages it."""
    readings = store.readings_for(node)
    schedulers = sorted(
        {m.rsplit(".", 1)[0] for m in readings if m.endswith((ALLOCATION, WORKLOADS, DRAINED))}
    )
    views = []
    for name in schedulers:
        alloc = readings.get(name + ALLOCATION)
        work = readings.get(name + WORKLOADS)
        drained = readings.get(name + DRAINED)
        views.append(
            SchedulerView(
                name,
                alloc.value if alloc is not None and isinstance(alloc.value, str) else None,
                work.value if work is not None and isinstance(work.value, str) else None,
                drained.value if drained is not None and isinstance(drained.value, bool) else None,
            )
        )
    return views


def workloads_on(store: StoreView, node: str) -> list[str]:
    """Lines like ``slurm: job 81723 train-llm (alice)`` for previews; unknowns said so."""
    lines = []
    for view in scheduler_views(store, node):
        if view.workloads is None:
            lines.append(f"{view.scheduler}: what runs there is unknown")
        elif view.workloads:
            lines.append(f"{view.scheduler}: {view.workloads}")
    return lines


def drained_everywhere(store: StoreView, node: str) -> tuple[bool, str]:
    """Whether every scheduler managing ``node`` reports it drained, and why not.

    A node no scheduler manages counts as drained (nothing can be placed there
    by them); an unknown state does not.
    """
    for view in scheduler_views(store, node):
        if view.drained is None:
            return False, f"{view.scheduler}: drain state of {node} unknown"
        if not view.drained:
            state = view.allocation or "not drained"
            return False, f"{view.scheduler}: {node} is {state}, not drained"
    return True, ""


@dataclass(frozen=True, slots=True)
class ServiceReason:
    """Why one scheduler keeps a node out of service, as it published it."""

    node: str
    scheduler: str
    allocation: str | None
    reason: str | None
    """``None`` when not published (unknown); ``""`` when the scheduler gave none."""
    by: str | None
    since: float | None
    """Epoch seconds."""


def _text(readings: dict[str, Reading], metric: str) -> str | None:
    r = readings.get(metric)
    return r.value if r is not None and isinstance(r.value, str) else None


def service_reason(store: StoreView, node: str, scheduler: str) -> ServiceReason:
    """One scheduler's allocation and reason (who, since when) for ``node``."""
    readings = store.readings_for(node)
    since = readings.get(scheduler + REASON_SINCE)
    since_value = since.value if since is not None else None
    return ServiceReason(
        node,
        scheduler,
        _text(readings, scheduler + ALLOCATION),
        _text(readings, scheduler + REASON),
        _text(readings, scheduler + REASON_BY) or None,
        float(since_value)
        if isinstance(since_value, int | float) and not isinstance(since_value, bool)
        else None,
    )


def out_of_service(store: StoreView) -> list[ServiceReason]:
    """Every (node, scheduler) whose allocation is out of service, oldest reason first.

    Any scheduler plugin that follows the conventions above shows up; unknown
    times sort last.
    """
    found: list[ServiceReason] = []
    # By metric, not by target: a fleet holds hundreds of thousands of readings.
    for metric in store.metric_names():
        if not metric.endswith(ALLOCATION):
            continue
        for target, reading in store.by_metric(metric).items():
            if isinstance(reading.value, str) and reading.value in OUT_OF_SERVICE:
                found.append(service_reason(store, target, metric[: -len(ALLOCATION)]))
    found.sort(key=lambda s: (s.since is None, s.since or 0.0, s.node, s.scheduler))
    return found
