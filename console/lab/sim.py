"""The lab's model of hosts: a clock and believable load, power and temperature.

Each host's utilisation is a seeded random walk towards a target that
depends on its role (training near 90% with checkpoint dips, inference with
a compressed day/night swing, CPU moderate, storage low). Power follows load
between the role's idle and maximum draw; exhaust air is inlet plus a rise
proportional to power. Plugins read ``load`` (and may read power/temperature).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Node
    from console.lab.faults import FaultBook

DIURNAL_PERIOD = 900.0
"""Lab seconds of one inference "day": compressed so a demo shows the swing."""

STANDBY_W = 12.0
"""What a powered-off server still draws (its BMC)."""


class LabClock:
    """Lab time: wall time at start, then advancing ``speed`` times faster."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("the lab speed must be positive")
        self.speed = speed
        self._wall0 = time.time()
        self._mono0 = time.monotonic()

    def elapsed(self) -> float:
        """Lab seconds since the lab started."""
        return (time.monotonic() - self._mono0) * self.speed

    def now(self) -> float:
        """Lab time as epoch seconds."""
        return self._wall0 + self.elapsed()


def _power_range(node: Node) -> tuple[float, float]:
    gpus = node.hardware.gpu_count
    if node.role in ("gpu-train", "gpu-infer"):
        gpus = gpus or 8
        return 300.0 + 70.0 * gpus, 1200.0 + 1000.0 * gpus
    if node.role == "cpu":
        return 150.0, 550.0
    if node.role == "storage":
        return 250.0, 800.0
    return 60.0, 200.0


class SimHost:
    """One simulated host: what the lab's model says about it, and what it was asked.

    Implements ``console.plugin.LabHostContext``.
    """

    def __init__(
        self,
        node: Node,
        clock: LabClock,
        faults: FaultBook,
        seed: int,
        rack_inlet_c: float = 22.0,
    ) -> None:
        self._node = node
        self._clock = clock
        self._faults = faults
        self.rng = random.Random(f"{seed}:{node.name}")
        self.rack_inlet_c = rack_inlet_c
        self._dip_left = 0.0
        self._load = self._target(0.0)
        self._inlet_noise = 0.0
        self.power_w = 0.0
        self.inlet_c = rack_inlet_c
        self.exhaust_c = rack_inlet_c
        self.port: int | None = None
        """The port its SSH server listens on (set by the lab)."""
        self.address = "127.0.0.1"
        """The loopback address its SSH server (and exporters) listen on (set by the lab)."""
        self.bmc_address = "127.0.0.1"
        """The loopback address its BMC listens on (set by the lab)."""
        # What it was asked, for tests that prove "nothing was sent".
        self.connections = 0
        self.auth_attempts = 0
        self.sessions = 0
        self.commands: list[str] = []
        self._update_thermal()

    # ------------------------------------------------------------ LabHostContext

    @property
    def name(self) -> str:
        return self._node.name

    @property
    def node(self) -> Node:
        return self._node

    @property
    def now(self) -> float:
        return self._clock.now()

    @property
    def powered(self) -> bool:
        return self.fault("host.power_off") is None

    @property
    def load(self) -> float:
        return self._load if self.powered else 0.0

    def fault(self, name: str) -> Mapping[str, Any] | None:
        return self._faults.get(name, self.name)

    # ------------------------------------------------------------ dynamics

    def _target(self, t: float) -> float:
        role = self._node.role
        if role == "gpu-train":
            return 0.3 if self._dip_left > 0 else 0.92
        if role == "gpu-infer":
            phase = 2 * math.pi * ((t / DIURNAL_PERIOD) + (self._node.index * 0.07))
            return 0.45 + 0.3 * math.sin(phase)
        if role == "cpu":
            return 0.45
        if role == "storage":
            return 0.15
        return 0.05

    def tick(self, dt: float) -> None:
        """Advance the model by ``dt`` lab seconds."""
        t = self._clock.elapsed()
        if self._node.role == "gpu-train":
            if self._dip_left > 0:
                self._dip_left -= dt
            elif self.rng.random() < 0.01 * dt:  # a checkpoint or data stall
                self._dip_left = self.rng.uniform(5.0, 20.0)
        target = self._target(t)
        pull = min(1.0, 0.25 * dt)
        noise = self.rng.gauss(0.0, 0.03) * math.sqrt(max(dt, 0.0))
        self._load = min(1.0, max(0.0, self._load + (target - self._load) * pull + noise))
        self._inlet_noise = 0.8 * self._inlet_noise + self.rng.gauss(0.0, 0.15)
        self._update_thermal()

    def _update_thermal(self) -> None:
        idle, peak = _power_range(self._node)
        if self.powered:
            self.power_w = idle + (peak - idle) * self._load
        else:
            self.power_w = STANDBY_W
        self.inlet_c = self.rack_inlet_c + self._inlet_noise
        # ~2.6 K of air rise per kW at a typical server airflow
        self.exhaust_c = self.inlet_c + 2.6 * self.power_w / 1000.0 + 0.1 * self._inlet_noise

    # ------------------------------------------------------------ frame commands

    def loadavg(self) -> str:
        cores = 128 if self._node.role.startswith("gpu") else 64
        la = self.load * cores
        return f"{la:.2f} {la * 0.97:.2f} {la * 0.93:.2f} 3/{900 + len(self.commands)} 41733\n"

    def uptime(self) -> str:
        up = self._clock.elapsed() + 86400 * 12
        days, rest = divmod(int(up), 86400)
        hours, rest = divmod(rest, 3600)
        la = self.loadavg().split()
        clock = time.strftime("%H:%M:%S", time.gmtime(self.now))
        return (
            f" {clock} up {days} days, {hours:2d}:{rest // 60:02d},  0 users,  "
            f"load average: {la[0]}, {la[1]}, {la[2]}\n"
        )


def rack_inlets(racks: list[str], seed: int) -> dict[str, float]:
    """A stable inlet temperature per rack (hot and cold spots in the room)."""
    out = {}
    for name in racks:
        r = random.Random(f"{seed}:rack:{name}")
        out[name] = round(r.uniform(19.5, 25.5), 1)
    return out
