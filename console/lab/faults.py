"""The lab's fault book: which faults are active on which targets, and until when.

The book only stores faults; the frame (host faults) and the plugins'
emulations (anything with a plugin prefix) ask ``host.fault(name)`` and act.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

FRAME_FAULTS: dict[str, str] = {
    "host.down": "the SSH server refuses connections",
    "host.blackhole": "TCP is accepted but the host never speaks",
    "host.slow": "each reply is delayed (param seconds, default 3)",
    "host.garbage": "commands answer random bytes (escape sequences, invalid UTF-8)",
    "host.key_rotated": "the host presents a new key that is not in known_hosts",
    "host.power_off": "the host is powered off (and so unreachable)",
}


class FaultError(ValueError):
    """A fault name or target the lab does not know."""


@dataclass(frozen=True, slots=True)
class Fault:
    id: str
    name: str
    target: str
    params: Mapping[str, Any] = field(default_factory=dict)
    until: float | None = None
    """Lab time (``clock.now()``) when it ends by itself; None: until cleared."""
    since: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "target": self.target,
            "params": dict(self.params),
            "until": self.until,
            "since": self.since,
        }


class FaultBook:
    """Active faults, validated against the names the frame and emulations know."""

    def __init__(
        self,
        now: Callable[[], float],
        known_names: Callable[[], Iterable[str]] = lambda: FRAME_FAULTS,
        known_targets: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        self._now = now
        self._known_names = known_names
        self._known_targets = known_targets
        self._faults: dict[str, Fault] = {}
        self._ids = itertools.count(1)
        self._listeners: list[Callable[[], None]] = []

    def names(self) -> list[str]:
        return sorted(set(self._known_names()))

    def inject(
        self,
        name: str,
        target: str,
        params: Mapping[str, Any] | None = None,
        duration: float | None = None,
    ) -> str:
        """Start a fault; returns its id.

        Raises:
            FaultError: the name is not a fault anyone emulates, or the target is
                not a host or plugin target the lab knows.
        """
        known = self.names()
        if name not in known:
            raise FaultError(f"unknown fault {name!r}; known faults: {', '.join(known)}")
        if self._known_targets is not None and name.startswith("host."):
            hosts = set(self._known_targets())
            if target not in hosts:
                raise FaultError(f"unknown host {target!r} for {name}")
        if duration is not None and duration <= 0:
            raise FaultError("a fault's duration must be positive")
        now = self._now()
        fid = f"f{next(self._ids)}"
        self._faults[fid] = Fault(
            id=fid,
            name=name,
            target=target,
            params=dict(params or {}),
            until=None if duration is None else now + duration,
            since=now,
        )
        self._changed()
        return fid

    def clear(self, fault_id: str) -> bool:
        """End one fault; False when there was none with that id."""
        found = self._faults.pop(fault_id, None) is not None
        if found:
            self._changed()
        return found

    def clear_all(self) -> int:
        n = len(self._faults)
        self._faults.clear()
        if n:
            self._changed()
        return n

    def active(self) -> list[Fault]:
        """Faults in force now (expired ones are dropped)."""
        self.expire()
        return list(self._faults.values())

    def expire(self) -> None:
        now = self._now()
        gone = [f.id for f in self._faults.values() if f.until is not None and f.until <= now]
        for fid in gone:
            del self._faults[fid]
        if gone:
            self._changed()

    def get(self, name: str, target: str) -> Mapping[str, Any] | None:
        """The params of an active fault ``name`` on ``target`` (latest wins), or None."""
        now = self._now()
        found: Mapping[str, Any] | None = None
        for f in self._faults.values():
            if f.name == name and f.target == target and (f.until is None or f.until > now):
                found = f.params
        return found

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every change (the SSH servers react to host.down)."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()
