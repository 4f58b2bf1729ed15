"""The lab's control API: loopback HTTP with a bearer token, used by `dcc lab fault`.

The token is random per start and kept in ``<state_dir>/control.token``
(0600); ``<state_dir>/lab.json`` says where the API listens.
"""

from __future__ import annotations

import hmac
import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from console.lab.faults import FaultError
from console.lab.keys import write_private
from console.transports import TransportError

if TYPE_CHECKING:  # pragma: no cover
    from console.lab.lab import Lab

TOKEN_FILE = "control.token"  # noqa: S105 - a file name
INFO_FILE = "lab.json"


class LabNotRunning(RuntimeError):
    """No lab answers for this state dir."""


def make_app(lab: Lab, token: str) -> web.Application:
    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return web.json_response({"error": "missing or wrong bearer token"}, status=401)
        resp: web.StreamResponse = await handler(request)
        return resp

    async def status(_: web.Request) -> web.Response:
        return web.json_response(lab.describe())

    async def list_faults(_: web.Request) -> web.Response:
        return web.json_response({"faults": [f.as_dict() for f in lab.faults.active()]})

    async def add_fault(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "body must be JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        params = body.get("params") or {}
        duration = body.get("duration")
        if not isinstance(params, dict) or not (
            duration is None or isinstance(duration, int | float)
        ):
            return web.json_response({"error": "params must be an object"}, status=400)
        try:
            fid = lab.faults.inject(
                str(body.get("name", "")), str(body.get("target", "")), params, duration
            )
        except FaultError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"id": fid})

    async def clear_fault(request: web.Request) -> web.Response:
        fid = request.match_info["fid"]
        if not lab.faults.clear(fid):
            return web.json_response({"error": f"no active fault {fid}"}, status=404)
        return web.json_response({"cleared": [fid]})

    async def clear_all(_: web.Request) -> web.Response:
        return web.json_response({"cleared": lab.faults.clear_all()})

    async def list_deadman(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "armed": [s.as_dict() for s in lab.deadman.armed()],
                "fired": [s.as_dict() for s in lab.deadman.fired],
            }
        )

    async def arm_deadman(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "body must be JSON"}, status=400)
        clears = body.get("clears") if isinstance(body, dict) else None
        after = body.get("after_s") if isinstance(body, dict) else None
        if (
            not isinstance(clears, list)
            or not all(isinstance(c, list) and len(c) == 2 for c in clears)
            or not isinstance(after, int | float)
        ):
            return web.json_response(
                {"error": "need key, clears [[fault, target], ...] and after_s"}, status=400
            )
        try:
            switch = lab.deadman.arm(
                str(body.get("key", "")),
                [(str(n), str(t)) for n, t in clears],
                float(after),
                str(body.get("by", "")),
            )
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(switch.as_dict())

    async def cancel_deadman(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        if not lab.deadman.cancel(key):
            return web.json_response({"error": f"no armed switch {key}"}, status=404)
        return web.json_response({"cancelled": key})

    app = web.Application(middlewares=[auth], client_max_size=64 * 1024)
    app.router.add_get("/deadman", list_deadman)
    app.router.add_post("/deadman", arm_deadman)
    app.router.add_delete("/deadman/{key}", cancel_deadman)
    app.router.add_get("/status", status)
    app.router.add_get("/faults", list_faults)
    app.router.add_post("/faults", add_fault)
    app.router.add_delete("/faults/{fid}", clear_fault)
    app.router.add_delete("/faults", clear_all)
    return app


def new_token(state_dir: Path) -> str:
    token = secrets.token_urlsafe(32)
    write_private(state_dir / TOKEN_FILE, token.encode())
    return token


class ControlClient:
    """Talks to a running lab through its control API."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def _endpoint(self) -> tuple[str, str]:
        try:
            info = json.loads((self.state_dir / INFO_FILE).read_text(encoding="utf-8"))
            token = (self.state_dir / TOKEN_FILE).read_text(encoding="utf-8").strip()
            url = f"http://{info['control_host']}:{int(info['control_port'])}"
        except (OSError, ValueError, KeyError, TypeError):
            raise LabNotRunning(
                f"no running lab found in {self.state_dir} (start one with `dcc lab`)"
            ) from None
        return url, token

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        from console.transports.http import HttpClient

        url, token = self._endpoint()
        client = HttpClient(max_body=1 << 20)
        try:
            resp = await client.request(
                method,
                url + path,
                timeout=10,
                headers={"Authorization": f"Bearer {token}"},
                json=body,
            )
        except TransportError as exc:
            raise LabNotRunning(f"the lab in {self.state_dir} does not answer ({exc})") from None
        finally:
            await client.close()
        try:
            data = json.loads(resp.body or b"{}")
        except ValueError:
            data = {"error": resp.text()}
        if resp.status >= 400:
            raise FaultError(str(data.get("error", f"HTTP {resp.status}")))
        return data
