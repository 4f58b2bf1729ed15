"""Private files for the audit log: 0700 folders, 0600 files, refusal otherwise.

The audit log records who did what to which machine; its readers are the
operator and root. A group- or world-readable database leaks that record and
a writable one lets another user forge it, so the console refuses to open one.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


class AuditPermissionError(PermissionError):
    """The audit database (or a file beside it) is open to other users."""


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Files created inside get no group/other bits, whatever the caller's umask.

    The umask is process-wide; tightening it briefly can only make files other
    threads create more private, never less.
    """
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) as 0700 when missing; leave an existing one alone."""
    if path.is_dir():
        return
    with private_umask():
        path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)


def check_private(path: Path, what: str = "audit database") -> None:
    """Refuse a file that group or others may read or write.

    Raises:
        AuditPermissionError: naming the file, its mode and the fix.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o066:
        raise AuditPermissionError(
            f"{what} {path} is readable or writable by other users (mode {mode:04o}); "
            f"refusing to use it. Fix: chmod 600 {path}"
        )


def make_private(path: Path) -> None:
    """Set 0600 on an existing file we own (the -wal/-shm SQLite made)."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_IMODE(path.stat().st_mode) != FILE_MODE:
            os.chmod(path, FILE_MODE)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist (never truncates)."""
    ensure_private_dir(path.parent)
    with private_umask():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    os.close(fd)


def append_private_line(path: Path, line: str) -> None:
    """Append one line to a 0600 file and fsync it (fallback journal, anchor)."""
    ensure_private_dir(path.parent)
    with private_umask():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    try:
        os.write(fd, (line.rstrip("\n") + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    check_private(path, "audit file")
