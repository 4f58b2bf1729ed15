"""Runbooks in a running console: the library, the engine's environment and the state,
built once from the session, and the runbooks offered for alerts and for a node.

No Textual here: the screens (``console.screens.runbook*``) use it, and so could a test.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from console.plugin import Finding
from console.wizards.runbook_env import PollerProbe, RunbookEnv, build_env
from console.wizards.runbook_library import Entry, Library, Offer, load_library, site_runbook_dir
from console.wizards.runbook_state import RunbookState, RunRow

if TYPE_CHECKING:  # pragma: no cover
    from console.session import Session

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RunbookContext:
    library: Library
    env: RunbookEnv
    state: RunbookState

    def offers(self, findings: Iterable[Finding]) -> list[Offer]:
        """The runbooks answering these findings, on targets this console knows."""
        return [
            o
            for o in self.library.offers(findings)
            if self.env.target(o.runbook.target_kind, o.target) is not None
        ]

    def for_node(self, node: str, findings: Iterable[Finding]) -> list[Offer]:
        """For the node card: the runbooks answering the node's alerts (on what they name:
        a GPU, a port), then every node runbook on the node itself."""
        mine = [f for f in findings if (f.node or f.target) == node]
        out = self.offers(mine)
        seen = {(o.runbook.id, o.target) for o in out}
        for entry in self.library.for_kind("node"):
            if (entry.runbook.id, node) not in seen:
                out.append(Offer(entry, node))
        return out

    async def unfinished(self) -> list[RunRow]:
        return await self.state.unfinished()

    def entries(self) -> list[Entry]:
        return self.library.all()


def build_context(session: Session) -> RunbookContext:
    """The runbooks of this console.

    Raises:
        RuntimeError: the session has no audit log, runner or poller (say why).
    """
    if session.audit is None or session.runner is None or session.poller is None:
        raise RuntimeError("runbooks need the audit log, the action runner and the poller")
    reg = session.registry
    library = load_library(
        session.plugins,
        site_runbook_dir(session.options.inventory),
        checks=reg.checks(),
        actions=reg.actions(),
    )
    for problem in library.problems:
        log.warning("runbook: %s", problem)
    state = RunbookState.beside(Path(session.audit.path))
    env = build_env(
        session.plugins,
        session.runner,
        session.store,
        PollerProbe(session.poller),
        state,
        approvals=getattr(session, "approvals", None),
        incidents=getattr(session, "incidents", None),
    )
    return RunbookContext(library, env, state)
