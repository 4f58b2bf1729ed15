"""RELIABILITY.md S4 (Terrapin, CVE-2023-48795): the console's SSH client offers strict kex.

The KEXINIT is captured on the wire: a loopback relay sits between the console's
SSH pool and a lab host (a real asyncssh server) and keeps the bytes each side
sends. Why the wire and not the server: asyncssh's public API does not expose
the peer's KEXINIT. ``SSHServerConnection.get_extra_info`` only gives the
transport's fields, the version strings and the *negotiated* cipher, MAC and
compression; the client's key exchange list is parsed in the private
``_process_kexinit`` and kept only in private attributes (``_client_kexinit``,
``_strict_kex``) or a debug log line, any of which may change in a release. The
first binary packet each side sends is the KEXINIT, unencrypted, in the framing
RFC 4253 fixes (§4.2, §6, §7.1), so reading it off the wire depends on nothing
but the standard -- and it is exactly what the console sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import struct
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from console.lab import Lab
from console.lab.keys import known_hosts_line
from console.transports import Transports
from console.transports.ssh import ENCRYPTION_ALGS
from tests.integration.conftest import node_with

REPO = Path(__file__).resolve().parents[2]
TERRAPIN_FIXED = Version("2.14.2")
"""asyncssh's first release with strict kex (GHSA-hfmc-7525-mj55, 18 Dec 2023)."""
MSG_KEXINIT = 20
KEXINIT_FIELDS = (
    "kex_algorithms",
    "server_host_key_algorithms",
    "encryption_algorithms_client_to_server",
    "encryption_algorithms_server_to_client",
    "mac_algorithms_client_to_server",
    "mac_algorithms_server_to_client",
    "compression_algorithms_client_to_server",
    "compression_algorithms_server_to_client",
    "languages_client_to_server",
    "languages_server_to_client",
)


def first_kexinit(stream: bytes) -> dict[str, list[str]]:
    """The name-lists of the first packet after the identification line (RFC 4253).

    Raises:
        AssertionError: the stream does not start with an identification line and a KEXINIT.
    """
    pos = 0
    while True:  # a server may send other lines before its "SSH-" line (§4.2)
        end = stream.find(b"\n", pos)
        assert end >= 0, "no identification line (SSH-...) in the stream"
        line, pos = stream[pos:end], end + 1
        if line.startswith(b"SSH-"):
            break
    # uint32 packet_length, byte padding_length, payload, padding (§6; no MAC before NEWKEYS)
    packet_length, padding_length = struct.unpack_from(">IB", stream, pos)
    payload = stream[pos + 5 : pos + 5 + packet_length - padding_length - 1]
    assert payload[0] == MSG_KEXINIT, f"first packet is message {payload[0]}, not KEXINIT"
    at = 1 + 16  # the message number, then a 16-byte cookie
    lists: dict[str, list[str]] = {}
    for name in KEXINIT_FIELDS:
        (n,) = struct.unpack_from(">I", payload, at)
        text = payload[at + 4 : at + 4 + n].decode("ascii")
        lists[name] = text.split(",") if text else []
        at += 4 + n
    return lists


@dataclass
class Relay:
    """A loopback TCP relay that keeps every byte each side sent."""

    upstream: tuple[str, int]
    from_client: bytearray = field(default_factory=bytearray)
    from_server: bytearray = field(default_factory=bytearray)
    port: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, keep: bytearray
    ) -> None:
        try:
            while chunk := await reader.read(65536):
                keep += chunk  # kept before it is passed on: seen by the time it arrives
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _serve(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        s_reader, s_writer = await asyncio.open_connection(*self.upstream)
        for task in (
            asyncio.create_task(self._pump(c_reader, s_writer, self.from_client)),
            asyncio.create_task(self._pump(s_reader, c_writer, self.from_server)),
        ):
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)


@contextlib.asynccontextmanager
async def relay_to(host: str, port: int) -> AsyncIterator[Relay]:
    relay = Relay((host, port))
    server = await asyncio.start_server(relay._serve, "127.0.0.1", 0)
    relay.port = server.sockets[0].getsockname()[1]
    try:
        yield relay
    finally:
        server.close()
        for task in list(relay.tasks):
            task.cancel()
        await asyncio.gather(*relay.tasks, return_exceptions=True)
        await server.wait_closed()


async def test_the_console_ssh_client_offers_strict_kex_in_its_kexinit(
    lab: Lab, tmp_path: Path
) -> None:
    server = lab.servers["cpu01"]
    async with relay_to(server.bind, server.port) as relay:
        # The relay's address is the host the console knows: its key is the lab host's.
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(
            known_hosts_line("127.0.0.1", relay.port, server.host_key, "cpu01"), encoding="utf-8"
        )
        node = node_with(
            lab.inventory.nodes["cpu01"],
            host="127.0.0.1",
            port=relay.port,
            known_hosts=str(known_hosts),
        )
        transports = Transports.create()
        try:  # the pool, exactly as a collector reaches a host
            result = await transports.ssh.run(node, "hostname", timeout=10)
        finally:
            await transports.close()
    assert result.ok and result.stdout == "cpu01\n"

    client = first_kexinit(bytes(relay.from_client))
    assert "kex-strict-c-v00@openssh.com" in client["kex_algorithms"], client["kex_algorithms"]
    # The ciphers the console chose (no CBC, AEAD first), as they went out.
    assert client["encryption_algorithms_client_to_server"] == list(ENCRYPTION_ALGS)
    assert client["encryption_algorithms_server_to_client"] == list(ENCRYPTION_ALGS)
    # The lab host offered it too: strict kex was in force on this connection.
    served = first_kexinit(bytes(relay.from_server))
    assert "kex-strict-s-v00@openssh.com" in served["kex_algorithms"]


def test_asyncssh_installed_and_required_is_at_least_the_terrapin_fix() -> None:
    installed = Version(importlib.metadata.version("asyncssh"))
    assert installed >= TERRAPIN_FIXED, f"asyncssh {installed} is affected by Terrapin"
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    (req,) = [
        Requirement(d)
        for d in project["project"]["dependencies"]
        if Requirement(d).name == "asyncssh"
    ]
    floors = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
    assert floors and max(floors) >= TERRAPIN_FIXED, f"pyproject requires {req}"
    assert not req.specifier.contains("2.14.1"), f"pyproject admits a Terrapin-affected {req}"


@pytest.mark.parametrize(
    ("stream", "problem"),
    [
        (b"SSH-2.0-x\r\n" + struct.pack(">IB", 12, 4) + bytes([21]) + b"\0" * 10, "not KEXINIT"),
        (b"no identification line", "no identification line"),
    ],
)
def test_the_kexinit_reader_refuses_what_is_not_one(stream: bytes, problem: str) -> None:
    with pytest.raises(AssertionError, match=problem):
        first_kexinit(stream)
