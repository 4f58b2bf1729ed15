"""The console over a synthetic fleet, in a real terminal: a benchmark's child process.

`python -m tests.bench.fleet_app --nodes N --out FILE` runs the real app (real
driver, so every byte goes to the terminal it was given) on a synthetic fleet
(tests.bench.synthetic). After it settles it runs refresh cycles: new readings
for 3 nodes, then one refresh of the panes, as the poller and the app's timer
would. For each cycle it records when it started (CLOCK_MONOTONIC, which the
parent reading the terminal shares) and the main thread's CPU time spent on it:
the refresh itself, and everything the loop did until the next cycle (painting).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

from console.app import DcConsoleApp
from console.gc_policy import GcPolicy
from tests.bench.synthetic import fleet_session, touch

WARM_PAUSE_S = 0.05
"""Between warm cycles: long enough for the screen to be painted (at most 60 frames a second)."""
FIXED_NOW = 1_764_000_000.0
"""The header's clock is frozen: a ticking clock would add its own bytes to each window."""


class BenchApp(DcConsoleApp):
    def __init__(self, nodes: int, cycles: int, interval: float, settle: float, out: Path) -> None:
        session = fleet_session(nodes)
        super().__init__(session.options, session=session, clock=lambda: FIXED_NOW)
        self.cycles = cycles
        self.interval = interval
        self.settle = settle
        self.out = out
        self.rng = random.Random(7)
        self.result: dict[str, Any] = {"nodes": nodes, "cycles": []}

    def on_mount(self) -> None:
        super().on_mount()
        # What start_session gives a real console (this session is built by hand).
        self.gc_policy = GcPolicy()
        self.gc_policy.start()
        self.run_worker(self._run(), exclusive=True, group="bench")

    async def _run(self) -> None:
        session = self.session
        assert session is not None
        while self.layout_view is None:
            await asyncio.sleep(0.05)
        await asyncio.sleep(self.settle)
        names = list(session.inventory.nodes)
        quiet_start, quiet_cpu = time.monotonic(), time.thread_time()
        await asyncio.sleep(self.interval)
        self.result["quiet"] = {
            "start": quiet_start,
            "end": time.monotonic(),
            "cpu_s": time.thread_time() - quiet_cpu,
        }
        # "cadence": as the app refreshes (twice a second); "warm": back to back, which
        # leaves out what a machine's cold caches add after each pause (a shared VM's
        # caches are cold again after 0.4 s: several times the CPU for the same work).
        for phase, pause in (("warm", WARM_PAUSE_S), ("cadence", self.interval)):
            for _ in range(self.cycles):
                on_screen = names[:12]
                touch(session, self.rng.sample(on_screen, min(3, len(on_screen))), self.rng)
                start = time.monotonic()
                cpu0 = time.thread_time()
                self._refresh_panes()
                cpu1 = time.thread_time()
                await asyncio.sleep(pause)
                cpu2 = time.thread_time()
                self.result["cycles"].append(
                    {
                        "phase": phase,
                        "start": start,
                        "refresh_s": cpu1 - cpu0,
                        "loop_s": cpu2 - cpu0,
                    }
                )
        self.result["end"] = time.monotonic()
        self.out.write_text(json.dumps(self.result))
        self.exit(0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", type=int, required=True)
    p.add_argument("--cycles", type=int, default=15)
    p.add_argument("--interval", type=float, default=0.5)
    p.add_argument("--settle", type=float, default=2.0)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    BenchApp(a.nodes, a.cycles, a.interval, a.settle, a.out).run()


if __name__ == "__main__":
    main()
