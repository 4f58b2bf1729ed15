"""Keeping a cluster's state current: list, then watch from the list's resourceVersion.

Per resource (nodes, pods, FailedScheduling events): list (paged), then watch
with bookmarks from the list's resourceVersion; a watch that ends (server
timeout, dropped connection, silence past the read timeout) is resumed from
the last resourceVersion seen (events or bookmarks); a ``410 Gone`` (history
compacted) means relist. Any other failure (API down, auth) stops all three,
records the error (the collector then fails: the panes go stale) and retries
with backoff, relisting everything.

One watcher per cluster and event loop, started by the collector's first run
and stopped when nobody asked for its state for a while (or by ``stop_all``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp

from plugins.kubernetes import sdk
from plugins.kubernetes.client import api_client, raw_json
from plugins.kubernetes.config import ClusterRef, KubernetesConfig
from plugins.kubernetes.parse import ParseError, items_of
from plugins.kubernetes.parse_events import parse_event
from plugins.kubernetes.parse_nodes import parse_node
from plugins.kubernetes.parse_pods import parse_pod
from plugins.kubernetes.state import ClusterState

if TYPE_CHECKING:  # pragma: no cover
    from kubernetes_asyncio import client

log = logging.getLogger(__name__)

RESOURCES = ("nodes", "pods", "events")
PAGE = 500
IDLE_STOP_S = 60.0
"""A watcher nobody read for this long stops (its console went away)."""
BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class _Idle(Exception):
    pass


class ClusterWatcher:
    """Lists and watches one cluster into a ``ClusterState``."""

    def __init__(
        self, ref: ClusterRef, cfg: KubernetesConfig, idle_stop_s: float = IDLE_STOP_S
    ) -> None:
        self.ref = ref
        self.cfg = cfg
        self.idle_stop_s = idle_stop_s
        self.state = ClusterState()
        self.synced = asyncio.Event()
        self.error: str | None = None
        self.error_since: float | None = None
        self.resource_versions: dict[str, str | None] = {}
        self.relists = 0
        """Lists after the first (410 Gone, reconnects): how often we resynced."""
        self.rewatches = 0
        """Watches resumed from a resourceVersion after one ended."""
        self.bookmarks = 0
        self.last_used = time.monotonic()
        self.loop = asyncio.get_running_loop()
        self._listed: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name=f"k8s-watch:{self.ref.name}")

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    def touch(self) -> None:
        self.last_used = time.monotonic()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    # ------------------------------------------------------------------ loops

    async def _supervise(self) -> None:
        failures = 0
        while True:
            api: client.ApiClient | None = None
            error: BaseException | None = None
            try:
                api = await api_client(self.ref)
                async with asyncio.TaskGroup() as group:
                    for kind in RESOURCES:
                        group.create_task(self._resource(api, kind))
                    group.create_task(self._idle_watchdog())
            except* _Idle:
                log.info("kubernetes watcher for %s stops: idle", self.ref.name)
                error = _Idle()
            except* Exception as eg:
                error = eg.exceptions[0]
            finally:
                if api is not None:
                    with contextlib.suppress(Exception):
                        await api.close()
            if isinstance(error, _Idle):
                return
            if error is not None:
                failures += 1
                self._fail(error)
            self._listed.clear()
            await asyncio.sleep(BACKOFF[min(max(failures, 1) - 1, len(BACKOFF) - 1)])

    def _fail(self, exc: BaseException) -> None:
        if isinstance(exc, sdk.ApiException):
            text = f"API answered {exc.status} {exc.reason}"
        elif isinstance(exc, TimeoutError):
            text = "no answer from the API in time"
        else:
            text = str(exc) or type(exc).__name__
        if self.error is None:
            self.error_since = time.monotonic()
        self.error = f"{self.ref.name}: {text}"
        log.warning("kubernetes watch of %s failed: %s", self.ref.name, text)

    async def _idle_watchdog(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, self.idle_stop_s))
            if time.monotonic() - self.last_used > self.idle_stop_s:
                raise _Idle

    def _call(self, api: client.ApiClient, kind: str) -> tuple[Callable[..., Any], dict[str, Any]]:
        v1 = sdk.client.CoreV1Api(api)
        if kind == "nodes":
            return v1.list_node, {}
        if kind == "pods":
            return v1.list_pod_for_all_namespaces, {}
        return v1.list_event_for_all_namespaces, {"field_selector": "reason=FailedScheduling"}

    async def _resource(self, api: client.ApiClient, kind: str) -> None:
        while True:
            rv = await self._list(api, kind)
            try:
                while True:
                    rv = await self._watch(api, kind, rv)
                    self.rewatches += 1
            except sdk.ApiException as exc:
                if exc.status != 410:
                    raise
                log.info("kubernetes %s watch of %s: 410 Gone, relisting", kind, self.ref.name)
            self.relists += 1

    async def _list(self, api: client.ApiClient, kind: str) -> str | None:
        func, kwargs = self._call(api, kind)
        items: list[Any] = []
        token: str | None = None
        rv: str | None = None
        while True:
            extra = {"_continue": token} if token else {}
            data = await raw_json(
                func(
                    limit=PAGE,
                    _preload_content=False,
                    _request_timeout=self.cfg.request_timeout_s,
                    **kwargs,
                    **extra,
                )
            )
            page, rv, token = items_of(data, kind[:-1].capitalize())
            items += page
            if not token:
                break
        parsed: list[Any] = []
        parse = {"nodes": parse_node, "pods": parse_pod, "events": parse_event}[kind]
        for item in items:
            try:
                parsed.append(parse(item))
            except ParseError as exc:
                log.warning(
                    "kubernetes %s list of %s: skipped an object: %s", kind, self.ref.name, exc
                )
        getattr(self.state, f"replace_{kind}")(parsed)
        self.resource_versions[kind] = rv
        self._listed.add(kind)
        if self._listed >= set(RESOURCES):
            self.error = self.error_since = None
            self.synced.set()
        return rv

    async def _watch(self, api: client.ApiClient, kind: str, rv: str | None) -> str | None:
        """One watch request; returns the resourceVersion to resume from."""
        func, kwargs = self._call(api, kind)
        w = sdk.watch.Watch(return_type="object")
        apply = getattr(self.state, f"apply_{kind[:-1]}")
        parse = {"nodes": parse_node, "pods": parse_pod, "events": parse_event}[kind]
        try:
            stream = w.stream(
                func,
                resource_version=rv,
                timeout_seconds=self.cfg.watch_timeout_s,
                allow_watch_bookmarks=True,
                _request_timeout=(self.cfg.request_timeout_s, self.cfg.read_timeout_s),
                **kwargs,
            )
            async for event in stream:
                etype = event.get("type")
                if etype == "BOOKMARK":
                    self.bookmarks += 1
                    continue
                try:
                    apply(etype, parse(event.get("raw_object")))
                except ParseError as exc:
                    log.warning("kubernetes %s watch: skipped an event: %s", kind, exc)
        except TimeoutError:
            log.info("kubernetes %s watch of %s went silent; resuming", kind, self.ref.name)
        except (
            aiohttp.ClientPayloadError,
            aiohttp.ServerDisconnectedError,
            ConnectionResetError,
        ) as exc:
            # The stream was cut (apiserver restart, proxy reset): resume from the last
            # resourceVersion; a 410 on the next watch then means relist.
            log.info(
                "kubernetes %s watch of %s dropped (%s); resuming",
                kind,
                self.ref.name,
                type(exc).__name__,
            )
        finally:
            await w.close()
        rv = w.resource_version or rv
        self.resource_versions[kind] = rv
        return rv


# --------------------------------------------------------------------------- registry

_WATCHERS: dict[str, ClusterWatcher] = {}


def watcher_for(ref: ClusterRef, cfg: KubernetesConfig) -> ClusterWatcher:
    """The running watcher of ``ref`` in this event loop, started if needed."""
    loop = asyncio.get_running_loop()
    w = _WATCHERS.get(ref.key)
    if w is None or w.done or w.loop is not loop:
        w = _WATCHERS[ref.key] = ClusterWatcher(ref, cfg)
        w.start()
    w.touch()
    return w


def current(name: str) -> ClusterWatcher | None:
    """The live watcher of the cluster called ``name``, if one runs (for target lists)."""
    for w in _WATCHERS.values():
        if w.ref.name == name and not w.done:
            return w
    return None


async def stop_all() -> None:
    """Stop every watcher (tests; the console's end)."""
    watchers = list(_WATCHERS.values())
    _WATCHERS.clear()
    for w in watchers:
        if w.loop is asyncio.get_running_loop():
            await w.stop()
