"""Local processes: minimal environment, timeouts kill the group, output capped."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from console.transports import CommandTimeout, TransportError
from console.transports.proc import ProcRunner


async def test_runs_argv_and_reports_output_and_status():
    result = await ProcRunner().run(["sh", "-c", "echo out; echo err >&2; exit 4"], timeout=5)
    assert (result.stdout, result.stderr, result.exit_status) == ("out\n", "err\n", 4)


async def test_stdin_is_fed_to_the_process():
    result = await ProcRunner().run(["cat"], timeout=5, stdin=b"from stdin")
    assert result.stdout == "from stdin"


async def test_the_environment_is_minimal(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DCC_CANARY_TOKEN", "s3cr3t-canary")
    result = await ProcRunner().run(["env"], timeout=5, env={"IPMI_PASSWORD": "given"})
    names = {line.split("=", 1)[0] for line in result.stdout.splitlines()}
    assert "s3cr3t-canary" not in result.stdout
    assert {"PATH", "LANG", "IPMI_PASSWORD"} <= names
    assert names - {"PATH", "LANG", "IPMI_PASSWORD", "PWD", "SHLVL", "_"} == set()


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


async def test_a_timeout_kills_the_whole_process_group(tmp_path: Path):
    pidfile = tmp_path / "child.pid"
    script = f"sleep 60 & echo $! > {pidfile}; wait"
    start = time.monotonic()
    with pytest.raises(CommandTimeout, match="killed"):
        await ProcRunner().run(["sh", "-c", script], timeout=0.5)
    assert time.monotonic() - start < 3
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 3
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(child), "the grandchild survived the timeout"


async def test_output_past_the_cap_is_cut_and_flagged():
    result = await ProcRunner(max_output=1000).run(["head", "-c", "300000", "/dev/zero"], timeout=5)
    assert result.truncated and len(result.stdout) == 1000 and result.exit_status == 0


async def test_a_missing_program_is_a_transport_error():
    with pytest.raises(TransportError, match="cannot run /nonexistent/tool"):
        await ProcRunner().run(["/nonexistent/tool"], timeout=5)
