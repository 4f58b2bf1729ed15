"""`make screenshots`: SVG pictures of the demo for the README.

Runs the real demo (the lab in-process, real SSH and HTTP on loopback),
injects a few faults so the pictures show the console reacting, and saves
SVGs into screenshots/.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from console.app import DcConsoleApp  # noqa: E402
from console.options import LaunchOptions  # noqa: E402
from console.screens import flows  # noqa: E402
from console.screens.confirm import ConfirmScreen  # noqa: E402
from console.screens.flows import FlowsScreen, load_factory  # noqa: E402
from console.session import Session, start_session  # noqa: E402

OUT = ROOT / "screenshots"


async def _prepare(tmp: Path) -> Session:
    options = LaunchOptions(
        audit_db=tmp / "audit.db", lab_state_dir=tmp / "lab", scenario=None, poll=False
    )
    session = await start_session(options)
    assert session.lab is not None and session.poller is not None and session.runner is not None
    faults = session.lab.faults
    faults.inject("services.slow", "mlflow", {"delay_ms": 1500})
    faults.inject("services.down", "qdrant")
    faults.inject("host.down", "cpu04")
    faults.inject("gpu.fell_off_bus", "gpu007")
    faults.inject("power.psu_lost", "gpu008")
    faults.inject("infiniband.low_rate", "gpu002")
    for _ in range(3):  # a collector must fail twice before it alerts; rates need two reads
        await session.poller.poll_once()
        await asyncio.sleep(1.0)
    # One restart on the record, so the audit screen has something to show.
    spec = session.registry.actions()["services.restart"]
    config = session.inventory.plugin_configs.get("services")
    target = next(t for t in spec.targets(session.inventory, config) if t.name == "minio-stor01")
    plan = await session.runner.plan(spec, [target], {})
    await session.runner.execute(plan, plan.confirm_text)
    await session.poller.poll_once()
    return session


async def _open_flow(app: DcConsoleApp, key: str) -> None:
    """Open a guided flow's first screen, as `w` then its letter does."""
    entry = next(e for e in flows.FLOW_SCREENS if e.key == key)
    screen = load_factory(entry)(app)
    if screen is not None:
        await app.push_screen(screen)


async def _shot(session: Session, name: str, size: tuple[int, int], steps: str = "") -> None:
    app = DcConsoleApp(session.options, session=session)
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.3)
        if steps == "card":
            app.open_node("stor01")
        elif steps == "confirm":
            spec = session.registry.actions()["services.restart"]
            config = session.inventory.plugin_configs.get("services")
            target = next(t for t in spec.targets(session.inventory, config) if t.name == "mlflow")
            app.start_action(spec, target)
            for _ in range(20):
                await pilot.pause(0.1)
                if isinstance(app.screen, ConfirmScreen):
                    break
        elif steps == "audit":
            app.action_audit()
        elif steps == "help":
            app.action_help()
        elif steps.startswith("layout:"):
            await app.action_layout(steps.removeprefix("layout:"))
        elif steps == "flows":
            app.push_screen(FlowsScreen())
        elif steps.startswith("flow:"):
            await _open_flow(app, steps.removeprefix("flow:"))
        await pilot.pause(0.5)
        app.save_screenshot(f"{name}.svg", str(OUT))
        if isinstance(app.screen, ConfirmScreen):
            app.screen.dismiss(None)
            await pilot.pause()
    print(f"wrote screenshots/{name}.svg")


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        session = await _prepare(Path(tmp))
        try:
            await _shot(session, "overview-80x24", (80, 24))
            await _shot(session, "power-80x24", (80, 24), "layout:power")
            await _shot(session, "gpu-80x24", (80, 24), "layout:gpu")
            await _shot(session, "fabric-80x24", (80, 24), "layout:fabric")
            await _shot(session, "queues-80x24", (80, 24), "layout:queues")
            await _shot(session, "oncall-80x24", (80, 24), "layout:oncall")
            await _shot(session, "overview-160x48", (160, 48))
            await _shot(session, "node-card", (80, 24), "card")
            await _shot(session, "confirm-restart", (80, 24), "confirm")
            await _shot(session, "audit", (100, 24), "audit")
            await _shot(session, "help", (80, 24), "help")
            await _shot(session, "flows", (80, 24), "flows")
            for key, name in (
                ("r", "rollouts"),
                ("d", "drills"),
                ("b", "runbooks"),
                ("s", "scorecard"),
                ("i", "incidents"),
            ):
                await _shot(session, f"flow-{name}", (80, 24), f"flow:{key}")
        finally:
            await session.stop()


if __name__ == "__main__":
    asyncio.run(main())
