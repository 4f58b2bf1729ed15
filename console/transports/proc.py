"""Local processes (ipmitool, kubectl ...): minimal environment, bounded time and output.

A child gets PATH, LANG and what the caller passes, never the console's whole
environment (which may hold tokens). On timeout the whole process group is
killed, so a tool's own children do not linger.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence

from console.transports import MAX_OUTPUT_BYTES, CommandResult, CommandTimeout, TransportError

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"


def minimal_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    """PATH and LANG from here (or safe defaults), plus ``extra``."""
    env = {
        "PATH": os.environ.get("PATH", DEFAULT_PATH),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    if extra:
        env.update(extra)
    return env


class ProcRunner:
    """Runs local commands from argv lists (never a shell)."""

    def __init__(self, max_output: int = MAX_OUTPUT_BYTES) -> None:
        self.max_output = max_output

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,  # noqa: ASYNC109 - the transport contract
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> CommandResult:
        """Run ``argv``; output capped; the process group is killed on timeout.

        Raises:
            TransportError: the program cannot be started.
            CommandTimeout: it did not finish in time (it was killed).
        """
        if not argv:
            raise TransportError("no command given")
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=minimal_env(env),
                start_new_session=True,  # its own process group, killed as one
            )
        except OSError as exc:
            raise TransportError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None

        left = [self.max_output]
        truncated = [False]

        async def drain(stream: asyncio.StreamReader | None, into: list[bytes]) -> None:
            if stream is None:
                return
            while chunk := await stream.read(65536):
                if len(chunk) > left[0]:
                    truncated[0] = True
                    chunk = chunk[: left[0]]
                left[0] -= len(chunk)
                if chunk:
                    into.append(chunk)
                # past the cap keep reading (and dropping) so the child is not blocked

        async def feed() -> None:
            if proc.stdin is None:
                return
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                if stdin:
                    proc.stdin.write(stdin)
                    await proc.stdin.drain()
                proc.stdin.close()

        out: list[bytes] = []
        err: list[bytes] = []
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(feed(), drain(proc.stdout, out), drain(proc.stderr, err))
                status = await proc.wait()
        except TimeoutError:
            _kill_group(proc.pid)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await proc.wait()
            raise CommandTimeout(
                f"{argv[0]}: did not finish within {timeout:g}s; it was killed"
            ) from None
        except BaseException:
            _kill_group(proc.pid)
            raise
        return CommandResult(
            exit_status=status if status >= 0 else None,
            stdout=b"".join(out).decode("utf-8", errors="replace"),
            stderr=b"".join(err).decode("utf-8", errors="replace"),
            duration=time.monotonic() - started,
            truncated=truncated[0],
        )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
