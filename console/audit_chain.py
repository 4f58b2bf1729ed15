"""The audit log's hash chain: row hashes, the anchor file and the verifier.

Each row's ``hash`` is SHA-256 (hex) of ``prev_hash`` followed by the canonical
JSON (sorted keys, no spaces) of every other column of the row, ``id`` and
``prev_hash`` included; ``targets`` and ``params`` are hashed as the JSON text
stored. The first row's ``prev_hash`` is 64 zeros.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENESIS = "0" * 64

HASHED_FIELDS: tuple[str, ...] = (
    "id",
    "ts",
    "operator",
    "ssh_client",
    "tty",
    "console_host",
    "pid",
    "action_uid",
    "action",
    "targets",
    "params",
    "phase",
    "outcome",
    "duration_ms",
    "detail",
    "prev_hash",
)
"""Every column of ``events`` but ``hash``, in table order."""


def canonical(row: Mapping[str, Any]) -> str:
    """Canonical JSON of the hashed fields of ``row``."""
    return json.dumps(
        {f: row.get(f) for f in HASHED_FIELDS},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def row_hash(row: Mapping[str, Any]) -> str:
    """The hash a row must carry, given its fields (its own ``prev_hash`` included)."""
    prev = row.get("prev_hash") or ""
    return hashlib.sha256((prev + canonical(row)).encode("utf-8")).hexdigest()


def insert_linked(conn: sqlite3.Connection, event: Mapping[str, Any]) -> dict[str, Any]:
    """Chain ``event`` onto the head row and insert it; returns the row as stored.

    The caller holds a write transaction (``BEGIN IMMEDIATE``), so two consoles
    on one file never chain onto the same previous row.
    """
    head = conn.execute("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1").fetchone()
    row = dict(event)
    row["id"] = 1 if head is None else head[0] + 1
    row["prev_hash"] = GENESIS if head is None else head[1]
    row["hash"] = row_hash(row)
    cols = (*HASHED_FIELDS, "hash")
    conn.execute(
        f"INSERT INTO events ({', '.join(cols)}) "  # noqa: S608 - constant columns
        f"VALUES ({', '.join('?' for _ in cols)})",
        [row[c] for c in cols],
    )
    return row


@dataclass(frozen=True, slots=True)
class AnchorEntry:
    """One line of the anchor file: the chain head at some moment."""

    id: int
    hash: str
    ts: str


def read_anchor(path: Path) -> list[AnchorEntry]:
    """Entries of an anchor file (lines ``id hash ts``); malformed lines raise ValueError."""
    entries = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or not parts[0].isdigit() or len(parts[1]) != 64:
            raise ValueError(f"{path}:{lineno}: not an anchor line (id hash ts): {line!r}")
        entries.append(AnchorEntry(int(parts[0]), parts[1], parts[2]))
    return entries


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``verify`` found."""

    ok: bool
    rows: int
    """Rows checked."""
    first_bad_id: int | None = None
    """The id of the first row that does not verify (None when ok or not row-specific)."""
    message: str = ""
    anchors_checked: int = 0


def _rows(conn: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    conn.row_factory = sqlite3.Row
    cols = ", ".join((*HASHED_FIELDS, "hash"))
    for r in conn.execute(f"SELECT {cols} FROM events ORDER BY id"):  # noqa: S608 - constant
        yield dict(r)


def verify(path: Path, anchor_path: Path | None = None) -> VerifyReport:
    """Check the hash chain of the audit database at ``path``.

    Detects, pointing at the first bad row id: a changed byte in any field of a
    row (its hash no longer matches), a deleted row (the next row's
    ``prev_hash`` no longer links), and reordered or swapped rows (both).

    Limit: a chain verifies itself only from the inside. Cutting rows off the
    *end*, or rewriting the whole chain consistently (recomputing every hash),
    leaves a valid chain. Only an anchor kept outside the database (the head
    hashes ``AuditLog.write_anchor`` records) detects those, and only for rows
    up to the last anchored one: rows written after the last anchor can still
    be cut or rewritten unnoticed. Without ``anchor_path`` neither is detected.

    Streams the table; memory does not grow with its size.
    """
    from console.audit_files import private_umask

    if not path.exists():
        return VerifyReport(False, 0, None, f"no audit database at {path}")
    try:
        with private_umask(path.parent):  # a reader may create the -shm file
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return VerifyReport(False, 0, None, f"cannot open {path}: {exc}")
    with contextlib.closing(conn):
        try:
            report = _verify_chain(conn)
            if not report.ok or anchor_path is None:
                return report
            return _verify_anchor(conn, anchor_path, report)
        except sqlite3.Error as exc:
            return VerifyReport(False, 0, None, f"cannot read {path}: {exc}")


def _verify_chain(conn: sqlite3.Connection) -> VerifyReport:
    prev_hash = GENESIS
    prev_id = 0
    count = 0
    for row in _rows(conn):
        count += 1
        rid = row["id"]
        if row["prev_hash"] != prev_hash:
            if rid != prev_id + 1:
                why = f"row(s) {prev_id + 1}..{rid - 1} are missing (deleted)"
            else:
                why = "its prev_hash does not match the previous row's hash (edited or reordered)"
            return VerifyReport(False, count, rid, f"row {rid}: chain broken: {why}")
        if row_hash(row) != row["hash"]:
            return VerifyReport(
                False, count, rid, f"row {rid}: content does not match its hash (edited)"
            )
        if rid != prev_id + 1:
            # Linked correctly yet ids jump: someone renumbered and rehashed.
            return VerifyReport(False, count, rid, f"row {rid}: ids jump from {prev_id}")
        prev_hash = row["hash"]
        prev_id = rid
    return VerifyReport(True, count, None, f"{count} rows verified, chain intact")


def _verify_anchor(
    conn: sqlite3.Connection, anchor_path: Path, report: VerifyReport
) -> VerifyReport:
    try:
        entries = read_anchor(anchor_path)
    except (OSError, ValueError) as exc:
        return VerifyReport(False, report.rows, None, f"cannot read anchor: {exc}")
    for n, entry in enumerate(entries, 1):
        found = conn.execute("SELECT hash FROM events WHERE id = ?", (entry.id,)).fetchone()
        if found is None:
            return VerifyReport(
                False,
                report.rows,
                entry.id,
                f"row {entry.id} anchored at {entry.ts} is missing: the log was truncated",
                n,
            )
        if found[0] != entry.hash:
            return VerifyReport(
                False,
                report.rows,
                entry.id,
                f"row {entry.id} does not match the hash anchored at {entry.ts}: "
                "the chain was rewritten",
                n,
            )
    return VerifyReport(
        True,
        report.rows,
        None,
        f"{report.message}; {len(entries)} anchor(s) match",
        len(entries),
    )
