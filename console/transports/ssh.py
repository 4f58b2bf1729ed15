"""The SSH transport: a bounded pool of verified asyncssh connections.

Every connection goes through `connect_verified`, which always verifies the
host key against an explicit known_hosts file, never forwards the agent,
sets its own timeouts and keepalive (asyncssh has none by default), and does
not read the user's ``~/.ssh/config``: a line such as ``UserKnownHostsFile
none`` there would otherwise silently switch host-key checking off (see
RELIABILITY.md §0.2). Nothing else in the console may call
``asyncssh.connect``; a unit test greps for it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncssh

from console.transports import (
    MAX_OUTPUT_BYTES,
    AuthenticationFailed,
    CommandResult,
    CommandTimeout,
    HostKeyRejected,
    HostUnreachable,
    TransportError,
)
from console.transports.pacing import LoopPacer

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    from console.inventory.model import Node

log = logging.getLogger(__name__)

CHANNELS_PER_CONNECTION = 8
"""Sessions opened at once on one connection (OpenSSH's MaxSessions defaults to 10)."""

_READ_CHUNK = 65536

ENCRYPTION_ALGS = (
    # AES-GCM first: with AES-NI it costs a third less CPU per packet than
    # chacha20-poly1305 in asyncssh (which builds a cipher context per packet), and
    # it is not affected by the Terrapin prefix truncation (CVE-2023-48795).
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)
"""Ciphers offered, in order: OpenSSH's default set (no CBC), AEAD modes first."""


async def connect_verified(
    host: str,
    port: int,
    *,
    username: str,
    known_hosts: str | Path | None,
    client_keys: Sequence[asyncssh.SSHKey] | None,
    label: str,
    connect_timeout: float = 10.0,
    login_timeout: float = 15.0,
    keepalive_interval: float = 15.0,
    keepalive_count_max: int = 3,
    client_factory: Any = None,
) -> asyncssh.SSHClientConnection:
    """Open one SSH connection whose host key is verified; the only way the console connects.

    Args:
        label: The node's name, used in error messages.
        known_hosts: The known_hosts file; ``None`` is refused (there is no
            "trust anything" mode).
        client_keys: Private keys to offer; ``None`` offers none.

    Raises:
        HostKeyRejected: no known_hosts, or the host's key is not in it.
        AuthenticationFailed: the host refused our key.
        HostUnreachable: refused, timed out, black-holed, connection lost.
    """
    where = f"{label} ({host}:{port})"
    kh_path = _known_hosts_file(known_hosts, label, where)
    try:
        return await asyncssh.connect(
            host,
            port,
            username=username,
            known_hosts=parsed_known_hosts(kh_path),
            # An empty list: never load ~/.ssh/config, whatever HOME says.
            config=[],
            client_keys=list(client_keys) if client_keys is not None else None,
            agent_path=None,
            agent_forwarding=False,
            password=None,
            kbdint_auth=False,
            gss_auth=False,
            x509_trusted_certs=None,
            preferred_auth="publickey",
            connect_timeout=connect_timeout,
            login_timeout=login_timeout,
            keepalive_interval=keepalive_interval,
            keepalive_count_max=keepalive_count_max,
            encryption_algs=ENCRYPTION_ALGS,
            client_factory=client_factory,
        )
    except asyncssh.HostKeyNotVerifiable as exc:
        raise HostKeyRejected(
            f"HOST KEY REJECTED for {where}: {exc.reason}; the key it presented is not the "
            f"one in {kh_path}. Nothing was sent. If the host was reinstalled, enrol its "
            "new key deliberately; it is never accepted automatically."
        ) from None
    except asyncssh.PermissionDenied as exc:
        raise AuthenticationFailed(
            f"authentication failed for {username}@{where}: {exc.reason}"
        ) from None
    except asyncssh.DisconnectError as exc:
        raise HostUnreachable(f"{where}: disconnected: {exc.reason}") from None
    except TimeoutError:
        raise HostUnreachable(
            f"{where}: no answer within {connect_timeout:g}s (connect) / {login_timeout:g}s (login)"
        ) from None
    except ConnectionRefusedError:
        raise HostUnreachable(f"{where}: connection refused") from None
    except OSError as exc:
        raise HostUnreachable(f"{where}: {exc.strerror or exc}") from None
    except asyncssh.Error as exc:
        raise HostUnreachable(f"{where}: {exc}") from None


def _known_hosts_file(known_hosts: str | Path | None, label: str, where: str) -> Path:
    if known_hosts is None or str(known_hosts) == "":
        raise HostKeyRejected(
            f"no known_hosts configured for {label}: host keys are always verified"
        )
    kh_path = Path(known_hosts).expanduser()
    if not kh_path.is_file():
        raise HostKeyRejected(
            f"HOST KEY REJECTED for {where}: known_hosts file {kh_path} does not exist"
        )
    return kh_path


def _quiet_when_disabled() -> None:
    """asyncssh formats the arguments of every log call (commands, byte strings) before
    the logging module checks the level: six calls per command, a sixth of the client's
    CPU in a pooled poll round. Check the level first; what is logged is unchanged."""
    cls = asyncssh.logging.SSHLogger
    if getattr(cls.log, "_dcc_checks_level", False):
        return
    original = cls.log

    def log(self: Any, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            original(self, level, msg, *args, **kwargs)

    log._dcc_checks_level = True  # type: ignore[attr-defined]
    cls.log = log  # type: ignore[method-assign]


_quiet_when_disabled()

_KNOWN_HOSTS: dict[Path, tuple[tuple[int, int, int], asyncssh.SSHKnownHosts]] = {}


def parsed_known_hosts(path: Path) -> asyncssh.SSHKnownHosts:
    """The known_hosts file at ``path``, parsed once and re-read whenever it changes.

    Given a file name, asyncssh parses the whole file on every connection: with
    a line per host that is quadratic (35 s of CPU to connect 1,000 hosts). The
    parsed object matches exactly as the file would (markers, CAs, revocations);
    a file that changes (inode, size or mtime) is read again at the next connect.

    Raises:
        HostKeyRejected: the file cannot be read or parsed.
    """
    try:
        st = path.stat()
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        cached = _KNOWN_HOSTS.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        parsed = asyncssh.import_known_hosts(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, asyncssh.KeyImportError) as exc:
        raise HostKeyRejected(f"known_hosts file {path} cannot be read: {exc}") from None
    if len(_KNOWN_HOSTS) > 64:  # files of consoles long gone (tests): never unbounded
        _KNOWN_HOSTS.clear()
    _KNOWN_HOSTS[path] = (stamp, parsed)
    return parsed


def load_identity(ref: str | None, label: str) -> list[asyncssh.SSHKey] | None:
    """The private key named by an inventory reference (``file:PATH`` or ``env:NAME``).

    The key text is never logged or put in a message; only the reference is.
    """
    if ref is None:
        return None
    try:
        if ref.startswith("file:"):
            path = Path(ref[5:]).expanduser()
            return [asyncssh.read_private_key(str(path))]
        if ref.startswith("env:"):
            name = ref[4:]
            text = os.environ.get(name)
            if not text:
                raise AuthenticationFailed(
                    f"identity for {label}: environment variable {name} is not set"
                )
            return [asyncssh.import_private_key(text)]
    except AuthenticationFailed:
        raise
    except (OSError, asyncssh.KeyImportError, ValueError) as exc:
        # exc may quote the key's text for import errors: name only the reference.
        kind = type(exc).__name__
        raise AuthenticationFailed(f"identity {ref} for {label} cannot be used ({kind})") from None
    raise AuthenticationFailed(f"identity for {label} must be file:PATH or env:NAME")


@dataclass(frozen=True, slots=True)
class _PoolKey:
    host: str
    port: int
    user: str
    identity: str | None
    known_hosts: str | None


@dataclass(slots=True)
class _Entry:
    conn: asyncssh.SSHClientConnection
    channels: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(CHANNELS_PER_CONNECTION)
    )
    last_used: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class PoolStats:
    """Counters for tests and the benchmark."""

    connects: int = 0
    commands: int = 0
    failures: int = 0


class _Capped:
    """Output kept from one command, shared by stdout and stderr."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.truncated = False

    def take(self, chunk: bytes) -> bytes:
        if len(chunk) > self.left:
            self.truncated = True
            chunk = chunk[: self.left]
        self.left -= len(chunk)
        return chunk


def _ssh_host(node: Node) -> str:
    host = node.ssh.host
    if "{" in host:  # a template the loader did not resolve
        host = host.format(name=node.name, index=node.index, num=node.index)
    return host


class SshPool:
    """Pooled SSH connections, keyed by (host, port, user, identity), with a global cap."""

    def __init__(
        self,
        max_concurrency: int = 128,
        connect_timeout: float = 10.0,
        keepalive_interval: float = 15.0,
        keepalive_count_max: int = 3,
        login_timeout: float = 15.0,
        idle_timeout: float = 300.0,
        max_output: int = MAX_OUTPUT_BYTES,
        connect_concurrency: int = 32,
    ) -> None:
        self.max_concurrency = max_concurrency
        self.connect_timeout = connect_timeout
        self.keepalive_interval = keepalive_interval
        self.keepalive_count_max = keepalive_count_max
        self.login_timeout = login_timeout
        self.idle_timeout = idle_timeout
        self.max_output = max_output
        self.stats = PoolStats()
        self._sem = asyncio.Semaphore(max_concurrency)
        self._connecting = asyncio.Semaphore(connect_concurrency)
        """Handshakes at once: each is ~3 ms of CPU in many small steps, and a fleet's worth
        in flight made every loop iteration run dozens of them (the screen froze)."""
        self._conns: dict[_PoolKey, _Entry] = {}
        self._locks: dict[_PoolKey, asyncio.Lock] = {}
        self._keys: dict[str, list[asyncssh.SSHKey] | None] = {}
        self._last_sweep = time.monotonic()
        self._closed = False
        self.in_flight = 0
        """Commands running now (tests check it never passes max_concurrency)."""
        self.peak_in_flight = 0
        self.pacer = LoopPacer()
        """Hands results back a few per event-loop iteration (a fleet answers at once)."""
        self.on_host_key_rejected: Callable[[str, str], None] | None = None
        """Told (node name, message) when a host's key is refused: a security event the
        session records in the audit log (RELIABILITY.md F4), whoever was connecting."""

    # ------------------------------------------------------------------ public

    async def run(self, node: Node, command: str, *, timeout: float) -> CommandResult:  # noqa: ASYNC109
        """Run one command on a node; output capped, decoded with errors="replace".

        Raises:
            HostKeyRejected, AuthenticationFailed, HostUnreachable: nothing ran.
            CommandTimeout: it did not finish in time; its outcome is unknown.
        """
        if self._closed:
            raise TransportError(f"{node.name}: the SSH pool is closed")
        async with self._sem:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                result = await self._run(node, command, timeout)
            except TransportError:
                self.stats.failures += 1
                raise
            finally:
                self.in_flight -= 1
        # The caller parses the output next: a few per loop iteration (console.transports.pacing).
        await self.pacer.turn()
        return result

    async def close(self) -> None:
        """Close every pooled connection."""
        self._closed = True
        entries = list(self._conns.values())
        self._conns.clear()
        for entry in entries:
            entry.conn.close()
        for entry in entries:
            try:
                async with asyncio.timeout(2):
                    await entry.conn.wait_closed()
            except (TimeoutError, OSError, asyncssh.Error):
                pass

    def connections(self) -> int:
        """How many connections are open now."""
        return sum(1 for e in self._conns.values() if not e.conn.is_closed())

    # ------------------------------------------------------------------ internals

    def _key(self, node: Node) -> _PoolKey:
        s = node.ssh
        return _PoolKey(_ssh_host(node), s.port, s.user, s.identity, s.known_hosts)

    def _client_keys(self, key: _PoolKey, label: str) -> list[asyncssh.SSHKey] | None:
        ident = key.identity
        if ident is None:
            return None
        if ident not in self._keys:
            self._keys[ident] = load_identity(ident, label)
        return self._keys[ident]

    async def _entry(self, key: _PoolKey, node: Node) -> _Entry:
        entry = self._conns.get(key)
        if entry is not None and not entry.conn.is_closed():
            return entry
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one connect per key at a time; the others reuse it
            entry = self._conns.get(key)
            if entry is not None and not entry.conn.is_closed():
                return entry
            try:
                async with self._connecting:
                    conn = await self._connect(key, node)
            except HostKeyRejected as exc:
                if self.on_host_key_rejected is not None:
                    self.on_host_key_rejected(node.name, str(exc))
                raise
            self.stats.connects += 1
            entry = self._conns[key] = _Entry(conn)
            return entry

    async def _connect(self, key: _PoolKey, node: Node) -> asyncssh.SSHClientConnection:
        return await connect_verified(
            key.host,
            key.port,
            username=key.user,
            known_hosts=key.known_hosts,
            client_keys=self._client_keys(key, node.name),
            label=node.name,
            connect_timeout=self.connect_timeout,
            login_timeout=self.login_timeout,
            keepalive_interval=self.keepalive_interval,
            keepalive_count_max=self.keepalive_count_max,
        )

    def _drop(self, key: _PoolKey, entry: _Entry) -> None:
        if self._conns.get(key) is entry:
            del self._conns[key]
        entry.conn.close()

    def _sweep_idle(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < min(30.0, self.idle_timeout):
            return
        self._last_sweep = now
        for key, entry in list(self._conns.items()):
            if entry.conn.is_closed() or now - entry.last_used > self.idle_timeout:
                self._drop(key, entry)

    async def _run(self, node: Node, command: str, timeout: float) -> CommandResult:  # noqa: ASYNC109
        self._sweep_idle()
        key = self._key(node)
        where = f"{node.name} ({key.host}:{key.port})"
        for attempt in (1, 2):
            entry = await self._entry(key, node)
            entry.last_used = time.monotonic()
            async with entry.channels:
                try:
                    process = await entry.conn.create_process(command, encoding=None)
                except (
                    asyncssh.ConnectionLost,
                    asyncssh.DisconnectError,
                    asyncssh.ChannelOpenError,
                    OSError,
                ) as exc:
                    # The pooled connection died while idle (or refused a session): the
                    # command was not sent, so one retry on a fresh connection is safe.
                    self._drop(key, entry)
                    if attempt == 1:
                        log.debug("%s: pooled connection unusable (%s); reconnecting", where, exc)
                        continue
                    raise HostUnreachable(f"{where}: cannot open a session: {exc}") from None
                self.stats.commands += 1
                return await self._collect(process, where, timeout)
        raise HostUnreachable(f"{where}: could not open a session")  # pragma: no cover

    async def _collect(
        self,
        process: asyncssh.SSHClientProcess[bytes],
        where: str,
        timeout: float,  # noqa: ASYNC109
    ) -> CommandResult:
        started = time.monotonic()
        cap = _Capped(self.max_output)
        out: list[bytes] = []
        err: list[bytes] = []

        async def drain(stream: asyncssh.SSHReader[bytes], into: list[bytes]) -> None:
            while True:
                chunk = await stream.read(_READ_CHUNK)
                if not chunk:
                    return
                into.append(cap.take(chunk))
                if cap.truncated:
                    # Stop reading and close: a host may send gigabytes (or forever).
                    process.close()
                    return

        try:
            process.stdin.write_eof()
            async with asyncio.timeout(timeout):
                await asyncio.gather(drain(process.stdout, out), drain(process.stderr, err))
                if not cap.truncated:
                    await process.wait_closed()
        except TimeoutError:
            process.close()
            raise CommandTimeout(
                f"{where}: command did not finish within {timeout:g}s; its outcome is unknown"
            ) from None
        except (asyncssh.ConnectionLost, asyncssh.DisconnectError, OSError) as exc:
            process.close()
            raise HostUnreachable(
                f"{where}: connection lost while the command ran ({exc}); its outcome is unknown"
            ) from None
        status = None if cap.truncated else process.exit_status
        if status is not None and status < 0:  # killed by a signal
            status = None
        return CommandResult(
            exit_status=status,
            stdout=b"".join(out).decode("utf-8", errors="replace"),
            stderr=b"".join(err).decode("utf-8", errors="replace"),
            duration=time.monotonic() - started,
            truncated=cap.truncated,
        )
