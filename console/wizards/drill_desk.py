"""The drills a console runs: its environment, the catalogue, the drill in progress.

Kept by the app (one desk per console), not by a screen: closing the drill's
screen never stops the drill; quitting the console cancels it, and the engine
restores before it stops. One drill at a time per console.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.wizards.drill_deadman import DEADMAN_ACTIONS
from console.wizards.drill_env import DrillEnv, PollerProbe, build_env
from console.wizards.drill_model import Catalogue, Scenario, default_catalogue, load_catalogue
from console.wizards.drill_report import (
    DrillReport,
    DrillStore,
    default_drill_db,
    latest_by_scenario,
)
from console.wizards.drill_run import DrillRun

log = logging.getLogger(__name__)


def env_of_session(session: Any) -> DrillEnv:
    """A drill environment on a running console's plugins, runner, Store and poller."""
    assert session.runner is not None and session.poller is not None
    assert session.audit is not None
    return build_env(
        session.plugins,
        session.runner,
        session.store,
        PollerProbe(session.poller),
        DrillStore(default_drill_db(session.audit.path)),
        extra_actions=[*getattr(session, "extra_actions", ()), *DEADMAN_ACTIONS],
    )


@dataclass(slots=True)
class DrillDesk:
    env: DrillEnv
    catalogue_path: Path
    run: DrillRun | None = None
    task: asyncio.Task[DrillReport] | None = None
    listeners: list[Callable[[DrillRun], None]] = field(default_factory=list)
    on_done: list[Callable[[DrillRun, str], None]] = field(default_factory=list)

    def catalogue(self) -> Catalogue:
        """Raises: InventoryError (file:line problems), OSError."""
        return load_catalogue(self.catalogue_path)

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def reports(self) -> list[DrillReport]:
        """Past drills, newest first ([] before the first one)."""
        if not self.env.drills.path.exists():
            return []
        return self.env.drills.list()

    def last_results(self) -> dict[str, DrillReport]:
        return latest_by_scenario(self.reports())

    def prepare(self, scenario: Scenario) -> DrillRun:
        """A run to preflight; refused while another drill runs here."""
        if self.running:
            raise RuntimeError("a drill is already running in this console")
        return DrillRun(scenario, self.env, self._changed)

    def start(self, run: DrillRun, typed: str) -> None:
        """Run the drill in the background (the screen only watches it)."""
        if self.running:
            raise RuntimeError("a drill is already running in this console")
        self.run = run
        self.task = asyncio.ensure_future(run.run(typed))

        def done(t: asyncio.Task[DrillReport]) -> None:
            if t.cancelled():
                status = "cancelled (restored)"
            elif t.exception() is not None:
                log.error("drill %s stopped: %r", run.report.id, t.exception())
                status = f"error: {t.exception()}"
            else:
                status = t.result().result
            for listener in list(self.on_done):
                listener(run, status)

        self.task.add_done_callback(done)

    def _changed(self, run: DrillRun) -> None:
        for listener in list(self.listeners):
            listener(run)


def desk_for(session: Any) -> DrillDesk:
    options = getattr(session, "options", None)
    inventory = getattr(options, "inventory", None)
    return DrillDesk(env_of_session(session), default_catalogue(inventory))


def export(report: DrillReport, directory: Path, fmt: str) -> Path:
    """Write the report as Markdown (``md``) or JSON beside the drill database (0600)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"{report.id}.{'md' if fmt == 'md' else 'json'}"
    text = report.to_markdown() if fmt == "md" else report.to_json() + "\n"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path
