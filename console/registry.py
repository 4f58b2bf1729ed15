"""Plugin discovery through the entry-point group ``dcconsole.plugins``.

Built-in plugins are found exactly like third-party ones. A plugin that fails
to import, is not a ``Plugin`` or breaks the contract is listed with its error
and the rest of the console runs without it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

from console.plugin import (
    CONTRACT_VERSION,
    ActionSpec,
    CheckSpec,
    CollectorSpec,
    PaneSpec,
    Plugin,
)

log = logging.getLogger(__name__)

GROUP = "dcconsole.plugins"

CORE_PANES: tuple[PaneSpec, ...] = (
    PaneSpec("core.alerts", "Alerts", "console.widgets.core_panes:AlertsPane"),
    PaneSpec("core.nodes", "Nodes", "console.widgets.core_panes:NodesPane"),
    PaneSpec("core.collectors", "Collectors", "console.widgets.core_panes:CollectorsPane"),
    PaneSpec(
        "core.out_of_service",
        "Nodes out of service",
        "console.widgets.out_of_service:OutOfServicePane",
    ),
)
"""Panes of the core itself; they read alerts, statuses and the inventory only."""


@dataclass(frozen=True, slots=True)
class BrokenPlugin:
    """A plugin that could not be loaded, and why."""

    name: str
    origin: str
    """Where it was declared (``module:attr`` of the entry point)."""
    error: str


@dataclass(slots=True)
class Registry:
    """The plugins found, the ones that failed, and lookups across them."""

    plugins: list[Plugin] = field(default_factory=list)
    broken: list[BrokenPlugin] = field(default_factory=list)

    def get(self, name: str) -> Plugin | None:
        return next((p for p in self.plugins if p.name == name), None)

    def collectors(self) -> list[tuple[Plugin, CollectorSpec]]:
        return [(p, c) for p in self.plugins for c in p.collectors]

    def panes(self) -> dict[str, PaneSpec]:
        """Every pane a layout may place: the core's and the plugins'."""
        found = {pane.id: pane for pane in CORE_PANES}
        found.update({pane.id: pane for p in self.plugins for pane in p.panes})
        return found

    def actions(self) -> dict[str, ActionSpec]:
        return {a.id: a for p in self.plugins for a in p.actions}

    def checks(self) -> dict[str, CheckSpec]:
        return {c.id: c for p in self.plugins for c in p.checks}

    def plugin_of(self, item_id: str) -> Plugin | None:
        """The plugin that owns a namespaced id (``services.restart`` -> services)."""
        return self.get(item_id.split(".", 1)[0])


def load_entry_point(ep: EntryPoint) -> Plugin:
    """Import one entry point and check it is a usable plugin (raises on any problem)."""
    obj = ep.load()
    if callable(obj) and not isinstance(obj, Plugin):
        obj = obj()  # a factory is allowed
    if not isinstance(obj, Plugin):
        raise TypeError(f"{ep.value} is a {type(obj).__name__}, not a console.plugin.Plugin")
    if obj.contract_version != CONTRACT_VERSION:
        raise TypeError(
            f"written for plugin contract {obj.contract_version}, "
            f"this console speaks {CONTRACT_VERSION}"
        )
    if obj.name != ep.name:
        raise TypeError(
            f"entry point is named {ep.name!r} but the plugin calls itself {obj.name!r}"
        )
    problems = obj.validate_ids()
    if problems:
        raise TypeError("; ".join(problems))
    return obj


def build(eps: Iterable[EntryPoint]) -> Registry:
    """A registry from entry points; failures become ``BrokenPlugin`` entries."""
    reg = Registry()
    seen: set[str] = set()
    for ep in sorted(eps, key=lambda e: e.name):
        if ep.name in seen:
            reg.broken.append(BrokenPlugin(ep.name, ep.value, "declared twice; the first one wins"))
            continue
        seen.add(ep.name)
        try:
            reg.plugins.append(load_entry_point(ep))
        except Exception as exc:  # a broken plugin must never stop the console
            log.warning("plugin %s failed to load: %s", ep.name, exc, exc_info=True)
            reg.broken.append(BrokenPlugin(ep.name, ep.value, f"{type(exc).__name__}: {exc}"))
    return reg


def discover(extra: Sequence[Plugin] = ()) -> Registry:
    """Plugins installed in this environment, plus ``extra`` (for tests and embedding)."""
    reg = build(entry_points(group=GROUP))
    reg.plugins.extend(extra)
    return reg
