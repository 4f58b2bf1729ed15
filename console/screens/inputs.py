"""The form for an action's typed inputs (a drain reason, a MIG profile ...).

Built from the action's pydantic model: one field per input, its description
as the label, its default filled in. Validation is the runner's (the same
model); its message names the field and the form stays open to fix it.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Select, Static, Switch


def _choices(info: FieldInfo) -> tuple[str, ...] | None:
    """The allowed values of a ``Literal[...]`` field, else None."""
    if typing.get_origin(info.annotation) is typing.Literal:
        return tuple(str(a) for a in typing.get_args(info.annotation))
    return None


def _is_bool(info: FieldInfo) -> bool:
    return info.annotation is bool


class InputsScreen(ModalScreen[dict[str, Any] | None]):
    """Returns the entered values (as text/bool; the model converts), or None."""

    DEFAULT_CSS = """
    InputsScreen { align: center middle; }
    InputsScreen > Vertical {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: thick $accent; background: $surface; padding: 0 1;
    }
    InputsScreen VerticalScroll { height: auto; max-height: 16; }
    InputsScreen .label { color: $text-muted; margin-top: 1; }
    InputsScreen #error { color: $error; }
    InputsScreen Horizontal { height: auto; align-horizontal: right; }
    InputsScreen Button { margin: 0 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        model: type[BaseModel],
        values: dict[str, Any] | None = None,
        error: str = "",
    ) -> None:
        super().__init__()
        self.form_title = title
        self.model = model
        self.values = values or {}
        self.error = error

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.form_title, style="bold"))
            with VerticalScroll():
                for name, info in self.model.model_fields.items():
                    label = info.description or name.replace("_", " ")
                    required = " (required)" if info.is_required() else ""
                    yield Static(Text(f"{label}{required}"), classes="label")
                    current = self.values.get(name, None if info.is_required() else info.default)
                    choices = _choices(info)
                    if _is_bool(info):
                        yield Switch(value=bool(current), id=f"in-{name}")
                    elif choices is not None:
                        yield Select(
                            [(c, c) for c in choices],
                            value=str(current) if current is not None else Select.BLANK,
                            id=f"in-{name}",
                        )
                    else:
                        yield Input(value="" if current is None else str(current), id=f"in-{name}")
            yield Static(Text(self.error), id="error")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Next", id="next", variant="primary")

    def collect(self) -> dict[str, Any]:
        """The form's values; empty optional text fields are left out (their default applies)."""
        out: dict[str, Any] = {}
        for name, info in self.model.model_fields.items():
            widget = self.query_one(f"#in-{name}")
            if isinstance(widget, Switch):
                out[name] = widget.value
            elif isinstance(widget, Select):
                if widget.value is not Select.BLANK:
                    out[name] = widget.value
            elif isinstance(widget, Input) and (widget.value != "" or info.is_required()):
                out[name] = widget.value
        return out

    @on(Button.Pressed, "#next")
    @on(Input.Submitted)
    def _next(self) -> None:
        self.dismiss(self.collect())

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
