"""The lab's highly available services: VIPs, gateways, and MinIO with replication lag.

A check with ``backends`` is an address served by other checks' services:

- ``failover`` (a VIP, MinIO site replication): one member holds it, the first
  one up in order. When the holder is lost the address does not answer until a
  surviving member takes it over ``takeover_s`` later (keepalived's advert
  timeout, a DNS TTL); when the first member is back it takes the address
  back at once (preemption).
- ``balance`` (a gateway): it answers while any member does, and says "no
  peer" (503) when none does.

MinIO checks keep objects (a small S3: create bucket, put, get, ListObjectsV2,
SigV4-verified). Members of a failover group replicate each write to the
others ``replication_lag_s`` later, asynchronously: a write still queued when
its source dies is missing on the survivor until the source comes back. That
is the data a real failover loses, and what a drill's RPO measures.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from plugins.services.config import ServiceCheck
from plugins.services.s3 import error_xml, verify

S3_SERVICES = ("minio", "minio-cluster")
LAB_ACCESS_KEY = "dcc-lab"


@dataclass(slots=True)
class Holder:
    """Who holds a failover address now."""

    member: str | None = None
    lost_at: float | None = None
    lost: str = ""
    """The member that held it before it was lost."""
    started: bool = False


@dataclass(slots=True)
class Queued:
    due: float
    src: str
    dst: str
    bucket: str
    key: str
    data: bytes
    mtime: float


@dataclass(slots=True)
class HaLab:
    takeover_s: float
    replication_lag_s: float
    is_up: Callable[[ServiceCheck], bool]
    checks: dict[str, ServiceCheck] = field(default_factory=dict)
    holders: dict[str, Holder] = field(default_factory=dict)
    takeovers: list[tuple[str, str, str, float]] = field(default_factory=list)
    """(address, from, to, lab time) of every takeover, for tests and the demo log."""
    objects: dict[str, dict[str, dict[str, tuple[bytes, float]]]] = field(default_factory=dict)
    """check -> bucket -> key -> (data, mtime)."""
    queue: list[Queued] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    """access key -> secret key the lab's MinIOs accept."""

    def configure(self, checks: dict[str, ServiceCheck]) -> None:
        self.checks = checks
        for check in checks.values():
            if check.backends is not None and check.backends.mode == "failover":
                self.holders[check.name] = Holder()
            if self.stores_objects(check):
                self.objects.setdefault(check.name, {})

    @staticmethod
    def stores_objects(check: ServiceCheck) -> bool:
        return check.backends is None and (check.service in S3_SERVICES or check.s3 is not None)

    def speaks_s3(self, check: ServiceCheck) -> bool:
        if check.backends is None:
            return self.stores_objects(check)
        return any(self.stores_objects(self.checks[m]) for m in check.backends.members)

    # ------------------------------------------------------------------ routing

    def _up(self, name: str) -> bool:
        check = self.checks.get(name)
        return check is not None and self.is_up(check)

    def serving(self, check: ServiceCheck, now: float) -> list[str]:
        """The members that answer for ``check`` now ([] : nobody; itself without backends)."""
        if check.backends is None:
            return [check.name]
        members = check.backends.members
        if check.backends.mode == "balance":
            return [m for m in members if self._up(m)]
        h = self.holders[check.name]
        first_up = next((m for m in members if self._up(m)), None)
        if not h.started:
            h.started, h.member = True, first_up
        if h.member is not None and not self._up(h.member):
            h.lost, h.lost_at = h.member, now
            h.member = None
        if h.member is None and h.lost and self._up(h.lost):
            h.member, h.lost_at = h.lost, None  # back before anyone took over: it keeps it
        if h.member is None:
            if h.lost_at is None:
                h.lost_at = now
            elif first_up is not None and now - h.lost_at >= self.takeover_s:
                self.takeovers.append((check.name, h.lost or "?", first_up, now))
                h.member, h.lost_at = first_up, None
        elif members[0] != h.member and self._up(members[0]):
            h.member = members[0]  # preemption: the preferred member takes it back
        return [] if h.member is None else [h.member]

    def tick(self, now: float) -> None:
        for name in self.holders:
            self.serving(self.checks[name], now)
        self.replicate(now)

    # ------------------------------------------------------------------ objects

    def peers(self, name: str) -> list[str]:
        """The members that replicate with ``name`` (its failover groups)."""
        out: list[str] = []
        for check in self.checks.values():
            b = check.backends
            if b is not None and b.mode == "failover" and name in b.members:
                out += [m for m in b.members if m != name and m in self.objects and m not in out]
        return out

    def put(self, store: str, bucket: str, key: str, data: bytes, now: float) -> None:
        self.objects[store].setdefault(bucket, {})[key] = (data, now)
        for peer in self.peers(store):
            self.queue.append(
                Queued(now + self.replication_lag_s, store, peer, bucket, key, data, now)
            )

    def replicate(self, now: float) -> None:
        """Apply the queued copies that are due, while source and destination are up."""
        left: list[Queued] = []
        for q in self.queue:
            if q.due <= now and self._up(q.src) and self._up(q.dst):
                self.objects[q.dst].setdefault(q.bucket, {})[q.key] = (q.data, q.mtime)
            else:
                left.append(q)
        self.queue = left

    async def handle_s3(
        self, request: web.Request, check: ServiceCheck, store: str, now: float
    ) -> web.Response:
        """One S3 request to ``store`` (a MinIO check), signature verified first."""
        self.replicate(now)
        tail = request.match_info["tail"]
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = [(k, v) for k, v in request.query.items()]
        problem = verify(request.method, request.path, query, headers, body, self.secrets.get)
        if problem is not None:
            return _err(403, problem, "the request signature we calculated does not match", tail)
        bucket, _, key = tail.partition("/")
        objects = self.objects[store]
        if request.method == "PUT" and not key:
            if bucket in objects:
                return _err(409, "BucketAlreadyOwnedByYou", "already yours", bucket)
            objects[bucket] = {}
            return web.Response(status=200)
        if bucket not in objects:
            return _err(404, "NoSuchBucket", "The specified bucket does not exist", bucket)
        if request.method == "PUT":
            self.put(store, bucket, key, body, now)
            etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
            return web.Response(status=200, headers={"ETag": f'"{etag}"'})
        if key:
            found = objects[bucket].get(key)
            if found is None:
                return _err(404, "NoSuchKey", "The specified key does not exist.", tail)
            return web.Response(status=200, body=found[0])
        prefix = request.query.get("prefix", "")
        keys = sorted(k for k in objects[bucket] if k.startswith(prefix))
        items = "".join(
            f"<Contents><Key>{html.escape(k)}</Key><Size>{len(objects[bucket][k][0])}</Size>"
            "</Contents>"
            for k in keys
        )
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult '
            'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{bucket}</Name><Prefix>{html.escape(prefix)}</Prefix>"
            f"<KeyCount>{len(keys)}</KeyCount><MaxKeys>1000</MaxKeys>"
            f"<IsTruncated>false</IsTruncated>{items}</ListBucketResult>"
        )
        return web.Response(status=200, text=xml, content_type="application/xml")

    def describe(self) -> dict[str, Any]:
        return {
            "holders": {n: h.member for n, h in self.holders.items()},
            "takeovers": len(self.takeovers),
            "queued": len(self.queue),
        }


def _err(status: int, code: str, message: str, resource: str) -> web.Response:
    return web.Response(
        status=status, text=error_xml(code, message, resource), content_type="application/xml"
    )
