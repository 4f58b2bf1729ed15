"""A scorecard evaluation: each item's verdict with its evidence, per phase, exportable.

Kept as pydantic records (like the drill report) so a snapshot round-trips
through SQLite and JSON unchanged. Every text here may carry remote text (a
BMC's error, a service's body): it is cleaned before it is stored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from console.sanitize import clean

Status = Literal["pass", "fail", "unknown"]
MARKS: dict[str, str] = {"pass": "✓", "fail": "✗", "unknown": "?"}
"""The glyph of each status: the state reads without colour (NO_COLOR)."""


class _Rec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ItemResult(_Rec):
    id: str
    title: str
    kind: str
    """check, racked, backups, drills, alerts or manual."""
    status: Status
    summary: str
    """One line: why it passes or not."""
    evidence: list[str] = []
    """What was seen, one line per target (failing first)."""
    check: str | None = None
    """The plugin check id, for check items."""
    signed_by: str | None = None
    signed_at: str | None = None
    note: str = ""

    @property
    def mark(self) -> str:
        return MARKS[self.status]


class PhaseResult(_Rec):
    id: str
    title: str
    description: str = ""
    items: list[ItemResult]

    @property
    def passed(self) -> int:
        return sum(1 for i in self.items if i.status == "pass")

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def complete(self) -> bool:
        return self.passed == self.total

    @property
    def progress(self) -> str:
        """``complete`` or ``N of M``."""
        return "complete" if self.complete else f"{self.passed} of {self.total}"


class ScorecardResult(_Rec):
    id: str = ""
    """The snapshot id once recorded in the history ("" before)."""
    title: str
    site: str
    checklist: str
    """The checklist file it was evaluated against."""
    evaluated_at: str
    """UTC, ISO 8601."""
    operator: str

    phases: list[PhaseResult]

    def item(self, item_id: str) -> ItemResult | None:
        return next((i for p in self.phases for i in p.items if i.id == item_id), None)

    def summary(self) -> str:
        """``base 7/10 · platform complete · production 0/9``."""
        return " · ".join(
            f"{p.id} {'complete' if p.complete else f'{p.passed}/{p.total}'}" for p in self.phases
        )

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def to_markdown(self) -> str:
        out = [
            f"# {_md(self.title)}: {_md(self.site)}",
            "",
            f"- Evaluated: {self.evaluated_at} by {_md(self.operator)}",
            f"- Checklist: `{_md(self.checklist)}`",
        ]
        if self.id:
            out.append(f"- Snapshot: `{self.id}`")
        out += ["", "| Phase | Result |", "|---|---|"]
        out += [f"| {_md(p.title)} | {p.progress} |" for p in self.phases]
        for p in self.phases:
            out += ["", f"## {_md(p.title)}: {p.progress}", ""]
            if p.description:
                out += [_md(p.description), ""]
            out += ["| | Item | Result | Why |", "|---|---|---|---|"]
            for i in p.items:
                out.append(
                    f"| {i.mark} | {_md(i.title)} (`{i.id}`) | {i.status} | {_md(i.summary)} |"
                )
            detailed = [i for i in p.items if i.evidence and i.status != "pass"]
            if detailed:
                out += ["", "Evidence:", ""]
                for i in detailed:
                    out.append(f"- {i.mark} `{i.id}`")
                    out += [f"  - {_md(e)}" for e in i.evidence]
        return "\n".join(out) + "\n"


def _md(text: str) -> str:
    """One table-safe line: no control characters, no line breaks, pipes escaped."""
    return clean(text).replace("|", "\\|")


def tidy(text: str, limit: int = 400) -> str:
    """Remote text made safe and short for a result line."""
    text = clean(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
