"""Confirmation of an action: what will happen, to which targets, typed when destructive.

Safety rules (RELIABILITY.md S7, F13): the dialog names the targets and their
count; a destructive action needs the exact target-derived text typed; focus
starts away from Confirm so a held Enter cannot confirm; below 80x24 Confirm
is disabled because the target list may not be fully visible.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from console.sanitize import clean

MIN_WIDTH, MIN_HEIGHT = 80, 24


@dataclass(frozen=True, slots=True)
class ConfirmRequest:
    """What the dialog shows; built from the runner's plan."""

    title: str
    targets: tuple[str, ...]
    preview: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    confirm_text: str | None = None
    """Text to type for a destructive action; None means a plain confirm."""


class ConfirmScreen(ModalScreen[str | None]):
    """Returns the typed text (or "yes") on confirm, None on cancel."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    ConfirmScreen #targets { height: auto; max-height: 6; }
    ConfirmScreen #preview { height: auto; max-height: 8; }
    ConfirmScreen #warnings { color: $warning; }
    ConfirmScreen #too-small { color: $error; }
    ConfirmScreen Horizontal { height: auto; align-horizontal: right; }
    ConfirmScreen Button { margin: 0 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, request: ConfirmRequest) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        r = self.request
        with Vertical():
            yield Static(Text(clean(r.title), style="bold"), id="title")
            count = len(r.targets)
            yield Static(Text(f"{count} target{'s' if count != 1 else ''}:"), id="count")
            with VerticalScroll(id="targets"):
                yield Static(Text("\n".join("  " + clean(t) for t in r.targets)))
            with VerticalScroll(id="preview"):
                yield Static(Text("\n".join(clean(line) for line in r.preview)))
            if r.warnings:
                yield Static(Text("\n".join("▲ " + clean(w) for w in r.warnings)), id="warnings")
            if r.confirm_text is not None:
                yield Static(Text(f"Type {r.confirm_text} to confirm:"), id="prompt")
                yield Input(placeholder=r.confirm_text, id="typed")
            yield Static("", id="too-small")
            with Horizontal():
                yield Button("Cancel", id="cancel", variant="default")
                yield Button("Confirm", id="confirm", variant="error", disabled=True)

    def on_mount(self) -> None:
        if self.request.confirm_text is not None:
            self.query_one("#typed", Input).focus()
        else:
            self.query_one("#cancel", Button).focus()
        self._update_confirm()

    def on_resize(self) -> None:
        self._update_confirm()

    @property
    def large_enough(self) -> bool:
        size = self.app.size
        return size.width >= MIN_WIDTH and size.height >= MIN_HEIGHT

    def _typed_ok(self) -> bool:
        if self.request.confirm_text is None:
            return True
        return self.query_one("#typed", Input).value == self.request.confirm_text

    def _update_confirm(self) -> None:
        big = self.large_enough
        self.query_one("#too-small", Static).update(
            "" if big else f"enlarge the terminal to {MIN_WIDTH}x{MIN_HEIGHT} to confirm"
        )
        self.query_one("#confirm", Button).disabled = not (big and self._typed_ok())

    @on(Input.Changed, "#typed")
    def _typed_changed(self) -> None:
        self._update_confirm()

    @on(Input.Submitted, "#typed")
    def _typed_submitted(self) -> None:
        if self._typed_ok() and self.large_enough:
            self._confirm()

    @on(Button.Pressed, "#confirm")
    def _confirm_pressed(self) -> None:
        if self._typed_ok() and self.large_enough:
            self._confirm()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    def _confirm(self) -> None:
        if self.request.confirm_text is None:
            self.dismiss("yes")
        else:
            self.dismiss(self.query_one("#typed", Input).value)

    def action_cancel(self) -> None:
        self.dismiss(None)
