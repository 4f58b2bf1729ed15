"""The lab's keys: made once per state dir, kept 0600, reused across runs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import asyncssh

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def ensure_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable only by its owner (atomically, never world-readable)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_or_create_key(path: Path) -> asyncssh.SSHKey:
    """The ed25519 key at ``path``, generated (0600, with a .pub) when missing."""
    if path.exists():
        os.chmod(path, 0o600)
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519", comment=path.stem)
    write_private(path, key.export_private_key())
    pub = path.with_name(path.name + ".pub")
    pub.write_bytes(key.export_public_key())
    return key


def host_key_path(state_dir: Path, host: str, rotated: bool = False) -> Path:
    suffix = "_rotated" if rotated else ""
    return state_dir / "hostkeys" / f"{_SAFE.sub('_', host)}{suffix}_ed25519"


def known_hosts_line(bind: str, port: int, key: asyncssh.SSHKey, comment: str) -> str:
    pub = key.export_public_key("openssh").decode().split()
    return f"[{bind}]:{port} {pub[0]} {pub[1]} {comment}\n"
