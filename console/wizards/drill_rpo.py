"""The RPO, measured: markers written through the data service, survivors read back.

From the preflight on, a marker (a small timestamped record) is written every
``interval_s`` to the address clients write to, through the service's own
protocol (a plugin's ``DataProbeSpec``: S3 for MinIO). Writes go on through
the fault -- refused ones are counted, not retried. Once the failover is seen,
the markers are listed on the new primary: the newest one written before the
fault that survived gives RPO = fault time - its time. Markers written to the
old primary inside the replication lag are the data a real failover loses.

Marker names carry their own time (``<prefix><seq>-<epoch ms>``) so a listing
is enough to measure; the newest survivor is also read back, to be sure it is
data and not only a name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from console.plugin import ActionInputs, DataProbeSpec, Target

log = logging.getLogger(__name__)

_NAME = re.compile(r"(\d{6})-(\d{10,16})$")


@dataclass(frozen=True, slots=True)
class ProbeContext:
    """The ``ActionContext`` a data probe's coroutines receive."""

    inventory: Any
    transports: Any
    store: Any
    config: Any
    operator: str


@dataclass(slots=True)
class RpoResult:
    measured_s: float | None
    """Fault time - newest surviving marker written before it; None: nothing survived."""
    newest: float | None
    written_before: int
    """Markers acknowledged before the fault."""
    survived: int
    """Of those, how many the new primary has."""
    detail: str


def marker_name(prefix: str, seq: int, wall: float) -> str:
    return f"{prefix}{seq:06d}-{round(wall * 1000)}"


def marker_time(name: str) -> float | None:
    """The write time a marker's name carries (epoch seconds), None if it is not a marker."""
    m = _NAME.search(name)
    return None if m is None else int(m.group(2)) / 1000.0


def survivors(names: Sequence[str], before: float) -> list[tuple[float, str]]:
    """(time, name) of the markers written at or before ``before``, newest first."""
    found = [(t, n) for n in names if (t := marker_time(n)) is not None and t <= before]
    return sorted(found, reverse=True)


@dataclass(slots=True)
class Markers:
    """Writes markers at a steady rate and measures which survived a failover."""

    spec: DataProbeSpec
    ctx: ProbeContext
    write_target: Target
    read_target: Target
    inputs: ActionInputs
    prefix: str
    interval_s: float
    wall: Callable[[], float] = time.time
    acked: list[float] = field(default_factory=list)
    """Write times of the markers the service acknowledged."""
    failed: int = 0
    last_error: str | None = None
    _seq: int = 0
    _task: asyncio.Task[None] | None = None

    async def write_one(self) -> bool:
        self._seq += 1
        at = self.wall()
        name = marker_name(self.prefix, self._seq, at)
        body = json.dumps({"marker": name, "seq": self._seq, "written_at": at}).encode()
        try:
            async with asyncio.timeout(self.spec.timeout):
                await self.spec.write(self.ctx, self.write_target, self.inputs, name, body)
        except Exception as exc:  # a refused write is a data point, not a crash
            self.failed += 1
            self.last_error = str(exc) or type(exc).__name__
            log.debug("marker %s not written: %s", name, self.last_error)
            return False
        self.acked.append(at)
        return True

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"drill-markers:{self.prefix}")

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            await self.write_one()
            next_at += self.interval_s
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def measure(self, fault_wall: float, within_s: float) -> RpoResult:
        """List the survivors on the read target (retrying for ``within_s``) and measure."""
        before = [t for t in self.acked if t <= fault_wall]
        deadline = time.monotonic() + within_s
        error = ""
        while True:
            try:
                async with asyncio.timeout(self.spec.timeout):
                    names = await self.spec.names(
                        self.ctx, self.read_target, self.inputs, self.prefix
                    )
                found = survivors(names, fault_wall)
                if found:
                    newest_at, newest = found[0]
                    async with asyncio.timeout(self.spec.timeout):
                        body = await self.spec.read(self.ctx, self.read_target, self.inputs, newest)
                    if body is not None and _matches(body, newest):
                        return RpoResult(
                            fault_wall - newest_at,
                            newest_at,
                            len(before),
                            len(found),
                            f"newest surviving marker {newest} written "
                            f"{fault_wall - newest_at:.1f} s before the fault; "
                            f"{len(found)} of {len(before)} survived",
                        )
                    error = f"{newest} is listed but cannot be read back"
                else:
                    # A listing is an answer: what is not there did not survive.
                    first = min(before, default=None)
                    floor = "" if first is None else f": RPO >= {fault_wall - first:.1f} s"
                    return RpoResult(
                        None,
                        None,
                        len(before),
                        0,
                        f"none of the {len(before)} markers written before the fault "
                        f"survived{floor}",
                    )
            except Exception as exc:  # the new primary may still be settling: retry
                error = f"cannot read the markers: {exc or type(exc).__name__}"
            if time.monotonic() >= deadline:
                return RpoResult(None, None, len(before), 0, error)
            await asyncio.sleep(min(0.5, self.interval_s))


def _matches(body: bytes, name: str) -> bool:
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("marker") == name
