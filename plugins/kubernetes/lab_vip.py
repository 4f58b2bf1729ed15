"""The lab's highly available control plane: a load-balanced VIP in front of the apiservers.

The cluster's first three CPU nodes run an apiserver and an etcd member each;
the API's address is a VIP whose load balancer (HAProxy with health checks)
sends to one of them. When that apiserver is lost (powered off, down, or
``kubernetes.control_plane_down``) the balancer keeps sending to it until its
health checks mark it down ``failover_s`` later -- clients get its "503 No
server is available" and open watches are cut -- then sends to a survivor.
With fewer than a majority of etcd members up the API answers 500
(``etcdserver: request timed out``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CONTROL_PLANE_SIZE = 3


@dataclass(slots=True)
class ApiVip:
    members: list[str]
    failover_s: float
    lab: Any
    store: Any
    """The cluster's ``ApiStore`` (its watches are cut when the holder is lost)."""
    holder: str | None = None
    lost_at: float | None = None
    lost: str | None = None
    """The apiserver the balancer sent to when it was lost."""
    started: bool = False
    takeovers: list[tuple[str, float]] = field(default_factory=list)
    """(new holder, lab time) of every VIP move."""

    def apiserver_up(self, node: str) -> bool:
        host = self.lab.hosts.get(node)
        return (
            host is not None
            and host.powered
            and host.fault("host.down") is None
            and host.fault("kubernetes.control_plane_down") is None
        )

    def gate_now(self) -> str | None:
        return self.gate(self.lab.clock.now())

    def gate(self, now: float) -> str | None:
        """``drop`` (no live backend yet: 503), ``no-quorum``, or None: the API answers."""
        if not self.members:
            return None
        up = [m for m in self.members if self.apiserver_up(m)]
        if not self.started:
            self.started, self.holder = True, up[0] if up else None
        if self.holder is not None and self.holder not in up:
            self.lost, self.lost_at = self.holder, now
            self.holder = None
            self.store.drop_watches()  # connections to the lost apiserver die with it
        if self.holder is None and self.lost in up:
            self.holder, self.lost_at = self.lost, None  # back before the balancer gave up on it
        if self.holder is None:
            if self.lost_at is None:
                self.lost_at = now
            if up and now - self.lost_at >= self.failover_s:
                self.holder, self.lost_at = up[0], None
                self.takeovers.append((up[0], now))
        if self.holder is None:
            return "drop"
        return None if len(up) * 2 > len(self.members) else "no-quorum"
