"""Open files a lab of N hosts needs, and raising the process's limit to fit them.

Every simulated host holds listening sockets (SSH, its BMC, exporters) and
one accepted connection per client on each. A lab that runs out of file
descriptors half way through starting fails in confusing ways (a BMC that
refuses, a host that is "down"), so the lab counts first, raises the soft
limit up to the hard one when it must, and refuses to start with a clear
message when even the hard limit is too low.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

FDS_PER_HOST = 10
"""Listening sockets (SSH, the BMC, three exporters), and one client connection to each."""
FDS_PER_HOST_WITH_CLIENT = FDS_PER_HOST + 5
"""When the console polls from the same process (tests, the embedded demo): its ends too."""
FDS_BASE = 256
"""The interpreter, SQLite, logs, the control API, the lab's own files, headroom."""


class LabTooBig(RuntimeError):
    """The open-file limit cannot be raised enough for the hosts asked for."""


@dataclass(frozen=True, slots=True)
class FdBudget:
    hosts: int
    needed: int
    soft: int
    hard: int
    raised_from: int | None = None
    """The soft limit before it was raised; None when it was already enough."""

    @property
    def note(self) -> str:
        if self.raised_from is None:
            return f"open-file limit {self.soft} is enough for {self.hosts} hosts"
        return (
            f"raised the open-file limit from {self.raised_from} to {self.soft} "
            f"for {self.hosts} hosts (about {self.needed} needed)"
        )


def fds_needed(hosts: int, per_host: int = FDS_PER_HOST) -> int:
    return FDS_BASE + hosts * per_host


def hosts_that_fit(limit: int, per_host: int = FDS_PER_HOST) -> int:
    return max(0, (limit - FDS_BASE) // per_host)


def _unlimited(value: int) -> bool:
    return value == resource.RLIM_INFINITY


def ensure_fd_budget(hosts: int, per_host: int = FDS_PER_HOST) -> FdBudget:
    """Make sure this process may open enough files for ``hosts`` simulated hosts.

    Raises the soft ``RLIMIT_NOFILE`` (never above the hard limit) when needed.

    Raises:
        LabTooBig: the hard limit is too low; the message says how many hosts
            fit and what to run to allow more.
    """
    needed = fds_needed(hosts, per_host)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if _unlimited(soft) or soft >= needed:
        return FdBudget(hosts, needed, soft, hard)
    if not _unlimited(hard) and hard < needed:
        fit = hosts_that_fit(hard, per_host)
        raise LabTooBig(
            f"{hosts} simulated hosts need about {needed} open files, but this shell's "
            f"hard limit is {hard} (soft {soft}): at most {fit} hosts fit. Nothing was "
            f"started. Run with fewer hosts (--hosts {fit}), or raise the limit first: "
            f"`ulimit -Hn {needed}; ulimit -n {needed}` as root (or LimitNOFILE={needed} "
            f"in a systemd unit, `nofile` in /etc/security/limits.conf), then start a new shell."
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return FdBudget(hosts, needed, needed, hard, raised_from=soft)
