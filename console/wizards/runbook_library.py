"""The runbooks a console offers: the plugins' built-in ones and the site's own.

Built-ins are the files each plugin declares in ``Plugin.runbooks``; a site's are
the ``*.yaml`` files in ``runbooks/`` beside its inventory (``inventory/runbooks/``
for the demo). A site runbook with a built-in's id replaces it. A file that does
not validate is left out and its problems are kept, so the rest still load (and
``dcc runbook list`` says what is wrong, with file:line).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from console.inventory.problems import InventoryError, Problem
from console.plugin import ActionSpec, CheckSpec, Finding, Plugin
from console.wizards.runbook_model import Runbook, check_references, load_runbook

log = logging.getLogger(__name__)

SITE = "site"


def site_runbook_dir(inventory_path: Path | None) -> Path:
    """Where a site's runbooks live: ``runbooks/`` beside its inventory file."""
    if inventory_path is None:
        return Path(__file__).resolve().parents[2] / "inventory" / "runbooks"
    return inventory_path.parent / "runbooks"


@dataclass(frozen=True, slots=True)
class Entry:
    runbook: Runbook
    source: str
    """The file it came from."""
    origin: str
    """The plugin that ships it, or ``site``."""
    replaces: str | None = None
    """The built-in file a site runbook overrides."""


@dataclass(frozen=True, slots=True)
class Offer:
    """A runbook offered for an alert, with its target filled in from the finding."""

    entry: Entry
    target: str
    finding: Finding | None = None

    @property
    def runbook(self) -> Runbook:
        return self.entry.runbook


@dataclass(slots=True)
class Library:
    entries: dict[str, Entry] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    """Files left out (invalid) and references no plugin declares."""

    def get(self, runbook_id: str) -> Entry | None:
        return self.entries.get(runbook_id)

    def all(self) -> list[Entry]:
        return sorted(self.entries.values(), key=lambda e: (e.runbook.target_kind, e.runbook.id))

    def offers(self, findings: Iterable[Finding]) -> list[Offer]:
        """Each runbook that answers each finding, with the finding's target (no duplicates)."""
        out: list[Offer] = []
        seen: set[tuple[str, str]] = set()
        for finding in findings:
            for entry in self.all():
                match = entry.runbook.answers_finding(finding)
                if match is None:
                    continue
                target = match.target_of(finding)
                if (entry.runbook.id, target) not in seen:
                    seen.add((entry.runbook.id, target))
                    out.append(Offer(entry, target, finding))
        return out

    def for_kind(self, kind: str) -> list[Entry]:
        return [e for e in self.all() if e.runbook.target_kind == kind]


def _files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _load(path: Path, problems: list[Problem]) -> Runbook | None:
    try:
        return load_runbook(path)
    except InventoryError as exc:
        problems.extend(exc.problems)
    except OSError as exc:
        problems.append(Problem(str(path), None, "", f"cannot read: {exc}"))
    return None


def load_library(
    plugins: Sequence[Plugin],
    site_dir: Path | None,
    *,
    checks: Mapping[str, CheckSpec] | None = None,
    actions: Mapping[str, ActionSpec] | None = None,
) -> Library:
    """Every built-in runbook, then the site's (replacing built-ins by id).

    With ``checks`` and ``actions`` given, references no plugin declares are added
    to the problems (the runbook stays: its step fails when reached, and says why).
    """
    lib = Library()
    for plugin in plugins:
        for path in plugin.runbooks:
            rb = _load(path, lib.problems)
            if rb is None:
                continue
            if rb.id in lib.entries:
                lib.problems.append(
                    Problem(
                        str(path),
                        None,
                        "id",
                        f"runbook id {rb.id!r} is already used by {lib.entries[rb.id].source}",
                        "give it another id",
                    )
                )
                continue
            lib.entries[rb.id] = Entry(rb, str(path), plugin.name)
    site_ids: dict[str, str] = {}
    for path in _files(site_dir) if site_dir is not None else []:
        rb = _load(path, lib.problems)
        if rb is None:
            continue
        if rb.id in site_ids:
            lib.problems.append(
                Problem(str(path), None, "id", f"runbook id {rb.id!r} is also in {site_ids[rb.id]}")
            )
            continue
        site_ids[rb.id] = str(path)
        old = lib.entries.get(rb.id)
        lib.entries[rb.id] = Entry(rb, str(path), SITE, old.source if old else None)
    if checks is not None and actions is not None:
        for entry in lib.all():
            lib.problems.extend(check_references(entry.runbook, checks, actions, entry.source))
    return lib
