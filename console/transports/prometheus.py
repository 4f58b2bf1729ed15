"""A Prometheus HTTP API client: instant and range queries, on the shared HTTP client.

Follows the API's envelope (prometheus/docs/querying/api.md): every answer is
``{"status": "success"|"error", "data": ..., "errorType": ..., "error": ...,
"warnings": [...]}``; an error keeps its ``errorType`` (``bad_data``,
``timeout``, ``execution`` ...) and the server's words. Non-JSON answers (a
proxy's HTML page) and unreachable servers are errors too, naming the server.

Credentials are references, read when a query is sent and never logged or put
in an error text. TLS is verified (system CAs, a CA file, or a pinned
fingerprint) by ``HttpClient``. Every query and the bytes it returned are
counted (``stats``) so a refresh's cost can be measured.

Values: Prometheus sends sample values as strings; ``NaN`` (and ``±Inf``) mean
the exporter had no number, so they become ``None`` (unknown), never 0.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from console.transports import TransportError

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import PrometheusSource
    from console.transports.http import HttpClient

MAX_PROM_BODY = 64 * 1024 * 1024
"""A fleet-wide family at 10,000 GPUs is a few MB; the cap stops a runaway query."""
POST_OVER = 1800
"""Queries longer than this (URL-encoded) are POSTed as a form, as the API allows."""


class PromError(TransportError):
    """Prometheus answered, with an error (or with something that is not its API)."""

    def __init__(self, message: str, error_type: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.status = status


class PromUnavailable(PromError):
    """Prometheus could not be reached (refused, timed out, TLS refused)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One element of an instant vector (or a scalar, with no labels)."""

    labels: Mapping[str, str]
    ts: float
    """The evaluation timestamp Prometheus gave (seconds); for ``timestamp(x)`` queries
    the value is the sample's own timestamp."""
    value: float | None
    """None for NaN/Inf: the exporter had no number."""


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a range query (a matrix), points oldest first."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float | None], ...]


@dataclass(frozen=True, slots=True)
class InstantResult:
    samples: tuple[Sample, ...]
    result_type: str
    warnings: tuple[str, ...] = ()
    bytes: int = 0
    series: tuple[Series, ...] = ()
    """For a range-vector expression (``metric[10m]``): the raw samples, with their own
    timestamps (staleness markers excluded)."""


@dataclass(frozen=True, slots=True)
class RangeResult:
    series: tuple[Series, ...]
    warnings: tuple[str, ...] = ()
    bytes: int = 0


@dataclass(slots=True)
class PromStats:
    """What this client has cost, for benchmarks and the query-count test."""

    queries: int = 0
    range_queries: int = 0
    bytes: int = 0
    errors: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    last_error: str | None = None
    expressions: list[str] = field(default_factory=list)
    """The last ``KEEP_EXPRESSIONS`` expressions sent (tests count and read them)."""

    def snapshot(self) -> tuple[int, int, int]:
        """(instant queries, range queries, bytes) so far."""
        return self.queries, self.range_queries, self.bytes


KEEP_EXPRESSIONS = 500


def _number(raw: Any) -> float | None:
    try:
        v = float(raw)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) or math.isinf(v) else v


def _labels(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): str(v) for k, v in raw.items()}


def _pair(raw: Any) -> tuple[float, float | None] | None:
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        return None
    ts = _number(raw[0])
    if ts is None:
        return None
    return ts, _number(raw[1])


def parse_envelope(body: bytes, status: int, where: str) -> tuple[Any, tuple[str, ...]]:
    """The ``data`` and ``warnings`` of an API answer; raises PromError for an error answer."""
    try:
        doc = json.loads(body)
    except ValueError:
        snippet = body[:120].decode("utf-8", errors="replace").strip().replace("\n", " ")
        raise PromError(
            f"{where}: not a Prometheus API answer (HTTP {status}: {snippet or 'empty body'})",
            status=status,
        ) from None
    if not isinstance(doc, dict):
        raise PromError(f"{where}: not a Prometheus API answer (HTTP {status})", status=status)
    warnings = tuple(str(w) for w in doc.get("warnings") or () if isinstance(w, str))
    if doc.get("status") != "success":
        etype = str(doc.get("errorType") or "")
        message = str(doc.get("error") or f"HTTP {status}")
        raise PromError(
            f"{where}: {etype + ': ' if etype else ''}{message}", error_type=etype, status=status
        )
    if status >= 400:
        raise PromError(f"{where}: HTTP {status}", status=status)
    return doc.get("data"), warnings


def parse_instant(data: Any) -> tuple[str, tuple[Sample, ...]]:
    """``data`` of /api/v1/query: (resultType, samples). Scalars become one unlabelled sample."""
    if not isinstance(data, dict):
        raise PromError("query answer has no data object")
    rtype = str(data.get("resultType") or "")
    result = data.get("result")
    if rtype == "vector":
        out: list[Sample] = []
        for item in result if isinstance(result, list) else ():
            if not isinstance(item, dict):
                continue
            pair = _pair(item.get("value"))
            if pair is not None:
                out.append(Sample(_labels(item.get("metric")), pair[0], pair[1]))
        return rtype, tuple(out)
    if rtype == "scalar":
        pair = _pair(result)
        return rtype, (() if pair is None else (Sample({}, pair[0], pair[1]),))
    if rtype in ("matrix", "string"):
        return rtype, ()
    raise PromError(f"unknown resultType {rtype!r}")


def parse_range(data: Any) -> tuple[Series, ...]:
    """``data`` of /api/v1/query_range (a matrix)."""
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        raise PromError("range query answer is not a matrix")
    out: list[Series] = []
    result = data.get("result")
    for item in result if isinstance(result, list) else ():
        if not isinstance(item, dict):
            continue
        raw = item.get("values")
        points = tuple(p for p in (_pair(v) for v in (raw if isinstance(raw, list) else ())) if p)
        out.append(Series(_labels(item.get("metric")), points))
    return tuple(out)


def read_ref(ref: str, base: Path) -> str:
    """The secret an ``env:``/``file:`` reference names; the message never holds it."""
    if ref.startswith("env:"):
        value = os.environ.get(ref[4:])
        if value is None:
            raise PromError(f"environment variable {ref[4:]} is not set")
        return value
    if ref.startswith("file:"):
        path = Path(ref[5:]).expanduser()
        path = path if path.is_absolute() else base / path
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise PromError(f"cannot read {path}: {exc.strerror or exc}") from None
    raise PromError("a credential must be env:NAME or file:PATH")


class PromClient:
    """Queries one Prometheus server. Cheap to create; the HTTP session is shared."""

    def __init__(
        self, http: HttpClient, server: PrometheusSource, *, base_dir: Path, name: str = "default"
    ) -> None:
        self.http = http
        self.server = server
        self.name = name
        self.base_dir = base_dir
        self.stats = PromStats()
        self.where = f"prometheus {urlsplit(server.url).netloc or server.url}"

    # ------------------------------------------------------------ requests

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        s = self.server
        if s.token is not None:
            headers["Authorization"] = "Bearer " + read_ref(s.token, self.base_dir)
        elif s.username:
            password = read_ref(s.password, self.base_dir) if s.password else ""
            raw = f"{s.username}:{password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
        return headers

    def _ca_file(self) -> str | None:
        ca = self.server.ca_file
        if ca is None:
            return None
        p = Path(ca).expanduser()
        return str(p if p.is_absolute() else self.base_dir / p)

    async def _call(
        self,
        path: str,
        params: Mapping[str, str],
        timeout: float | None,  # noqa: ASYNC109 - sent to Prometheus as well
    ) -> tuple[Any, tuple[str, ...], int]:
        from console.transports import HostUnreachable
        from console.transports.http import TlsRejected

        limit = timeout if timeout is not None else self.server.timeout_s
        # Prometheus stops evaluating at its own timeout; ours leaves it a moment to say so.
        form = {**params, "timeout": f"{limit:g}s"}
        encoded = urlencode(form)
        url = f"{self.server.url}{path}"
        started = time.monotonic()
        headers = self._headers()
        try:
            if len(encoded) > POST_OVER:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
                resp = await self.http.request(
                    "POST",
                    url,
                    timeout=limit + 2.0,
                    headers=headers,
                    data=encoded,
                    tls_fingerprint=self.server.tls_fingerprint,
                    ca_file=self._ca_file(),
                    max_body=MAX_PROM_BODY,
                )
            else:
                resp = await self.http.request(
                    "GET",
                    f"{url}?{encoded}",
                    timeout=limit + 2.0,
                    headers=headers,
                    tls_fingerprint=self.server.tls_fingerprint,
                    ca_file=self._ca_file(),
                    max_body=MAX_PROM_BODY,
                )
        except (HostUnreachable, TlsRejected) as exc:
            self._failed(str(exc))
            raise PromUnavailable(f"{self.where}: {_after_host(str(exc))}") from None
        except TransportError as exc:
            self._failed(str(exc))
            raise PromError(f"{self.where}: {_after_host(str(exc))}") from None
        finally:
            self.stats.seconds += time.monotonic() - started
        self.stats.bytes += len(resp.body)
        if resp.status in (401, 403):
            self._failed(f"HTTP {resp.status}")
            raise PromError(
                f"{self.where}: HTTP {resp.status}: the credentials were refused",
                error_type="auth",
                status=resp.status,
            )
        try:
            data, warnings = parse_envelope(resp.body, resp.status, self.where)
        except PromError as exc:
            self._failed(str(exc))
            raise
        if warnings:
            self.stats.warnings = [*self.stats.warnings[-20:], *warnings]
        return data, warnings, len(resp.body)

    def _failed(self, text: str) -> None:
        self.stats.errors += 1
        self.stats.last_error = text

    def _keep(self, expr: str) -> None:
        self.stats.expressions.append(expr)
        del self.stats.expressions[:-KEEP_EXPRESSIONS]

    # ------------------------------------------------------------ API

    async def query(
        self,
        expr: str,
        *,
        at: float | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - sent to Prometheus as well
    ) -> InstantResult:
        """``/api/v1/query``: the instant vector (or scalar) of ``expr`` now or ``at``."""
        self.stats.queries += 1
        self._keep(expr)
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data, warnings, size = await self._call("/api/v1/query", params, timeout)
        try:
            rtype, samples = parse_instant(data)
            series = parse_range(data) if rtype == "matrix" else ()
        except PromError as exc:
            self._failed(str(exc))
            raise PromError(f"{self.where}: {exc}") from None
        return InstantResult(samples, rtype, warnings, size, series)

    async def query_range(
        self,
        expr: str,
        *,
        start: float,
        end: float,
        step: float,
        timeout: float | None = None,  # noqa: ASYNC109 - sent to Prometheus as well
    ) -> RangeResult:
        """``/api/v1/query_range``: ``expr`` evaluated every ``step`` seconds over the range."""
        if step <= 0 or end < start:
            raise PromError(f"{self.where}: a range needs start <= end and a positive step")
        self.stats.range_queries += 1
        self._keep(expr)
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data, warnings, size = await self._call("/api/v1/query_range", params, timeout)
        try:
            series = parse_range(data)
        except PromError as exc:
            self._failed(str(exc))
            raise PromError(f"{self.where}: {exc}") from None
        return RangeResult(series, warnings, size)

    async def query_many(
        self,
        exprs: Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - sent to Prometheus as well
    ) -> dict[str, InstantResult]:
        """Several instant queries at once (same evaluation time); the first error raises."""
        at = time.time()
        keys = list(exprs)
        results = await asyncio.gather(
            *(self.query(exprs[k], at=at, timeout=timeout) for k in keys)
        )
        return dict(zip(keys, results, strict=True))


def _after_host(text: str) -> str:
    """``host:port: refused`` -> ``refused`` (the client names the server itself)."""
    head, sep, tail = text.partition(": ")
    return tail if sep and ("." in head or ":" in head) else text


class PromClients:
    """One client per configured server, kept for the console's life (their stats add up)."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http
        self._clients: dict[tuple[str, str], PromClient] = {}

    def get(self, server: PrometheusSource, *, base_dir: Path, name: str) -> PromClient:
        key = (name, server.url)
        client = self._clients.get(key)
        if client is None or client.server != server:
            client = self._clients[key] = PromClient(
                self.http, server, base_dir=base_dir, name=name
            )
        return client

    def all(self) -> Sequence[PromClient]:
        return list(self._clients.values())
