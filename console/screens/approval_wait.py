"""The requesting console's side of the two-person rule: "waiting for a second operator".

``request_approval`` (call it from a worker) records the request, shows this
modal until another operator decides on their own console, and returns the
decided request; escape withdraws it. A runbook's approval step uses it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from console.sanitize import clean

if TYPE_CHECKING:  # pragma: no cover
    from textual.app import App

    from console.approvals import ApprovalRequest, Approvals

log = logging.getLogger(__name__)


class ApprovalWaitScreen(ModalScreen["ApprovalRequest"]):
    """Shows a pending request until it is decided; dismisses with the final request."""

    DEFAULT_CSS = """
    ApprovalWaitScreen { align: center middle; }
    ApprovalWaitScreen > Vertical {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    ApprovalWaitScreen .muted { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "withdraw", "Withdraw")]

    def __init__(self, approvals: Approvals, request: ApprovalRequest) -> None:
        super().__init__()
        self.approvals = approvals
        self.request = request
        self.started = time.monotonic()

    def compose(self) -> ComposeResult:
        r = self.request
        with Vertical():
            yield Static(Text("Two-person rule: waiting for a second operator", style="bold"))
            yield Static(Text(clean(f"#{r.id} {r.subject}"), style="bold"))
            if r.detail:
                yield Static(Text(clean(r.detail, keep_newlines=True)))
            yield Static("", id="wait-status", classes="muted")
            yield Static(
                Text(
                    "Another operator approves or rejects it from their own console "
                    "(w, then i). escape: withdraw the request"
                ),
                classes="muted",
            )

    def on_mount(self) -> None:
        self._tick()
        self.set_interval(1.0, self._tick)
        self._wait()

    def _tick(self) -> None:
        r = self.request
        elapsed = int(time.monotonic() - self.started)
        expires = ""
        if r.expires_at is not None:
            expires = " · expires " + time.strftime("%H:%M:%S", time.localtime(r.expires_at))
        self.query_one("#wait-status", Static).update(
            Text(f"asked by {r.requested_by} at {r.requested_at[11:19]} UTC{expires} · "
                 f"waiting {elapsed // 60:02d}:{elapsed % 60:02d}")
        )  # fmt: skip

    @work(exclusive=True, group="approval-wait")
    async def _wait(self) -> None:
        done = await self.approvals.wait(self.request.id)
        self.dismiss(done)

    @work(exclusive=True, group="approval-withdraw")
    async def action_withdraw(self) -> None:
        from console.approvals import ApprovalRefused

        try:
            done = await self.approvals.withdraw(self.request.id, "withdrawn by the requester")
        except ApprovalRefused as exc:  # decided in the meantime: the wait returns it
            self.notify(str(exc), severity="warning")
            return
        self.dismiss(done)


async def request_approval(
    app: App[Any],
    approvals: Approvals,
    subject: str,
    detail: str,
    *,
    incident_id: int | None = None,
    targets: Sequence[str] = (),
) -> ApprovalRequest:
    """Ask for a second operator's approval and wait on screen; call from a worker.

    Returns the request once decided: proceed only if ``status == "approved"``.
    """
    req = await approvals.request(subject, detail, incident_id=incident_id, targets=targets)
    return await app.push_screen_wait(ApprovalWaitScreen(approvals, req))
