"""The lab's Kubernetes API server: an object store with resourceVersions and watches.

What it honours, as a kube-apiserver does (and kubernetes-asyncio expects):
- one resourceVersion counter; every change gets the next one; lists carry it;
- lists page with ``limit`` / ``continue``; field selectors ``spec.nodeName``,
  ``metadata.name``, ``metadata.namespace``, ``reason``, ``involvedObject.*``;
  label selectors ``key`` and ``key=value``;
- watches (``watch=True``: the client sends Python booleans) stream one JSON
  event per line from a resourceVersion, with BOOKMARKs when asked, end at
  ``timeoutSeconds``, and answer an ERROR event with a 410 Status when that
  resourceVersion is older than the kept history (compaction);
- errors are v1 Status bodies (401, 404, 409, 410, 429, 500, 503).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import copy
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from plugins.kubernetes.lab_objects import status

log = logging.getLogger(__name__)

HISTORY = 2000


def truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _field(obj: dict[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def selector(query: Any) -> Callable[[dict[str, Any]], bool]:
    """A predicate from ``fieldSelector`` and ``labelSelector`` (equality terms only)."""
    fields: list[tuple[str, str, bool]] = []
    for term in filter(None, (query.get("fieldSelector") or "").split(",")):
        neg = "!=" in term
        key, _, value = term.replace("!=", "=").replace("==", "=").partition("=")
        fields.append((key.strip(), value.strip(), neg))
    labels: list[tuple[str, str | None]] = []
    for term in filter(None, (query.get("labelSelector") or "").split(",")):
        key, eq, value = term.partition("=")
        labels.append((key.strip(), value.strip() if eq else None))

    def match(obj: dict[str, Any]) -> bool:
        for key, value, neg in fields:
            got = _field(obj, key)
            if ((got or "") == value) == neg:
                return False
        have = _field(obj, "metadata.labels") or {}
        for key, want in labels:
            if key not in have or (want is not None and have[key] != want):
                return False
        return True

    return match


@dataclass
class _Watcher:
    resource: str
    namespace: str | None
    match: Callable[[dict[str, Any]], bool]
    queue: asyncio.Queue[tuple[int, str, dict[str, Any]] | None] = field(
        default_factory=asyncio.Queue
    )


class ApiStore:
    """Objects by resource and key (``ns/name`` or ``name``), with history for watches."""

    def __init__(self, bookmark_s: float = 5.0) -> None:
        self.objects: dict[str, dict[str, dict[str, Any]]] = collections.defaultdict(dict)
        self.rv = 1000
        self.floor = self.rv
        """Watches from a resourceVersion below this get 410 Gone."""
        self.history: collections.deque[tuple[int, str, str, dict[str, Any]]] = collections.deque(
            maxlen=HISTORY
        )
        self.bookmark_s = bookmark_s
        self.watchers: list[_Watcher] = []
        self.down = False
        """``kubernetes.api_down``: every request answers 503."""
        self.requests: list[tuple[str, str]] = []

    @staticmethod
    def key(obj: dict[str, Any]) -> str:
        meta = obj["metadata"]
        ns = meta.get("namespace")
        return f"{ns}/{meta['name']}" if ns else meta["name"]

    def get(self, resource: str, key: str) -> dict[str, Any] | None:
        return self.objects[resource].get(key)

    def put(self, resource: str, obj: dict[str, Any], kind: str | None = None) -> dict[str, Any]:
        """Store (ADDED or MODIFIED) with the next resourceVersion; returns the stored copy."""
        key = self.key(obj)
        kind = kind or ("MODIFIED" if key in self.objects[resource] else "ADDED")
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[resource][key] = obj
        self._emit(resource, kind, obj)
        return obj

    def delete(self, resource: str, key: str) -> dict[str, Any] | None:
        obj = self.objects[resource].pop(key, None)
        if obj is None:
            return None
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._emit(resource, "DELETED", obj)
        return obj

    def _emit(self, resource: str, kind: str, obj: dict[str, Any]) -> None:
        if len(self.history) == self.history.maxlen:
            self.floor = self.history[0][0]
        self.history.append((self.rv, resource, kind, obj))
        for w in self.watchers:
            if w.resource == resource and self._visible(w, obj):
                w.queue.put_nowait((self.rv, kind, obj))

    @staticmethod
    def _visible(w: _Watcher, obj: dict[str, Any]) -> bool:
        if w.namespace is not None and obj["metadata"].get("namespace") != w.namespace:
            return False
        return w.match(obj)

    def compact(self) -> None:
        """A fresh watch cache (apiserver restart after compaction): every resourceVersion
        a client holds is now too old, so resuming a watch gets 410 and it must relist."""
        self.history.clear()
        self.rv += 1
        self.floor = self.rv

    def drop_watches(self) -> None:
        """End every open watch stream now (an apiserver restart, a load balancer reset)."""
        for w in self.watchers:
            w.queue.put_nowait(None)

    # ------------------------------------------------------------------ HTTP

    def list_response(
        self,
        request: web.Request,
        resource: str,
        kind: str,
        api_version: str,
        namespace: str | None,
    ) -> web.Response:
        match = selector(request.query)
        items = [
            o
            for k, o in sorted(self.objects[resource].items())
            if (namespace is None or o["metadata"].get("namespace") == namespace) and match(o)
        ]
        meta: dict[str, Any] = {"resourceVersion": str(self.rv)}
        start = 0
        token = request.query.get("continue")
        if token:
            try:
                state = json.loads(base64.b64decode(token))
                start, rv = int(state["start"]), int(state["rv"])
            except (ValueError, KeyError, TypeError):
                return web.json_response(status(400, "invalid continue token"), status=400)
            if rv < self.floor:
                return web.json_response(
                    status(
                        410,
                        "The provided continue parameter is too old to display a "
                        "consistent list result. You can start a new list without "
                        "the continue parameter.",
                    ),
                    status=410,
                )
        limit = int(request.query.get("limit") or 0)
        if limit > 0 and start + limit < len(items):
            nxt = {"start": start + limit, "rv": self.rv}
            meta["continue"] = base64.b64encode(json.dumps(nxt).encode()).decode()
            meta["remainingItemCount"] = len(items) - start - limit
            page = items[start : start + limit]
        else:
            page = items[start:]
        return web.json_response(
            {"kind": kind, "apiVersion": api_version, "metadata": meta, "items": page}
        )

    async def watch_response(
        self,
        request: web.Request,
        resource: str,
        kind: str,
        api_version: str,
        namespace: str | None,
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        raw_rv = request.query.get("resourceVersion") or "0"
        try:
            since = int(raw_rv)
        except ValueError:
            since = 0
        timeout = float(request.query.get("timeoutSeconds") or 1800)
        bookmarks = truthy(request.query.get("allowWatchBookmarks"))
        w = _Watcher(resource, namespace, selector(request.query))

        async def send(kind_: str, obj: dict[str, Any]) -> None:
            await resp.write((json.dumps({"type": kind_, "object": obj}) + "\n").encode())

        if since and since < self.floor:
            await send(
                "ERROR", status(410, f"too old resource version: {since} ({self.floor})", "Expired")
            )
            return resp
        if since == 0:  # "any": the current state as ADDED events first
            for o in list(self.objects[resource].values()):
                if self._visible(w, o):
                    await send("ADDED", o)
        else:
            for rv, res, kind_, o in list(self.history):
                if rv > since and res == resource and self._visible(w, o):
                    await send(kind_, o)
        self.watchers.append(w)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    async with asyncio.timeout(min(left, self.bookmark_s)):
                        item = await w.queue.get()
                except TimeoutError:
                    if bookmarks and loop.time() < deadline:
                        await send(
                            "BOOKMARK",
                            {
                                "kind": kind,
                                "apiVersion": api_version,
                                "metadata": {"resourceVersion": str(self.rv)},
                            },
                        )
                    continue
                if item is None:  # dropped: cut the connection without a clean end
                    if request.transport is not None:
                        request.transport.abort()
                    return resp
                await send(item[1], item[2])
        except ConnectionResetError:  # the client went away (aiohttp's error subclasses it)
            return resp
        finally:
            with contextlib.suppress(ValueError):
                self.watchers.remove(w)
        await resp.write_eof()
        return resp
