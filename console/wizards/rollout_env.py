"""What a rollout runs with in a console: the plugins' actions and checks, a refresh
on the console's Poller, the rollouts database, and the site's rollout files.

The CLI (``dcc rollout run|resume|status``) and the TUI build the same
``RolloutEnv`` from a started Session, so both run the same engine, with the
same audit log and the same durable state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from console.inventory import InventoryError
from console.plugin import ActionSpec, CheckSpec, Plugin
from console.wizards.drill_env import known_targets
from console.wizards.rollout_model import Rollout, check_references, load_rollout
from console.wizards.rollout_plan import Plan, plan_rollout
from console.wizards.rollout_run import RolloutRunner
from console.wizards.rollout_state import RolloutRow, RolloutState
from console.wizards.rollout_steps import COMMAND_ACTION, TargetMap

if TYPE_CHECKING:  # pragma: no cover
    from console.actions import ActionRunner
    from console.approvals import Approvals
    from console.inventory.model import Inventory
    from console.poller import Job, Poller
    from console.session import Session

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_ROLLOUTS = REPO_ROOT / "inventory" / "rollouts"


def rollouts_dir(inventory_path: Path | None) -> Path:
    """The site's rollout files: ``rollouts/`` beside the inventory (the demo's for the lab)."""
    if inventory_path is None:
        return DEMO_ROLLOUTS
    return inventory_path.expanduser().resolve().parent / "rollouts"


def rollout_files(directory: Path) -> list[Path]:
    """The ``*.yaml`` / ``*.yml`` files of a rollouts folder, by name (none if it is missing)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


@dataclass(slots=True)
class RolloutEnv:
    """Everything a rollout needs from a running console."""

    runner: ActionRunner
    inventory: Inventory
    poller: Poller | None
    state: RolloutState
    actions: Mapping[str, ActionSpec]
    checks: Mapping[str, CheckSpec]
    targets: TargetMap
    directory: Path
    """Where the site's rollout files are."""
    approvals: Approvals | None = None
    """The console's two-person rule, for rollouts that need a second operator."""

    async def refresh(self, nodes: Sequence[str]) -> None:
        """Poll what the checks read about ``nodes`` once: their own collectors and every
        collector that is not about one node (clusters, services, the fabric)."""
        if self.poller is None:
            return
        wanted = set(nodes)

        def relevant(job: Job) -> bool:
            t = job.target
            return t.kind != "node" or t.name in wanted or (t.node or "") in wanted

        await self.poller.poll_once(relevant)

    def load_plan(self, path: Path) -> Plan:
        """Read, check and plan a rollout file on this console's inventory.

        Raises:
            InventoryError: the file is unreadable or invalid, names unknown checks,
                actions or targets, or the planner refuses it (every problem, file:line).
        """
        return self.plan_of(load_rollout(path.expanduser().resolve()))

    def plan_of(self, rollout: Rollout) -> Plan:
        """Check a loaded rollout's references and plan it (InventoryError when refused)."""
        problems = check_references(rollout, self.checks, self.actions, self.targets)
        if problems:
            raise InventoryError(problems)
        return plan_rollout(rollout, self.inventory)

    def runner_for(self, plan: Plan, rollout_id: str | None = None) -> RolloutRunner:
        return RolloutRunner(
            plan,
            self.runner,
            self.state,
            actions=self.actions,
            checks=self.checks,
            refresh=self.refresh,
            targets=self.targets,
            approvals=self.approvals,
            rollout_id=rollout_id,
        )

    async def runner_of(self, row: RolloutRow) -> RolloutRunner:
        """A runner for a recorded rollout (its file planned again on this inventory).

        Raises:
            InventoryError: the recorded file cannot be read or planned any more.
        """
        path = Path(str(row.plan.get("file", "")))
        return self.runner_for(self.load_plan(path), row.id)

    def close(self) -> None:
        self.state.close()


def build_env(
    plugins: Sequence[Plugin],
    runner: ActionRunner,
    poller: Poller | None,
    inventory_path: Path | None,
    state: RolloutState | None = None,
    approvals: Approvals | None = None,
) -> RolloutEnv:
    """A RolloutEnv from the console's plugins and runner (state beside its audit log)."""
    actions = {a.id: a for p in plugins for a in p.actions}
    actions[COMMAND_ACTION.id] = COMMAND_ACTION
    return RolloutEnv(
        runner=runner,
        inventory=runner.inventory,
        poller=poller,
        state=state or RolloutState.beside(runner.audit.path),
        actions=actions,
        checks={c.id: c for p in plugins for c in p.checks},
        targets=known_targets(plugins, runner.inventory),
        directory=rollouts_dir(inventory_path),
        approvals=approvals,
    )


def env_of_session(session: Session) -> RolloutEnv:
    """The RolloutEnv of a started console session."""
    if session.runner is None:
        raise RuntimeError("the console has no action runner (not started)")
    return build_env(session.plugins, session.runner, session.poller, session.options.inventory)
