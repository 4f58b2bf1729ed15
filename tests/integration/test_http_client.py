"""The HTTP client against real aiohttp servers on loopback, plain and TLS."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from console.lab.tls import ensure_cert, fingerprint, server_context
from console.transports import HostUnreachable
from console.transports.http import BodyTooLarge, HttpClient, TlsRejected


def _app() -> web.Application:
    app = web.Application()

    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def big(_: web.Request) -> web.Response:
        return web.Response(body=b"a" * 5000)

    async def streamed(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()  # chunked: no Content-Length to trust
        await resp.prepare(request)
        for _ in range(10):
            await resp.write(b"b" * 1000)
        await resp.write_eof()
        return resp

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="late")

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"got": await request.json(), "h": request.headers.get("X-T")})

    app.router.add_get("/ok", ok)
    app.router.add_get("/big", big)
    app.router.add_get("/streamed", streamed)
    app.router.add_get("/slow", slow)
    app.router.add_post("/echo", echo)
    return app


async def _serve(ssl_context: ssl.SSLContext | None = None) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(_app(), shutdown_timeout=0.1)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    await web.SockSite(runner, sock, ssl_context=ssl_context).start()
    return runner, port


@pytest.fixture
async def server() -> AsyncIterator[int]:
    runner, port = await _serve()
    yield port
    await runner.cleanup()


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[int, Path, str]]:
    cert, key = ensure_cert(tmp_path, "bmc-test")
    runner, port = await _serve(server_context(cert, key))
    yield port, cert, fingerprint(cert)
    await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    c = HttpClient(max_body=4096)
    yield c
    await c.close()


async def test_get_returns_status_headers_and_body(server: int, client: HttpClient):
    resp = await client.request("GET", f"http://127.0.0.1:{server}/ok", timeout=5)
    assert resp.status == 200
    assert resp.text() == '{"status": "ok"}'
    assert resp.headers["Content-Type"].startswith("application/json")


async def test_post_sends_json_and_headers(server: int, client: HttpClient):
    resp = await client.request(
        "POST", f"http://127.0.0.1:{server}/echo", timeout=5, json={"a": 1}, headers={"X-T": "v"}
    )
    assert resp.text() == '{"got": {"a": 1}, "h": "v"}'


async def test_a_body_past_the_cap_is_an_error(server: int, client: HttpClient):
    with pytest.raises(BodyTooLarge, match=f"127.0.0.1:{server}"):
        await client.request("GET", f"http://127.0.0.1:{server}/big", timeout=5)


async def test_a_chunked_body_past_the_cap_is_an_error(server: int, client: HttpClient):
    with pytest.raises(BodyTooLarge):
        await client.request("GET", f"http://127.0.0.1:{server}/streamed", timeout=5)


async def test_a_refused_connection_names_the_host(client: HttpClient):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(HostUnreachable, match=f"127.0.0.1:{port}"):
        await client.request("GET", f"http://127.0.0.1:{port}/", timeout=5)


async def test_a_slow_server_times_out(server: int, client: HttpClient):
    with pytest.raises(HostUnreachable, match=r"no answer within 0\.3s"):
        await client.request("GET", f"http://127.0.0.1:{server}/slow", timeout=0.3)


async def test_a_pinned_fingerprint_is_accepted(tls_server, client: HttpClient):
    port, _, fingerprint = tls_server
    resp = await client.request(
        "GET", f"https://127.0.0.1:{port}/ok", timeout=5, tls_fingerprint=fingerprint
    )
    assert resp.status == 200


async def test_a_wrong_fingerprint_is_refused(tls_server, client: HttpClient):
    port, _, _ = tls_server
    wrong = ":".join(["AB"] * 32)
    with pytest.raises(TlsRejected, match="does not match the pinned"):
        await client.request(
            "GET", f"https://127.0.0.1:{port}/ok", timeout=5, tls_fingerprint=wrong
        )


async def test_an_unpinned_self_signed_certificate_is_refused(tls_server, client: HttpClient):
    port, _, _ = tls_server
    with pytest.raises(TlsRejected, match="not trusted"):
        await client.request("GET", f"https://127.0.0.1:{port}/ok", timeout=5)


async def test_a_certificate_signed_by_the_given_ca_file_is_accepted(tls_server, client):
    port, cert, _ = tls_server
    resp = await client.request("GET", f"https://127.0.0.1:{port}/ok", timeout=5, ca_file=str(cert))
    assert resp.status == 200


async def test_a_malformed_fingerprint_is_refused_before_connecting(client: HttpClient):
    with pytest.raises(TlsRejected, match="not hexadecimal"):
        await client.request("GET", "https://127.0.0.1:9/", timeout=5, tls_fingerprint="zz")
