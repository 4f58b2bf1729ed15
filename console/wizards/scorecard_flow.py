"""The scorecard flow: gather what the engine reads, evaluate, sign off, record, export.

Shared by ``dcc scorecard`` and the TUI screen. Blocking reads (SQLite, YAML)
run on worker threads. A sign-off is audited like the other flows' choices: the
audit row is written first, and a sign-off the audit log refused is not
recorded.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.audit import AuditWriteError
from console.plugin import Role
from console.sanitize import clean
from console.wizards.scorecard_book import ScorecardBook, default_scorecard_db
from console.wizards.scorecard_eval import Inputs, ScorecardEngine, SignOff
from console.wizards.scorecard_model import (
    LoadedChecklist,
    load_checklist,
    site_checklist,
)
from console.wizards.scorecard_result import ScorecardResult

if TYPE_CHECKING:  # pragma: no cover
    from console.audit import AuditLog
    from console.identity import Operator
    from console.inventory.model import Inventory
    from console.plugin import Plugin
    from console.session import Session
    from console.store import StoreView

log = logging.getLogger(__name__)

MAX_NOTE = 500


class SignRefused(Exception):
    """A sign-off was refused; the message says why (shown to the operator)."""


@dataclass(frozen=True, slots=True)
class Signer:
    """Who signs, with what rights, and where it is recorded."""

    audit: AuditLog | None
    operator: Operator
    role: Role
    read_only: bool = False


async def sign_item(
    book: ScorecardBook,
    signer: Signer,
    checklist: LoadedChecklist,
    site: str,
    item_id: str,
    note: str,
    *,
    revoke: bool = False,
) -> SignOff:
    """Sign off (or revoke the sign-off of) a manual item, audited first.

    Raises:
        SignRefused: unknown or automatic item, no note, read-only, role too low,
            or the audit log refused the row (then nothing is recorded).
    """
    verb = "revoke" if revoke else "sign"
    found = checklist.doc.item(item_id)
    if found is None:
        from console.inventory.problems import did_you_mean

        raise SignRefused(
            f"no item {item_id!r} in {checklist.label} "
            f"({did_you_mean(item_id, checklist.doc.item_ids(), 'items')})"
        )
    phase, item = found
    if item.manual is None:
        raise SignRefused(f"{item_id} is checked live ({item.kind}); only manual items are signed")
    text = clean(note).strip()
    if not text:
        raise SignRefused("a note is required: say what was checked, and where it is recorded")
    if len(text) > MAX_NOTE:
        raise SignRefused(f"the note is {len(text)} characters; keep it under {MAX_NOTE}")
    needed = Role.ADMIN if item.manual.role == "admin" else Role.OPERATOR
    refusal = None
    if signer.read_only:
        refusal = "the console is read-only"
    elif signer.role < needed:
        refusal = (
            f"{item_id} needs the {needed.name.lower()} role; you are {signer.role.name.lower()}"
        )
    params: dict[str, Any] = {"site": site, "phase": phase.id, "item": item_id, "title": item.title}
    await _audit(
        signer,
        f"scorecard.{verb}",
        item_id,
        params,
        "refused" if refusal else ("revoked" if revoke else "signed"),
        refusal or text,
    )
    if refusal:
        raise SignRefused(refusal)
    return await asyncio.to_thread(
        book.add_signoff, site, item_id, signer.operator.user, text, revoked=revoke
    )


async def _audit(
    signer: Signer, action: str, item_id: str, params: dict[str, Any], outcome: str, detail: str
) -> None:
    if signer.audit is None:
        raise SignRefused("no audit log is open: a sign-off must be on the record")
    try:
        await signer.audit.append_async(
            "scorecard",
            action=action,
            targets=[item_id],
            params=params,
            outcome=outcome,
            detail=detail,
            operator=signer.operator,
        )
    except AuditWriteError as exc:
        log.error("%s", exc)
        signer.audit.write_fallback(exc.event)
        raise SignRefused(f"the audit log refused the row: {exc}") from exc


@dataclass(slots=True)
class ScorecardFlow:
    """One site's scorecard: the engine, its record, and what it reads besides the Store."""

    engine: ScorecardEngine
    book: ScorecardBook
    store: StoreView
    signer: Signer
    drills_db: Path | None = None
    catalogue: Path | None = None
    inputs: Inputs = field(default_factory=Inputs)

    @property
    def site(self) -> str:
        return self.engine.inventory.site.name

    @property
    def checklist(self) -> LoadedChecklist:
        return self.engine.checklist

    async def load(self) -> None:
        """Read the sign-offs, the drill history and the drill catalogue (off the loop)."""
        self.inputs = await asyncio.to_thread(self._read_inputs)

    def _read_inputs(self) -> Inputs:
        from console.inventory.problems import InventoryError
        from console.wizards.drill_model import load_catalogue
        from console.wizards.drill_report import DrillStore

        signoffs = self.book.signoffs(self.site)
        drills = []
        if self.drills_db is not None and self.drills_db.exists():
            try:
                drills = DrillStore(self.drills_db).list()
            except Exception:  # a damaged drill history shows as "never run", and in the log
                log.exception("could not read the drill history %s", self.drills_db)
        scenarios: list[str] | None = None
        where = str(self.catalogue) if self.catalogue else ""
        if self.catalogue is not None and self.catalogue.exists():
            try:
                scenarios = [d.id for d in load_catalogue(self.catalogue).drills]
            except InventoryError as exc:
                log.warning("drill catalogue %s: %s", self.catalogue, exc)
                where += " (not valid: dcc drill scenarios)"
        return Inputs(
            signoffs=signoffs,
            drills=drills,
            scenarios=scenarios,
            catalogue=where,
            operator=self.signer.operator.user,
        )

    def evaluate(self) -> ScorecardResult:
        """Judge every item now (pure: the Store and what ``load`` read)."""
        import time

        inputs = Inputs(
            signoffs=self.inputs.signoffs,
            drills=self.inputs.drills,
            scenarios=self.inputs.scenarios,
            catalogue=self.inputs.catalogue,
            now=time.time(),
            operator=self.signer.operator.user,
        )
        return self.engine.evaluate(self.store, inputs)

    async def sign(self, item_id: str, note: str, *, revoke: bool = False) -> SignOff:
        signed = await sign_item(
            self.book, self.signer, self.checklist, self.site, item_id, note, revoke=revoke
        )
        await self.load()
        return signed

    async def record(self, result: ScorecardResult) -> ScorecardResult:
        """Keep ``result`` in the history; returns it with its snapshot id."""
        return await asyncio.to_thread(self.book.record, result)

    async def export(self, path: Path, fmt: str = "md") -> ScorecardResult:
        """Evaluate now, keep it in the history and write it to ``path`` (md or json)."""
        if fmt not in ("md", "json"):
            raise ValueError(f"format {fmt!r}: say md or json")
        result = await self.record(self.evaluate())
        text = result.to_json() + "\n" if fmt == "json" else result.to_markdown()
        await asyncio.to_thread(write_export, path, text)
        return result

    def default_export(self, fmt: str = "md") -> Path:
        """``scorecard-<site>-<UTC time>.<fmt>`` beside the scorecard database."""
        from datetime import UTC, datetime

        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        return self.book.path.parent / f"scorecard-{self.site}-{stamp}.{fmt}"


def write_export(path: Path, text: str) -> None:
    """Write an export, 0600: it names the site's hosts and who signed what."""
    from console.audit_files import create_private_file

    path = path.expanduser()
    create_private_file(path)
    with path.open("w", encoding="utf-8") as out:
        out.write(text)


def drill_paths(inventory: Inventory, audit_db: Path) -> tuple[Path, Path]:
    """(drill history database, drill catalogue) for a site, as the drill flow keeps them."""
    from console.wizards.drill_model import default_catalogue
    from console.wizards.drill_report import default_drill_db

    return default_drill_db(audit_db), default_catalogue(
        None if inventory.demo else inventory.source
    )


def build_flow(
    inventory: Inventory,
    plugins: list[Plugin],
    store: StoreView,
    signer: Signer,
    audit_db: Path,
    checklist: LoadedChecklist | Path | None = None,
) -> ScorecardFlow:
    """A flow for a site; the checklist defaults to the site's own, else the shipped one.

    Raises:
        InventoryError: the checklist file is not valid (file:line problems).
    """
    if not isinstance(checklist, LoadedChecklist):
        checklist = load_checklist(checklist or site_checklist(inventory.source, inventory.demo))
    drills_db, catalogue = drill_paths(inventory, audit_db)
    return ScorecardFlow(
        engine=ScorecardEngine(checklist, inventory, plugins),
        book=ScorecardBook(default_scorecard_db(audit_db)),
        store=store,
        signer=signer,
        drills_db=drills_db,
        catalogue=catalogue,
    )


def flow_for_session(
    session: Session, checklist: LoadedChecklist | Path | None = None
) -> ScorecardFlow:
    """The flow of a running console (its Store, audit log, operator and role)."""
    from console.identity import Operator

    runner = session.runner
    audit = session.audit
    if audit is None:
        raise RuntimeError("the scorecard needs the console's audit log")
    signer = Signer(
        audit=audit,
        operator=runner.operator if runner is not None else Operator.current(),
        role=runner.role if runner is not None else Role.VIEWER,
        read_only=session.read_only,
    )
    return build_flow(
        session.inventory, list(session.plugins), session.store, signer, audit.path, checklist
    )
