"""One simulated host's SSH server: its own port, its own key, its faults.

The frame accepts TCP itself (rather than ``asyncssh.listen``) so that it can
act on host faults per connection: refuse (``host.down``, powered off),
accept and stay silent (``host.blackhole``), or run SSH with the host's key
or a rotated one (``host.key_rotated``) through ``asyncssh.run_server``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Literal

import asyncssh

from console.lab.sim import SimHost
from console.plugin import CommandReply

log = logging.getLogger(__name__)

CommandFn = Callable[[SimHost, str], Awaitable[CommandReply]]
Mode = Literal["up", "down", "blackhole", "rotated"]

_ESCAPES = (
    b"\x1b[2J\x1b[H",  # clear screen
    b"\x1b]0;pwned\x07",  # window title
    b"\x1b]52;c;ZWNobyBoaQ==\x07",  # OSC 52 clipboard write
    b"\x9b31m",  # C1 CSI
    b"\x1bP1$r\x1b\\",  # DCS
    b"\xe2\x80\xae",  # bidi override
    b"\xff\xfe\xc3\x28\xa0\xa1",  # invalid UTF-8
)


def garbage(rng_bytes: Callable[[int], bytes], pick: Callable[[int], int]) -> bytes:
    """Random bytes mixed with terminal escapes and invalid UTF-8."""
    parts = []
    for _ in range(8 + pick(24)):
        if pick(3) == 0:
            parts.append(_ESCAPES[pick(len(_ESCAPES))])
        else:
            parts.append(rng_bytes(1 + pick(200)))
    return b"".join(parts)


class _RecordingServer(asyncssh.SSHServer):
    def __init__(self, host: SimHost) -> None:
        self._host = host

    def begin_auth(self, username: str) -> bool:
        self._host.auth_attempts += 1
        return True


class HostServer:
    """The SSH endpoint of one SimHost."""

    def __init__(
        self,
        host: SimHost,
        bind: str,
        host_key: asyncssh.SSHKey,
        rotated_key: Callable[[], asyncssh.SSHKey],
        authorized: asyncssh.SSHAuthorizedKeys,
        answer: CommandFn,
    ) -> None:
        self.host = host
        self.bind = bind
        self.port = 0
        self._host_key = host_key
        self._rotated_key = rotated_key
        self._authorized = authorized
        self._answer = answer
        self._lsock: socket.socket | None = None
        self._accept_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._conns: set[asyncssh.SSHServerConnection] = set()
        self._raw: set[socket.socket] = set()
        self._options: dict[bool, asyncssh.SSHServerConnectionOptions] = {}
        self.mode: Mode = "up"

    @property
    def host_key(self) -> asyncssh.SSHKey:
        """The key it presents (when not rotated): what known_hosts lists."""
        return self._host_key

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> int:
        self._listen(0)
        self.sync()
        return self.port

    async def stop(self) -> None:
        self._close_listener()
        self._drop_connections()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def wanted_mode(self) -> Mode:
        h = self.host
        if h.fault("host.down") is not None or not h.powered:
            return "down"
        if h.fault("host.blackhole") is not None:
            return "blackhole"
        if h.fault("host.key_rotated") is not None:
            return "rotated"
        return "up"

    def sync(self) -> None:
        """Follow the host's faults: open or close the port, drop connections on a change."""
        mode = self.wanted_mode()
        if mode != self.mode:
            log.info("lab host %s: %s -> %s", self.host.name, self.mode, mode)
            # A crash, a reinstall or a dead network ends the sessions that were open.
            self._drop_connections()
            self.mode = mode
        if mode == "down":
            self._close_listener()
        elif self._lsock is None:
            try:
                self._listen(self.port)
            except OSError as exc:  # the port was taken meanwhile; retried on the next tick
                log.error("lab host %s: cannot reopen port %d: %s", self.host.name, self.port, exc)

    # ------------------------------------------------------------ sockets

    def _listen(self, port: int) -> None:
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.bind((self.bind, port))
            lsock.listen(256)
            lsock.setblocking(False)
        except OSError:
            lsock.close()
            raise
        self._lsock = lsock
        self.port = lsock.getsockname()[1]
        self._accept_task = asyncio.get_running_loop().create_task(self._accept_loop(lsock))

    def _close_listener(self) -> None:
        if self._accept_task is not None:
            self._accept_task.cancel()
            self._accept_task = None
        if self._lsock is not None:
            self._lsock.close()
            self._lsock = None

    def _drop_connections(self) -> None:
        for conn in list(self._conns):
            conn.abort()
        self._conns.clear()
        for sock in list(self._raw):
            with contextlib.suppress(OSError):
                sock.close()
        self._raw.clear()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept_loop(self, lsock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, _ = await loop.sock_accept(lsock)
            except asyncio.CancelledError:
                raise
            except OSError as exc:
                log.debug("lab host %s: accept failed: %s", self.host.name, exc)
                return
            self.host.connections += 1
            if self.mode == "blackhole":
                self._spawn(self._blackhole(sock))
            else:
                self._spawn(self._serve_ssh(sock, rotated=self.mode == "rotated"))

    async def _blackhole(self, sock: socket.socket) -> None:
        """Accept and never speak: read and drop what the client sends until it gives up."""
        self._raw.add(sock)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            while await loop.sock_recv(sock, 4096):
                pass
        except OSError:
            pass
        finally:
            self._raw.discard(sock)
            sock.close()

    def _server_options(self, rotated: bool) -> asyncssh.SSHServerConnectionOptions:
        opts = self._options.get(rotated)
        if opts is None:
            key = self._rotated_key() if rotated else self._host_key
            opts = self._options[rotated] = asyncssh.SSHServerConnectionOptions(
                server_host_keys=[key],
                authorized_client_keys=self._authorized,
                server_factory=lambda: _RecordingServer(self.host),
                process_factory=self._process,
                encoding=None,
                allow_scp=False,
                agent_forwarding=False,
                x11_forwarding=False,
                login_timeout=30,
            )
        return opts

    async def _serve_ssh(self, sock: socket.socket, rotated: bool) -> None:
        try:
            conn = await asyncssh.run_server(sock, options=self._server_options(rotated))
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            # Refused host key, bad client key, client gone: all normal here.
            log.debug("lab host %s: ssh session ended early: %s", self.host.name, exc)
            with contextlib.suppress(OSError):
                sock.close()
            return
        self._conns.add(conn)
        try:
            await conn.wait_closed()
        finally:
            self._conns.discard(conn)

    # ------------------------------------------------------------ commands

    async def _process(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        host = self.host
        command = process.command or ""
        host.sessions += 1
        host.commands.append(command)
        try:
            if not command:
                process.stderr.write(
                    f"{host.name}: interactive shells are not emulated by the lab\n".encode()
                )
                process.exit(1)
                return
            slow = host.fault("host.slow")
            delay = float(slow.get("seconds", 3.0)) if slow is not None else 0.0
            if host.fault("host.garbage") is not None:
                reply = CommandReply(stdout="", exit_status=0)
                out = garbage(host.rng.randbytes, host.rng.randrange)
            else:
                reply = await self._answer(host, command)
                out = reply.stdout.encode()
            delay += reply.delay
            if delay > 0:
                await asyncio.sleep(delay)
            if out:
                process.stdout.write(out)
            if reply.stderr:
                process.stderr.write(reply.stderr.encode())
            process.exit(reply.exit_status)
        except (OSError, asyncssh.Error):
            pass  # the client went away
