"""A dropped SSH session (SIGHUP) is handled on purpose: recorded, and the console exits.

Runs the real `dcc` (the demo, with its lab) on a real pseudo-terminal, as an
operator's SSH session would, then hangs up: the signal arrives and the
terminal goes away.
"""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest


def phases(db: Path) -> list[str]:
    if not db.exists():
        return []
    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("SELECT phase FROM events ORDER BY id")]
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.timeout(120)
def test_sighup_records_the_disconnect_and_exits(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"), TERM="xterm-256color")
    proc = subprocess.Popen(
        [sys.executable, "-m", "console", "--audit-db", str(db), "--no-scenario"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    screen = bytearray()

    def drain() -> None:  # an SSH client reads the terminal; so must we
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            screen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        wait_for(lambda: "startup" in phases(db), 60, "the console to start")
        wait_for(lambda: b"DEMO" in screen, 30, "the header to paint")
        proc.send_signal(signal.SIGHUP)
        os.close(master)  # the terminal is gone too
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 129
    assert phases(db)[-1] == "disconnect"
