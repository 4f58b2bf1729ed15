"""Target leases: two consoles (processes) on one audit database never act on one target.

Leases live in the audit database (table ``leases``) but not in the hash
chain: they are coordination state, not a record. Taking one uses
``BEGIN IMMEDIATE`` so the check and the write are one step for every
process on the file. A lease has a time to live so a console that died does
not hold its targets for ever; an expired lease may be taken over.
"""

from __future__ import annotations

import time

from console.audit_model import AuditWorker


class LeaseMixin(AuditWorker):
    """Lease methods of ``AuditLog``; each runs on the audit thread."""

    def _acquire(self, target: str, holder: str, ttl_s: float, now: float) -> bool:
        conn, _ = self._require()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT holder, expires_at FROM leases WHERE target = ?", (target,)
            ).fetchone()
            if row is not None and row["holder"] != holder and row["expires_at"] > now:
                conn.execute("COMMIT")
                return False
            conn.execute(
                "INSERT INTO leases (target, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(target) DO UPDATE SET holder = excluded.holder, "
                "acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
                (target, holder, now, now + ttl_s),
            )
            conn.execute("COMMIT")
            return True
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def acquire_lease(self, target: str, holder: str, ttl_s: float) -> bool:
        """Take (or renew) the lease on ``target`` for ``holder``; False if another holds it.

        Raises:
            sqlite3.Error: the database could not be written (callers fail closed).
        """
        return self._call(self._acquire, target, holder, ttl_s, time.time())

    async def acquire_lease_async(self, target: str, holder: str, ttl_s: float) -> bool:
        return await self._acall(self._acquire, target, holder, ttl_s, time.time())

    def _release(self, target: str, holder: str) -> None:
        conn, _ = self._require()
        conn.execute("DELETE FROM leases WHERE target = ? AND holder = ?", (target, holder))

    def release_lease(self, target: str, holder: str) -> None:
        """Give a lease back; a lease held by someone else is left alone."""
        self._call(self._release, target, holder)

    async def release_lease_async(self, target: str, holder: str) -> None:
        await self._acall(self._release, target, holder)

    def _holder(self, target: str, now: float) -> str | None:
        conn, _ = self._require()
        row = conn.execute(
            "SELECT holder FROM leases WHERE target = ? AND expires_at > ?", (target, now)
        ).fetchone()
        return None if row is None else str(row["holder"])

    def lease_holder(self, target: str) -> str | None:
        """Who holds an unexpired lease on ``target``, or None."""
        return self._call(self._holder, target, time.time())

    def _live(self, now: float) -> list[tuple[str, str]]:
        conn, _ = self._require()
        rows = conn.execute(
            "SELECT target, holder FROM leases WHERE expires_at > ? ORDER BY target", (now,)
        ).fetchall()
        return [(str(r["target"]), str(r["holder"])) for r in rows]

    async def live_leases_async(self) -> list[tuple[str, str]]:
        """Every unexpired lease as (target, holder)."""
        return await self._acall(self._live, time.time())
