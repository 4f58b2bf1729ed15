"""Private files for the audit log: 0700 folders, 0600 files, refusal otherwise.

The audit log records who did what to which machine; its readers are the
operator and root. A group- or world-readable database leaks that record and
a writable one lets another user forge it, so the console refuses to open one.

One exception, made on purpose by an administrator: a *team folder*, for the
two-person rule between operators who are different OS users. A folder that is
setgid, owned by the operators' group, group-writable and closed to others
(``install -d -m 2770 -g dcc-operators /var/lib/dcc``) may hold files that its
group reads and writes (0660, that group) and nobody else; the console then
creates its files 0660 there. Others are always refused.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
TEAM_FILE_MODE = 0o660


class AuditPermissionError(PermissionError):
    """The audit database (or a file beside it) is open to other users."""


def team_group(folder: Path) -> int | None:
    """The operators' group id when ``folder`` is a team folder (see above), else None."""
    try:
        st = folder.stat()
    except OSError:
        return None
    mode = stat.S_IMODE(st.st_mode)
    if mode & stat.S_ISGID and mode & 0o070 == 0o070 and not mode & 0o007:
        return st.st_gid
    return None


@contextlib.contextmanager
def private_umask(folder: Path | None = None) -> Iterator[None]:
    """Files created inside get no other bits (nor group bits outside a team folder).

    The umask is process-wide; tightening it briefly can only make files other
    threads create more private, never less.
    """
    team = folder is not None and team_group(folder) is not None
    old = os.umask(0o007 if team else 0o077)
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
        st = path.stat()
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(st.st_mode)
    if not mode & 0o066:
        return
    if not mode & 0o006 and team_group(path.parent) == st.st_gid:
        return  # a team folder's group: the operators who share this record
    raise AuditPermissionError(
        f"{what} {path} is readable or writable by other users (mode {mode:04o}); "
        f"refusing to use it. Fix: chmod 600 {path} (or, for operators sharing one "
        "record, a team folder: install -d -m 2770 -g OPERATORS-GROUP FOLDER)"
    )


def file_mode(folder: Path) -> int:
    """0660 in a team folder, 0600 anywhere else."""
    return TEAM_FILE_MODE if team_group(folder) is not None else FILE_MODE


def make_private(path: Path) -> None:
    """Set 0600 (0660 in a team folder) on an existing file (the -wal/-shm SQLite made)."""
    wanted = file_mode(path.parent)
    with contextlib.suppress(FileNotFoundError, PermissionError):
        # PermissionError: another operator of the team created it; its mode is theirs
        # to keep, and check_private still refuses it if it is open to others.
        if stat.S_IMODE(path.stat().st_mode) != wanted:
            os.chmod(path, wanted)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 (0660 in a team folder) if missing; never truncates."""
    ensure_private_dir(path.parent)
    with private_umask(path.parent):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, file_mode(path.parent))
    os.close(fd)


def append_private_line(path: Path, line: str) -> None:
    """Append one line to a 0600 (team folder: 0660) file and fsync it (journal, anchor)."""
    ensure_private_dir(path.parent)
    with private_umask(path.parent):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, file_mode(path.parent))
    try:
        os.write(fd, (line.rstrip("\n") + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    check_private(path, "audit file")
