"""The HTTP transport: one aiohttp session, TLS always verified or pinned, bodies capped.

TLS is verified against the system CAs, against a given CA file, or pinned
by the SHA-256 fingerprint of the server's certificate (BMCs use self-signed
certificates; a pin is what makes them safe). Certificate checking is never
switched off.
"""

from __future__ import annotations

import asyncio
import binascii
import ssl
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from console.transports import HostUnreachable, HttpResponse, TransportError

MAX_BODY_BYTES = 5 * 1024 * 1024


class BodyTooLarge(TransportError):
    """The response body passed the cap; it was not read further."""


class TlsRejected(TransportError):
    """The server's certificate was not trusted (unverified, or not the pinned one)."""


def parse_fingerprint(text: str) -> bytes:
    """``AA:BB:...`` or plain hex of a SHA-256 fingerprint, as 32 bytes."""
    cleaned = text.strip().replace(":", "").replace(" ", "")
    if cleaned.lower().startswith("sha256"):
        cleaned = cleaned[6:].lstrip("=")
    try:
        raw = binascii.unhexlify(cleaned)
    except (binascii.Error, ValueError):
        raise ValueError(f"TLS fingerprint {text!r} is not hexadecimal") from None
    if len(raw) != 32:
        raise ValueError(f"TLS fingerprint {text!r} must be a SHA-256 (32 bytes)")
    return raw


class HttpClient:
    """A lazily created aiohttp session shared by every HTTP collector and action."""

    def __init__(self, max_body: int = MAX_BODY_BYTES) -> None:
        self.max_body = max_body
        self._session: aiohttp.ClientSession | None = None
        self._ssl_contexts: dict[str, ssl.SSLContext] = {}
        self._fingerprints: dict[str, aiohttp.Fingerprint] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Created inside the running loop (aiohttp binds a session to it).
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, limit_per_host=8),
                trust_env=False,
                auto_decompress=True,
            )
        return self._session

    def _ssl_for(self, tls_fingerprint: str | None, ca_file: str | None) -> Any:
        if tls_fingerprint:
            # Pinned: the certificate must hash to the pin; the chain is not consulted.
            # One object per pin: aiohttp pools connections by it (by identity), so a
            # new one per request opened a new TLS connection per request (and kept it).
            pin = self._fingerprints.get(tls_fingerprint)
            if pin is None:
                pin = self._fingerprints[tls_fingerprint] = aiohttp.Fingerprint(
                    parse_fingerprint(tls_fingerprint)
                )
            return pin
        if ca_file:
            ctx = self._ssl_contexts.get(ca_file)
            if ctx is None:
                ctx = ssl.create_default_context(cafile=ca_file)
                self._ssl_contexts[ca_file] = ctx
            return ctx
        return True  # the default: verified against the system CAs

    async def request(
        self,
        method: str,
        url: str,
        *,
        timeout: float,  # noqa: ASYNC109 - the transport contract
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: bytes | str | None = None,
        tls_fingerprint: str | None = None,
        ca_file: str | None = None,
        max_body: int | None = None,
    ) -> HttpResponse:
        """Send one request and read its body (up to ``max_body``, the client's cap by default).

        Raises:
            TlsRejected: the certificate is not trusted or not the pinned one.
            HostUnreachable: refused, timed out, connection lost.
            BodyTooLarge: the body passed ``max_body``.
        """
        host = urlsplit(url).netloc or url
        cap = self.max_body if max_body is None else max_body
        started = time.monotonic()
        session = self._get_session()
        try:
            ssl_arg = self._ssl_for(tls_fingerprint, ca_file)
        except (ValueError, OSError, ssl.SSLError) as exc:
            raise TlsRejected(f"{host}: TLS settings unusable: {exc}") from None
        try:
            async with asyncio.timeout(timeout):
                async with session.request(
                    method,
                    url,
                    headers=dict(headers) if headers else None,
                    json=json,
                    data=data,
                    ssl=ssl_arg,
                    allow_redirects=False,
                ) as resp:
                    declared = resp.content_length
                    if declared is not None and declared > cap:
                        raise BodyTooLarge(
                            f"{host}: response body of {declared} bytes passes the {cap}-byte cap"
                        )
                    body = bytearray()
                    async for chunk in resp.content.iter_chunked(65536):
                        body += chunk
                        if len(body) > cap:
                            raise BodyTooLarge(f"{host}: response body passes the {cap}-byte cap")
                    return HttpResponse(
                        status=resp.status,
                        headers={k: v for k, v in resp.headers.items()},
                        body=bytes(body),
                        elapsed=time.monotonic() - started,
                        url=url,
                    )
        except TimeoutError:
            raise HostUnreachable(f"{host}: no answer within {timeout:g}s") from None
        except aiohttp.ServerFingerprintMismatch:
            raise TlsRejected(
                f"{host}: TLS certificate does not match the pinned SHA-256 fingerprint"
            ) from None
        except aiohttp.ClientConnectorCertificateError as exc:
            raise TlsRejected(
                f"{host}: TLS certificate not trusted ({exc.certificate_error})"
            ) from None
        except aiohttp.ClientSSLError as exc:
            raise TlsRejected(f"{host}: TLS failed ({exc})") from None
        except aiohttp.ClientConnectorError as exc:
            raise HostUnreachable(f"{host}: {exc.strerror or exc}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise HostUnreachable(f"{host}: {type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
