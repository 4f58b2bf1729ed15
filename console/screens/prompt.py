"""A small modal asking for one or more lines of text (a note, a summary, a path).

Enter on the last field submits, enter on another moves on; escape cancels.
Returns the values (stripped) or None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


@dataclass(frozen=True, slots=True)
class Field:
    label: str
    value: str = ""
    placeholder: str = ""
    required: bool = True


class PromptScreen(ModalScreen[list[str] | None]):
    """Ask for ``fields``; dismisses with their values, or None on escape."""

    DEFAULT_CSS = """
    PromptScreen { align: center middle; }
    PromptScreen > Vertical {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    PromptScreen .label { color: $text-muted; }
    PromptScreen #prompt-error { color: $error; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, fields: Sequence[Field], hint: str = "") -> None:
        super().__init__()
        self.prompt_title = title
        self.fields = list(fields)
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.prompt_title, style="bold"))
            if self.hint:
                yield Static(Text(self.hint), classes="label")
            for n, f in enumerate(self.fields):
                yield Static(Text(f.label), classes="label")
                yield Input(value=f.value, placeholder=f.placeholder, id=f"prompt-{n}")
            yield Static("", id="prompt-error")
            yield Static(Text("enter: next/submit · escape: cancel"), classes="label")

    def on_mount(self) -> None:
        self.query_one("#prompt-0", Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        inputs = list(self.query(Input))
        index = inputs.index(event.input)
        if index < len(inputs) - 1:
            inputs[index + 1].focus()
            return
        values = [i.value.strip() for i in inputs]
        for f, value, box in zip(self.fields, values, inputs, strict=True):
            if f.required and not value:
                self.query_one("#prompt-error", Static).update(Text(f"{f.label}: required"))
                box.focus()
                return
        self.dismiss(values)

    def action_cancel(self) -> None:
        self.dismiss(None)
