"""Draining a node as ``kubectl drain`` does: cordon, then evict, respecting PDBs.

Evictions go through the Eviction API (policy/v1), so PodDisruptionBudgets
hold: a 429 is reported as ``blocked by PDB <ns>/<name>`` and retried with
backoff until the drain's own timeout; then the drain stops, the node stays
cordoned, and the report names every pod that could not be evicted and why.
DaemonSet-managed and mirror pods are left alone; pods without a controller or
with emptyDir data are refused unless asked (``force``, ``delete_emptydir_data``).
Deleting instead of evicting (``disable_eviction``) bypasses PDBs and is never
the default.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plugins.kubernetes import progress, sdk
from plugins.kubernetes.client import raw_json, status_of
from plugins.kubernetes.parse_pods import PodInfo, parse_pod, parse_pod_list
from plugins.kubernetes.state import evictable

if TYPE_CHECKING:  # pragma: no cover
    from kubernetes_asyncio import client

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0
POLL = 0.25


@dataclass(frozen=True, slots=True)
class DrainPlan:
    evict: tuple[PodInfo, ...]
    skipped: tuple[PodInfo, ...]
    """DaemonSet-managed and mirror pods (kubectl leaves them too)."""
    refused: tuple[str, ...]
    """Why kubectl would refuse (unmanaged pods, emptyDir data), one line each."""


def plan_drain(pods: list[PodInfo], force: bool, delete_emptydir_data: bool) -> DrainPlan:
    evict = [p for p in pods if evictable(p)]
    skipped = [p for p in pods if not evictable(p) and not p.terminated]
    refused = []
    bare = [p.key for p in evict if p.owner_kind is None]
    if bare and not force:
        refused.append(
            f"pods not managed by a controller (they would not come back): "
            f"{', '.join(bare)}; set force to delete them"
        )
    local = [p.key for p in evict if p.empty_dir]
    if local and not delete_emptydir_data:
        refused.append(
            f"pods with emptyDir data (lost on eviction): {', '.join(local)}; "
            f"set delete_emptydir_data to go on"
        )
    return DrainPlan(tuple(evict), tuple(skipped), tuple(refused))


async def pods_on(v1: client.CoreV1Api, node: str, limit_s: float) -> list[PodInfo]:
    data = await raw_json(
        v1.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={node}", _preload_content=False, _request_timeout=limit_s
        )
    )
    return parse_pod_list(data)[0]


@dataclass
class _PodDrain:
    pod: PodInfo
    next_try: float = 0.0
    delay: float = 0.0
    evicted: bool = False
    gone: bool = False
    why: str = ""


@dataclass
class DrainResult:
    node: str
    total: int = 0
    gone: list[str] = field(default_factory=list)
    stuck: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.stuck

    def report(self, timeout: float) -> str:
        if self.ok:
            return f"{self.node} drained: {len(self.gone)} pods evicted in {self.seconds:.1f}s"
        why = "; ".join(f"{k} {v}" for k, v in sorted(self.stuck.items()))
        return (
            f"drain of {self.node} stopped after {timeout:g}s, node left cordoned: "
            f"{len(self.gone)} of {self.total} pods evicted; could not evict {why}"
        )


async def evict_all(
    v1: client.CoreV1Api,
    node: str,
    inventory_node: str,
    pods: list[PodInfo],
    *,
    give_up_s: float,
    retry_s: float,
    request_timeout: float,
    grace: int | None,
    disable_eviction: bool,
) -> DrainResult:
    """Evict (or delete) ``pods`` until all are gone or ``timeout`` passes."""
    started = time.monotonic()
    deadline = started + give_up_s
    prog = progress.running(inventory_node) or progress.begin(inventory_node)
    prog.phase = "evicting"
    prog.total = len(pods)
    states = {p.key: _PodDrain(p) for p in pods}
    result = DrainResult(inventory_node, total=len(pods))
    while True:
        now = time.monotonic()
        for st in states.values():
            if st.gone or st.evicted or st.next_try > now:
                continue
            await _try_evict(v1, st, grace, disable_eviction, request_timeout)
            prog.attempts += 1
            if st.evicted or st.gone:
                prog.evicted += 1
                prog.blocked.pop(st.pod.key, None)
                prog.note(f"{st.pod.key}: {'deleted' if disable_eviction else 'evicted'}")
            else:
                st.delay = min(MAX_BACKOFF, st.delay * 2 if st.delay else retry_s)
                st.next_try = now + st.delay
                prog.blocked[st.pod.key] = st.why
                prog.note(f"{st.pod.key}: {st.why}; retry in {st.delay:g}s")
        for st in states.values():
            if st.evicted and not st.gone:
                st.gone = await _is_gone(v1, st.pod, request_timeout)
        prog.gone = sum(1 for st in states.values() if st.gone)
        if all(st.gone for st in states.values()) or time.monotonic() >= deadline:
            break
        await asyncio.sleep(POLL)
    result.seconds = time.monotonic() - started
    for key, st in states.items():
        if st.gone:
            result.gone.append(key)
        elif st.evicted:
            result.stuck[key] = "still terminating (evicted; its node must confirm)"
        else:
            result.stuck[key] = st.why or "not evicted"
    return result


async def _try_evict(
    v1: client.CoreV1Api,
    st: _PodDrain,
    grace: int | None,
    disable_eviction: bool,
    request_timeout: float,
) -> None:
    pod = st.pod
    options: dict[str, Any] = {"preconditions": {"uid": pod.uid}} if pod.uid else {}
    if grace is not None:
        options["gracePeriodSeconds"] = grace
    try:
        if disable_eviction:
            await v1.delete_namespaced_pod(
                pod.name,
                pod.namespace,
                body=options,  # type: ignore[arg-type]
                _request_timeout=request_timeout,
            )
        else:
            body = {
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": {"name": pod.name, "namespace": pod.namespace},
                "deleteOptions": options,
            }
            await v1.create_namespaced_pod_eviction(
                pod.name,
                pod.namespace,
                body,  # type: ignore[arg-type]
                _request_timeout=request_timeout,
            )
        st.evicted = True
    except sdk.ApiException as exc:
        status = status_of(exc)
        if exc.status == 404 or exc.status == 409:
            st.gone = True
        else:
            st.why = status.pdb_block(pod.namespace) or (
                f"eviction answered {exc.status} {status.reason or exc.reason}: "
                f"{status.message or ''}".rstrip(": ")
            )
    except (TimeoutError, OSError) as exc:
        st.why = f"no answer to the eviction ({type(exc).__name__})"


async def _is_gone(v1: client.CoreV1Api, pod: PodInfo, request_timeout: float) -> bool:
    try:
        data = await raw_json(
            v1.read_namespaced_pod(
                pod.name, pod.namespace, _preload_content=False, _request_timeout=request_timeout
            )
        )
    except sdk.ApiException as exc:
        gone: bool = exc.status == 404
        return gone
    except (TimeoutError, OSError):
        return False
    return parse_pod(data).uid != pod.uid
