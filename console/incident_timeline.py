"""How an incident's timeline reads: audit rows as lines, and entries merged in.

An entry a runbook writes about a step it also audited names that event on its
own audit row (``about_event``: the row id; ``about_action``: an action's uid,
whose result row is the event). When the timeline merges that row in (it is
about the incident's target), entry and row are one event and show as one line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from console.audit_model import AuditEvent
from console.audit_query import TERMINAL_PHASES


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One line of an incident's timeline."""

    ts: str
    kind: str
    """note, action, runbook step, approval, hand-off, open, close, or an audit phase."""
    operator: str
    text: str
    source: Literal["incident", "audit"]
    """``audit`` also for an entry merged into the audit row it narrates (one line each)."""
    ref: int
    """The entry id (``incident``) or the audit row id (``audit``)."""


@dataclass(frozen=True, slots=True)
class EntryLine:
    """An incident entry, where it goes (its audit row id) and what it narrates."""

    seq: int
    item: TimelineItem
    about_event: int | None = None
    about_action: str = ""


def kind_of(ev: AuditEvent) -> str:
    """How an audit row reads in a timeline."""
    if "runbook" in ev.phase or ev.action.startswith("runbook"):
        return "runbook step"
    if ev.phase == "approval":
        return "approval"
    if ev.phase in ("intent", "result", "refused", "reconcile"):
        return "action"
    return ev.phase


def audit_text(ev: AuditEvent) -> str:
    parts = [ev.action or ev.phase]
    if ev.targets:
        parts.append(",".join(ev.targets))
    if ev.phase in ("intent", "refused", "reconcile"):
        parts.append(ev.phase)
    if ev.outcome:
        parts.append(ev.outcome)
    text = " ".join(parts)
    if ev.detail:
        text += f": {ev.detail}"
    return text


def entry_link(params_json: str | None) -> tuple[int | None, str]:
    """What an entry narrates, from its own audit row's params (``about_event``,
    ``about_action``); (None, "") when it says nothing (a note, an older entry)."""
    try:
        params = json.loads(params_json or "{}")
    except ValueError:
        return None, ""
    if not isinstance(params, dict):
        return None, ""
    event, uid = params.get("about_event"), params.get("about_action")
    return (event if isinstance(event, int) else None), (uid if isinstance(uid, str) else "")


def merged(row: TimelineItem, entry: TimelineItem) -> TimelineItem:
    """One line for an audit row and the entry written about it: the row's place and
    record, the entry's kind, and whichever text says more (the entry's on a tie)."""
    text = entry.text if len(entry.text.strip()) >= len(row.text.strip()) else row.text
    return replace(row, kind=entry.kind, text=text)


def merge(
    entries: Sequence[EntryLine], rows: Iterable[AuditEvent]
) -> list[tuple[int, TimelineItem]]:
    """(commit order, line) for the entries and the audit rows, each event once."""
    lines: dict[int, TimelineItem] = {}
    results: dict[str, list[int]] = {}  # an action's uid -> its result rows
    for ev in rows:
        lines[ev.id] = TimelineItem(ev.ts, kind_of(ev), ev.operator, audit_text(ev), "audit", ev.id)
        if ev.action_uid and ev.phase in TERMINAL_PHASES:
            results.setdefault(ev.action_uid, []).append(ev.id)
    out: list[tuple[int, TimelineItem]] = []
    for entry in entries:
        event = entry.about_event
        if event is None and len(results.get(entry.about_action, ())) == 1:
            event = results[entry.about_action][0]  # one target: its result is the event
        if event is not None and event in lines:
            lines[event] = merged(lines[event], entry.item)
        else:  # nothing it narrates is in this timeline: the entry is the only line
            out.append((entry.seq, entry.item))
    out.extend(lines.items())
    return out
