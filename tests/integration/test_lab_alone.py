"""`dcc lab` runs the simulated datacenter alone, and another console is pointed at it.

The lab runs as its own process (as an operator would start it); the console
side is a real session built from the inventory the lab wrote, with the lab's
known_hosts verified like any site's; faults are injected with `dcc lab fault`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.options import LaunchOptions
from console.session import start_session


def dcc(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture
def lab_process(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    state = tmp_path / "lab"
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "console", "lab", "--state-dir", str(state), "--scenario", "none"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not (state / "lab.json").exists():
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "the lab did not start"
            time.sleep(0.1)
        yield state, env
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


async def test_a_console_pointed_at_a_running_lab_sees_it_and_its_faults(
    lab_process: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    state, env = lab_process
    inventory = state / "inventory.yaml"
    assert dcc("check", str(inventory), env=env).returncode == 0
    session = await start_session(
        LaunchOptions(inventory=inventory, audit_db=tmp_path / "a" / "audit.db", poll=False)
    )
    try:
        assert session.lab is None  # nothing embedded: the other process serves it
        assert session.poller is not None
        await session.poller.poll_once()
        state_of = session.store.value("svc:minio-stor01", "services.state")
        assert state_of == "ok"
        added = dcc(
            "lab",
            "fault",
            "add",
            "services.down",
            "minio-stor01",
            "--state-dir",
            str(state),
            env=env,
        )
        assert added.returncode == 0, added.stderr
        await session.poller.poll_once()
        assert session.store.value("svc:minio-stor01", "services.state") == "down"
        listed = dcc("lab", "fault", "list", "--state-dir", str(state), env=env)
        assert "services.down" in listed.stdout
    finally:
        await session.stop()
