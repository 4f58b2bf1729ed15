"""The command palette's action entries: every action the plugins offer, by target."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:  # pragma: no cover
    from console.app import DcConsoleApp


def _entry_text(label: str, target: str, destructive: bool, read_only: bool) -> str:
    text = f"{label}: {target}"
    if destructive:
        text += "  (destructive)"
    if read_only:
        text += "  (read-only: will be refused)"
    return text


class ActionCommands(Provider):
    """Lists (action, target) pairs; choosing one starts the confirm flow."""

    def _entries(self) -> list[tuple[str, str, partial[Any]]]:
        app: DcConsoleApp = self.app  # type: ignore[assignment]
        read_only = app.options.read_only
        out = []
        for spec, target in app.action_entries():
            text = _entry_text(spec.label, target.name, spec.destructive, read_only)
            out.append((text, spec.description or spec.id, partial(app.start_action, spec, target)))
        return out

    async def discover(self) -> Hits:
        for text, help_text, callback in self._entries():
            yield DiscoveryHit(text, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help_text, callback in self._entries():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help_text)
