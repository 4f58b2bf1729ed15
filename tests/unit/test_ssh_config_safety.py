"""Every SSH connection goes through connect_verified (RELIABILITY.md S3)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from console.transports import HostKeyRejected
from console.transports.ssh import connect_verified

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = ROOT / "console" / "transports" / "ssh.py"


def _python_files() -> list[Path]:
    return sorted(p for d in ("console", "plugins") for p in (ROOT / d).rglob("*.py"))


def test_no_module_but_the_ssh_transport_calls_asyncssh_connect():
    pattern = re.compile(r"asyncssh\s*\.\s*connect\s*\(|from\s+asyncssh\s+import[^\n]*\bconnect\b")
    offenders = [
        str(p.relative_to(ROOT))
        for p in _python_files()
        if p != WRAPPER and pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_the_ssh_transport_calls_asyncssh_connect_exactly_once():
    tree = ast.parse(WRAPPER.read_text(encoding="utf-8"))
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "connect"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "asyncssh"
    ]
    assert len(calls) == 1
    kwargs = {kw.arg: kw.value for kw in calls[0].keywords}
    # Explicit: host keys checked against our file, no agent, no user config, timeouts set.
    for name in (
        "known_hosts",
        "config",
        "agent_path",
        "agent_forwarding",
        "connect_timeout",
        "login_timeout",
        "keepalive_interval",
        "keepalive_count_max",
    ):
        assert name in kwargs, name
    assert ast.literal_eval(kwargs["agent_forwarding"]) is False
    assert ast.literal_eval(kwargs["agent_path"]) is None
    assert ast.literal_eval(kwargs["config"]) == []
    assert isinstance(kwargs["known_hosts"], ast.Call)  # str(kh_path), never None
    enclosing = inspect.getsource(connect_verified)
    assert "asyncssh.connect(" in enclosing


async def test_connect_verified_refuses_without_known_hosts():
    with pytest.raises(HostKeyRejected, match="no known_hosts configured for gpu003"):
        await connect_verified(
            "127.0.0.1", 22, username="ops", known_hosts=None, client_keys=None, label="gpu003"
        )


async def test_connect_verified_refuses_a_missing_known_hosts_file(tmp_path):
    with pytest.raises(HostKeyRejected, match="does not exist"):
        await connect_verified(
            "127.0.0.1",
            22,
            username="ops",
            known_hosts=tmp_path / "nope",
            client_keys=None,
            label="gpu003",
        )
