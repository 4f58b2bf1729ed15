"""Transports: how the console reaches hosts, BMCs and APIs.

Three kinds, each pooled and bounded: SSH (``ssh.SshPool``, asyncssh), HTTP
(``http.HttpClient``, aiohttp) and local processes (``proc.ProcRunner``).
Transports know nothing of widgets or plugins. The heavy libraries (asyncssh,
aiohttp) are imported only when a ``Transports`` is built, after the first
frame has painted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from console.transports.http import HttpClient
    from console.transports.proc import ProcRunner
    from console.transports.prometheus import PromClients
    from console.transports.ssh import SshPool

MAX_OUTPUT_BYTES = 1 << 20
"""Output kept from one remote command (1 MiB); the rest is dropped and flagged."""


class TransportError(Exception):
    """A remote operation could not be done; the message names the host."""


class HostUnreachable(TransportError):
    """Could not connect (refused, timed out, black-holed, connection lost)."""


class HostKeyRejected(TransportError):
    """The host's key is unknown or differs from known_hosts: nothing was sent."""


class AuthenticationFailed(TransportError):
    """The host refused our credentials."""


class CommandTimeout(TransportError):
    """The command did not finish in time; its outcome is unknown."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command (remote or local) returned."""

    exit_status: int | None
    """None when the command was killed or the channel closed without a status."""
    stdout: str
    stderr: str
    duration: float
    truncated: bool = False
    """True when output passed MAX_OUTPUT_BYTES and was cut."""

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float
    url: str

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class Transports:
    """The pooled transports one console (or one test) shares."""

    def __init__(self, ssh: SshPool, http: HttpClient, proc: ProcRunner) -> None:
        self.ssh = ssh
        self.http = http
        self.proc = proc
        self._prometheus: PromClients | None = None

    @property
    def prometheus(self) -> PromClients:
        """Prometheus API clients by server, on the shared HTTP client (created on first use)."""
        if self._prometheus is None:
            from console.transports.prometheus import PromClients

            self._prometheus = PromClients(self.http)
        return self._prometheus

    @classmethod
    def create(cls, *, ssh_concurrency: int = 128) -> Transports:
        from console.transports.http import HttpClient
        from console.transports.proc import ProcRunner
        from console.transports.ssh import SshPool

        return cls(SshPool(max_concurrency=ssh_concurrency), HttpClient(), ProcRunner())

    async def close(self) -> None:
        await self.ssh.close()
        await self.http.close()
