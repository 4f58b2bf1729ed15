"""Two-person approvals, live in every console on the audit database.

Every second the watcher reads the pending requests (one small query on the
audit thread; it also records the expiry of requests past their time). The
header shows how many wait for *another* operator's decision, and whether
this console waits for one; a new request, and the decision on one of this
console's own requests, are announced once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from console.widgets.header import StatusHeader

if TYPE_CHECKING:  # pragma: no cover
    from console.app import DcConsoleApp
    from console.approvals import ApprovalRequest, Approvals

log = logging.getLogger(__name__)

WATCH_S = 1.0
"""How often the pending requests are read: another console sees a request within ~1 s."""


class ApprovalsWatcher:
    """Keeps the header's approval badge and the announcements current for one app."""

    def __init__(self, app: DcConsoleApp, approvals: Approvals) -> None:
        self.app = app
        self.approvals = approvals
        self.announced: set[int] = set()
        """Requests by others already announced."""
        self.mine: set[int] = set()
        """This console's requests seen pending (announced again when decided)."""
        self.busy = False

    async def tick(self) -> None:
        if self.busy:  # a slow disk: never stack reads on the audit thread
            return
        self.busy = True
        try:
            await self._tick()
        except Exception:  # the badge is a convenience: never take the console down
            log.exception("reading pending approvals failed")
        finally:
            self.busy = False

    async def _tick(self) -> None:
        approvals = self.approvals
        await approvals.expire_due()
        pending = await approvals.pending_async()
        others = [r for r in pending if r.requested_by != approvals.operator.user]
        mine = {r.id for r in pending if r.requested_session == approvals.session_id}
        # The header lives on the base screen; another screen may be on top of it.
        for header in self.app.screen_stack[0].query(StatusHeader):
            header.set_state(approvals=len(others), waiting=len(mine))
        for req in others:
            if req.id not in self.announced:
                self.announced.add(req.id)
                self._announce(req)
        for rid in sorted(self.mine - mine):
            done = await approvals.get_async(rid)
            who = f" by {done.decided_by}" if done.decided_by else ""
            note = f": {done.note}" if done.note else ""
            self.app.notify(
                f"#{done.id} {done.subject}: {done.status}{who}{note}",
                title="approval",
                severity="information" if done.status == "approved" else "warning",
                timeout=10,
            )
        self.mine = mine

    def _announce(self, req: ApprovalRequest) -> None:
        refusal = self.approvals.refusal(req)
        how = (
            "press w, then i, to approve or reject it"
            if refusal is None
            else "an operator on another console must decide it"
        )
        self.app.notify(
            f"{req.requested_by} asks for approval: #{req.id} {req.subject} — {how}",
            title="1 approval pending",
            severity="warning",
            timeout=15,
        )


def watch_approvals(app: DcConsoleApp, approvals: Approvals | None) -> ApprovalsWatcher | None:
    """Start the watcher on ``app`` (nothing when the session has no approvals)."""
    if approvals is None:
        return None
    watcher = ApprovalsWatcher(app, approvals)
    app.set_interval(WATCH_S, watcher.tick)
    app.call_later(watcher.tick)
    return watcher
