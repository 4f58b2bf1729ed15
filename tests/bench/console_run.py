"""The console against a running lab of N hosts: a benchmark's child process.

`python -m tests.bench.console_run --inventory STATE/inventory.yaml --out FILE`
starts a real session (every plugin, the SSH pool, the BMC clients, the audit
log) and the app on it (headless: the terminal is measured elsewhere), then:

1. polls: the real poller with every collector, for ``--poll-s`` seconds;
   the event loop's lag is sampled all along (a 10 ms sleep, and by how much
   it overslept);
2. acts while polling: an action through the ActionRunner on ``--action-nodes``
   nodes (identify LED over Redfish: audit intent, BMC call, read-back, result);
3. rests: the poller stops; CPU time over ``--idle-s`` seconds, and RSS.

It runs in its own process so that its CPU time and memory are the console's
alone (the lab is another process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from console.app import DcConsoleApp
from console.options import LaunchOptions
from console.plugin import Target
from console.session import Session, start_session

LAG_TICK_S = 0.01


class LagMonitor:
    """Samples how late a 10 ms sleep wakes up: the event loop's lag."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(LAG_TICK_S)
            now = time.perf_counter()
            self.samples.append((now, max(0.0, now - t - LAG_TICK_S)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def between(self, start: float, end: float) -> dict[str, float]:
        lags = sorted(lag for ts, lag in self.samples if start <= ts < end)
        if not lags:
            return {"samples": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
        return {
            "samples": float(len(lags)),
            "p50_ms": statistics.median(lags) * 1000,
            "p99_ms": lags[min(len(lags) - 1, int(0.99 * len(lags)))] * 1000,
            "max_ms": lags[-1] * 1000,
        }


def rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def _act(session: Session, nodes: int) -> dict[str, Any]:
    """Identify LED (5 s) on ``nodes`` nodes through the ActionRunner."""
    runner = session.runner
    assert runner is not None
    spec = next(a for p in session.plugins for a in p.actions if a.id == "power.identify")
    names = [n for n, node in session.inventory.nodes.items() if node.bmc is not None][:nodes]
    targets = [Target("node", n, node=n) for n in names]
    plan = await runner.plan(spec, targets, {"seconds": 5})
    results = await runner.execute(plan, plan.confirm_text)
    outcomes = [getattr(r, "outcome", "?") for r in results]
    return {"targets": len(targets), "ok": outcomes.count("ok"), "outcomes": sorted(set(outcomes))}


async def _cpu_over(seconds: float) -> dict[str, float]:
    cpu, start = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    wall = time.perf_counter() - start
    used = time.process_time() - cpu
    return {"seconds": wall, "cpu_s": used, "cpu_pct": 100 * used / wall}


async def measure(
    inventory: Path,
    poll_s: float,
    idle_s: float,
    action_nodes: int,
    connected_s: float = 10.0,
    collectors: Sequence[str] = (),
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        options = LaunchOptions(
            inventory=inventory,
            audit_db=Path(tmp) / "audit.db",
            poll=False,
            layout="overview",
        )
        t0 = time.perf_counter()
        session = await start_session(options)
        out["session_start_s"] = time.perf_counter() - t0
        assert session.poller is not None
        if collectors:
            from console.poller import Poller

            assert session.transports is not None
            wanted = [(p, c) for p, c in session.registry.collectors() if c.id in collectors]
            session.poller = Poller(session.store, session.inventory, session.transports, wanted)
        out["jobs"] = len(session.poller.jobs)
        out["collectors"] = sorted({j.spec.id for j in session.poller.jobs})
        app = DcConsoleApp(options, session=session)
        lag = LagMonitor()
        async with app.run_test(size=(120, 40)) as pilot:
            while app.layout_view is None:
                await pilot.pause(0.05)
            lag.start()
            await asyncio.sleep(1.0)
            # 1. polling
            cpu0, start = time.process_time(), time.perf_counter()
            session.poller.start()
            await asyncio.sleep(poll_s)
            poll_end = time.perf_counter()
            out["poll"] = lag.between(start, poll_end) | {
                "seconds": poll_end - start,
                "cpu_s": time.process_time() - cpu0,
                "statuses_ok": sum(
                    1 for s in session.store.collector_statuses() if s.last_ok is not None
                ),
                "statuses": len(session.store.collector_statuses()),
            }
            # 2. an action while polling
            act_start = time.perf_counter()
            out["action"] = await _act(session, action_nodes)
            act_end = time.perf_counter()
            out["action"] |= lag.between(act_start, act_end) | {"seconds": act_end - act_start}
            # 3. rest: first with the pooled connections open (their keepalives), then
            # once they are closed, as the pool closes idle ones: the console's own floor.
            await session.poller.stop()
            await lag.stop()  # its 100 wake-ups a second are not the console's
            await asyncio.sleep(2.0)
            out["rss_mib"] = rss_mib()
            out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            out["readings"] = sum(
                len(session.store.readings_for(t)) for t in session.store.targets_with_prefix("")
            )
            assert session.transports is not None
            out["ssh_connections"] = session.transports.ssh.connections()
            out["idle_connected"] = await _cpu_over(connected_s)
            await session.transports.close()
            await asyncio.sleep(1.0)
            out["idle"] = await _cpu_over(idle_s)
            out["rss_idle_mib"] = rss_mib()
            await session.stop()
            app.exit(0)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--inventory", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--poll-s", type=float, default=25.0)
    p.add_argument("--idle-s", type=float, default=30.0)
    p.add_argument("--connected-s", type=float, default=10.0)
    p.add_argument("--action-nodes", type=int, default=20)
    p.add_argument("--collectors", default="", help="comma-separated ids; default: all")
    a = p.parse_args()
    wanted = [c for c in a.collectors.split(",") if c]
    result = asyncio.run(
        measure(a.inventory, a.poll_s, a.idle_s, a.action_nodes, a.connected_s, wanted)
    )
    a.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
