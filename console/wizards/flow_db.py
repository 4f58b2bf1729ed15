"""The durable state of a guided flow: one SQLite file beside the audit database.

Rollouts and runbook runs keep their progress here so a console that dies can be
followed by one that resumes. The file gets the audit log's privacy (0600, or
0660 in an operators' team folder: see ``console.audit_files``), WAL with
``synchronous=FULL`` (a committed step survives a power cut), and one lock: the
connection is used from worker threads, one call at a time, never on the UI loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlite_utils

from console.audit_files import check_private, create_private_file, private_umask

T = TypeVar("T")


class FlowDatabase:
    """Opens (creating privately) a flow's database; subclasses add ``_create`` and queries."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = path
        create_private_file(path)  # private from the first byte
        check_private(path, "flow database")
        with private_umask(path.parent):  # the -wal and -shm files SQLite makes
            conn = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=busy_timeout_s
            )
            self._db = sqlite_utils.Database(conn)
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._lock = threading.Lock()
        self._create()

    def _create(self) -> None:
        """Create the tables (and add columns a newer release needs)."""

    def _locked(self, fn: Callable[[], T]) -> T:
        with self._lock:
            return fn()

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(self._locked, fn)

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.conn.close()
