"""A real Prometheus scraping the lab's exporters, on loopback (demo and tests).

Writes a ``prometheus.yml`` with one job per lab exporter (``dcgm``, ``ipmi``,
``node``) listing every host's ``address:port`` (scrape_interval 1s), starts
the Debian package's ``prometheus`` with a private TSDB folder on 127.0.0.1,
waits until it is ready and has scraped every target once, and stops it with
TERM, then KILL. Nothing here is used against a real site.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import yaml

log = logging.getLogger(__name__)

BINARY = "prometheus"


class PeerError(RuntimeError):
    """Prometheus could not be started (not installed, did not get ready)."""


def find_binary() -> str | None:
    return shutil.which(BINARY) or (
        "/usr/bin/prometheus" if os.access("/usr/bin/prometheus", os.X_OK) else None
    )


def scrape_config(jobs: Mapping[str, Mapping[str, str]], interval: float = 1.0) -> dict[str, Any]:
    """prometheus.yml as data: job -> {host: instance}."""
    step = f"{interval:g}s"
    return {
        "global": {"scrape_interval": step, "evaluation_interval": step, "scrape_timeout": step},
        "scrape_configs": [
            {
                "job_name": job,
                "static_configs": [{"targets": sorted(set(instances.values()))}],
            }
            for job, instances in sorted(jobs.items())
            if instances
        ],
    }


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class PrometheusPeer:
    """One Prometheus process. ``start()``/``stop()`` are blocking (run them in a thread
    from async code); ``url`` is its base URL once started."""

    def __init__(
        self,
        folder: Path,
        jobs: Mapping[str, Mapping[str, str]],
        *,
        interval: float = 1.0,
        host: str = "127.0.0.1",
        web_config: Path | None = None,
        ca_file: Path | None = None,
        basic_auth: tuple[str, str] | None = None,
    ) -> None:
        """``web_config``: Prometheus' ``--web.config.file`` (TLS, basic auth); then
        ``ca_file`` and ``basic_auth`` are what this object's own checks use."""
        self.folder = Path(folder)
        self.jobs = {k: dict(v) for k, v in jobs.items()}
        self.interval = interval
        self.host = host
        self.port = 0
        self.web_config = web_config
        self.ca_file = ca_file
        self.basic_auth = basic_auth
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.web_config is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def targets(self) -> int:
        return sum(len(set(v.values())) for v in self.jobs.values())

    def write_config(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "prometheus.yml"
        path.write_text(
            yaml.safe_dump(scrape_config(self.jobs, self.interval), sort_keys=False),
            encoding="utf-8",
        )
        return path

    def start(self, *, ready_timeout: float = 30.0, wait_targets: bool = True) -> None:
        binary = find_binary()
        if binary is None:
            raise PeerError(
                "prometheus is not installed (Debian package `prometheus`; "
                "scripts/install-peers.sh installs it)"
            )
        config = self.write_config()
        data = self.folder / "data"
        shutil.rmtree(data, ignore_errors=True)
        last = ""
        for _ in range(3):  # a port taken between free_port() and the bind: try another
            self.port = free_port(self.host)
            args = [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address={self.host}:{self.port}",
                "--storage.tsdb.retention.time=2h",
                "--log.level=warn",
            ]
            if self.web_config is not None:
                args.append(f"--web.config.file={self.web_config}")
            self._log = open(self.folder / "prometheus.log", "ab")  # noqa: SIM115 - kept open
            self.proc = subprocess.Popen(
                args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
            try:
                self._wait_ready(ready_timeout)
                break
            except PeerError as exc:
                last = str(exc)
                self.stop()
        else:
            raise PeerError(f"prometheus did not start: {last}")
        if wait_targets:
            self.wait_scraped(ready_timeout)

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        import base64
        import ssl

        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        request = urllib.request.Request(f"{self.url}{path}{query}")  # noqa: S310
        if self.basic_auth is not None:
            raw = ":".join(self.basic_auth).encode()
            request.add_header("Authorization", "Basic " + base64.b64encode(raw).decode())
        context = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
        with urllib.request.urlopen(request, timeout=2, context=context) as resp:  # noqa: S310
            body = resp.read()
        return json.loads(body) if path.startswith("/api/") else body

    def query_value(self, expr: str) -> float | None:
        doc = self._get("/api/v1/query", {"query": expr})
        result = doc.get("data", {}).get("result", [])
        return float(result[0]["value"][1]) if result else None

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise PeerError(f"exited with {self.proc.returncode}: {self.log_tail()}")
            with contextlib.suppress(OSError, ValueError):
                self._get("/-/ready")
                return
            time.sleep(0.1)
        raise PeerError(f"not ready within {timeout:g}s: {self.log_tail()}")

    def wait_scraped(self, timeout: float = 30.0) -> None:
        """Until every target has been scraped once (its ``up`` series exists)."""
        deadline = time.monotonic() + timeout
        want = self.targets
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
                if (self.query_value("count(up)") or 0) >= want:
                    return
            time.sleep(0.2)
        raise PeerError(f"{want} targets not all scraped within {timeout:g}s")

    def log_tail(self, lines: int = 8) -> str:
        path = self.folder / "prometheus.log"
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def stop(self, grace: float = 5.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=grace)
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
