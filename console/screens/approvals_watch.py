"""Two-person approvals, live in every console on the audit database.

Every second the watcher looks whether the audit database changed (its file
and its write-ahead log: two ``stat`` calls) or a pending request fell due;
only then does it read the pending requests (one small query on the audit
thread; it also records the expiry of requests past their time), and at least
every ``FULL_READ_S`` whatever the files say. The header shows how many wait
for *another* operator's decision, and whether this console waits for one; a
new request, and the decision on one of this console's own requests, are
announced once.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import TYPE_CHECKING

from console.widgets.header import StatusHeader

if TYPE_CHECKING:  # pragma: no cover
    from console.app import DcConsoleApp
    from console.approvals import ApprovalRequest, Approvals

log = logging.getLogger(__name__)

WATCH_S = 1.0
"""How often the database is looked at: another console sees a request within ~1 s."""
FULL_READ_S = 15.0
"""The pending requests are read at least this often even when the files look unchanged
(a file system with coarse modification times)."""

Signature = tuple[tuple[int, int, int] | None, ...]


def files_signature(path: os.PathLike[str] | str) -> Signature:
    """(inode, size, mtime) of the database and its write-ahead log: any commit changes it.

    An idle console read the pending requests every second for nothing: that read
    (a thread hop and a query) was most of its idle CPU.
    """
    out: list[tuple[int, int, int] | None] = []
    for name in (os.fspath(path), f"{os.fspath(path)}-wal"):
        try:
            st = os.stat(name)
        except OSError:
            out.append(None)
        else:
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


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
        self.reads = 0
        """Times the pending requests were read (the rest of the ticks found nothing new)."""
        self._seen: Signature | None = None
        self._next_due = math.inf
        """The earliest expiry among the pending requests last read."""
        self._last_read = -math.inf

    def record_read(self, seen: Signature, pending: list[ApprovalRequest]) -> None:
        """The pending requests were read when the files looked like ``seen``."""
        self.reads += 1
        self._seen, self._last_read = seen, time.monotonic()
        self._next_due = min(
            (r.expires_at for r in pending if r.expires_at is not None), default=math.inf
        )

    def unchanged(self) -> bool:
        """Nothing to read: no commit since the last read, nothing due, read recently."""
        if time.monotonic() - self._last_read >= FULL_READ_S:
            return False
        if self.approvals.clock() >= self._next_due:
            return False
        return files_signature(self.approvals.audit.path) == self._seen

    async def tick(self) -> None:
        if self.busy:  # a slow disk: never stack reads on the audit thread
            return
        if self.unchanged():
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
        # Taken before reading: a commit made while reading is seen on the next tick.
        seen = files_signature(approvals.audit.path)
        await approvals.expire_due()
        pending = await approvals.pending_async()
        self.record_read(seen, pending)
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
