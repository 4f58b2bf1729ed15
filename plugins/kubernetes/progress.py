"""Live progress of running drains, shared by the drain action and the collector.

The ActionRunner gives actions a read-only view of the Store, so a drain
writes its progress here and the collector publishes it as the node's
``kubernetes.drain`` reading on each run (the panes and the node card show it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class DrainProgress:
    node: str
    total: int = 0
    evicted: int = 0
    gone: int = 0
    blocked: dict[str, str] = field(default_factory=dict)
    """Pod key -> why its eviction is refused now (``blocked by PDB ns/name``)."""
    started: float = field(default_factory=time.monotonic)
    attempts: int = 0
    phase: str = "cordoning"
    log: list[str] = field(default_factory=list)

    def note(self, line: str) -> None:
        self.log.append(line)
        del self.log[:-50]

    def text(self) -> str:
        took = time.monotonic() - self.started
        head = f"{self.phase} {took:.0f}s: {self.gone}/{self.total} pods gone"
        if self.blocked:
            first = next(iter(self.blocked.items()))
            head += f", {len(self.blocked)} blocked ({first[0]} {first[1]})"
        return head


_RUNNING: dict[str, DrainProgress] = {}


def begin(node: str) -> DrainProgress:
    progress = _RUNNING[node] = DrainProgress(node)
    return progress


def end(node: str) -> None:
    _RUNNING.pop(node, None)


def running(node: str) -> DrainProgress | None:
    return _RUNNING.get(node)
