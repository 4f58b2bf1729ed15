"""UI tests drive the real app on a real demo session: lab over SSH and HTTP on loopback."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from console.options import LaunchOptions
from console.session import Session, start_session


def audit_rows(db: Path) -> list[dict[str, object]]:
    """Every audit row, read through a second connection as an auditor would."""
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM events ORDER BY id")]
    finally:
        con.close()


async def make_session(tmp_path: Path, *, read_only: bool = False) -> Session:
    options = LaunchOptions(
        inventory=None,
        read_only=read_only,
        audit_db=tmp_path / "audit" / "audit.db",
        scenario=None,
        lab_state_dir=tmp_path / "lab",
        poll=False,
        layout="oncall",  # the node list, alerts and services together
    )
    session = await start_session(options)
    assert session.poller is not None
    await session.poller.poll_once()
    return session


@pytest.fixture
async def demo_session(tmp_path: Path) -> AsyncIterator[Session]:
    session = await make_session(tmp_path)
    yield session
    await session.stop()


@pytest.fixture
async def read_only_session(tmp_path: Path) -> AsyncIterator[Session]:
    session = await make_session(tmp_path, read_only=True)
    yield session
    await session.stop()


async def press_layout(pilot: Any, key: str, name: str, timeout: float = 20.0) -> None:
    """Press a layout's key and wait until that layout is on screen.

    Switching mounts a new set of panes; on a loaded machine that takes more than
    one idle cycle, so wait for the result rather than a fixed pause.
    """
    await pilot.press(key)
    app = pilot.app
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while app.layout_view is None or app.layout_view.id != f"layout-{name}":
        if loop.time() > deadline:
            raise AssertionError(f"layout {name} did not appear after pressing {key}")
        await pilot.pause(0.05)
    await pilot.pause()
