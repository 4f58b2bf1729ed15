"""A Redfish client for one poll or one action: session login, reads, logout.

Session authentication (``POST`` to the service root's ``Links.Sessions``, then
``X-Auth-Token``); the session is deleted in a ``finally`` so a failed poll
never leaks one (BMCs allow only a few). A service whose root declares no
SessionService (sushy-tools) gets HTTP Basic instead. GETs get one more try
after a timeout or a lost connection; commands are never repeated. TLS goes
through the HTTP transport: verified, or pinned to ``bmc.tls_fingerprint``; never disabled.
"""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from console.plugin import ParseError
from console.transports import HostUnreachable, HttpResponse, TransportError
from plugins.power.config import PowerConfig, bmc_host, read_secret
from plugins.power.ipmi import BmcRefused, BmcSilent
from plugins.power.parse_redfish import load

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, Node
    from console.transports import Transports

log = logging.getLogger(__name__)

SESSIONS = "/redfish/v1/SessionService/Sessions"


class RedfishSession:
    """Requests against one BMC with one session's credentials."""

    def __init__(self, transports: Transports, node: Node, cfg: PowerConfig) -> None:
        assert node.bmc is not None
        self.node = node
        self.cfg = cfg
        self._http = transports.http
        port = f":{node.bmc.port}" if node.bmc.port else ""
        self.base = f"https://{bmc_host(node)}{port}"
        self.headers: dict[str, str] = {"Accept": "application/json"}
        self.session_uri: str | None = None
        self.auth = "none"

    async def request(self, method: str, path: str, json: Any = None) -> HttpResponse:
        assert self.node.bmc is not None
        try:
            return await self._http.request(
                method,
                self.base + path,
                timeout=self.cfg.timeout,
                headers=self.headers,
                json=json,
                tls_fingerprint=self.node.bmc.tls_fingerprint,
                ca_file=self.node.bmc.ca_file,
            )
        except HostUnreachable as exc:
            raise BmcSilent(f"{self.node.name} BMC: {exc}") from None

    async def get(self, path: str) -> dict[str, Any]:
        """A resource; one more try after a timeout or a lost connection (GETs are safe).

        Only reads are retried here: ``request`` (POST, PATCH, DELETE) never is.
        """
        try:
            resp = await self.request("GET", path)
        except BmcSilent as exc:
            log.info("%s: GET %s: %s; one more try", self.node.name, path, exc)
            resp = await self.request("GET", path)
        if resp.status == 401:
            raise BmcRefused(f"{self.node.name} BMC: {path}: 401 unauthorized")
        if resp.status != 200:
            raise LookupError(f"{path}: HTTP {resp.status}")
        try:
            return load(resp.body)
        except ParseError as exc:
            raise TransportError(f"{self.node.name} BMC: {path}: {exc}") from None

    async def try_get(self, path: str | None) -> dict[str, Any] | None:
        """The resource, or None when the BMC does not have it (404 and the like)."""
        if path is None:
            return None
        try:
            return await self.get(path)
        except LookupError:
            return None

    async def login(self, inventory: Inventory) -> None:
        assert self.node.bmc is not None
        user = self.node.bmc.user or ""
        password = read_secret(self.node.bmc.password, inventory) or ""
        sessions = await self._sessions_uri()
        if sessions is None:
            # No SessionService (sushy-tools): HTTP Basic over the same verified TLS.
            self._basic(user, password)
            return
        resp = await self.request("POST", sessions, json={"UserName": user, "Password": password})
        if resp.status in (200, 201):
            token = resp.headers.get("X-Auth-Token")
            if not token:
                raise BmcRefused(f"{self.node.name} BMC: session created without X-Auth-Token")
            self.headers["X-Auth-Token"] = token
            location = resp.headers.get("Location", "")
            if location.startswith(self.base):
                location = location[len(self.base) :]
            if not location:
                with contextlib.suppress(ParseError):
                    oid = load(resp.body).get("@odata.id")
                    location = oid if isinstance(oid, str) else ""
            self.session_uri = location or None
            self.auth = "session"
            return
        if resp.status in (404, 405, 501):
            self._basic(user, password)
            return
        if resp.status in (401, 403):
            raise BmcRefused(f"{self.node.name} BMC refused the credentials (HTTP {resp.status})")
        if resp.status == 503:
            raise BmcRefused(
                f"{self.node.name} BMC: no session available (HTTP 503, session limit?)"
            )
        raise BmcRefused(f"{self.node.name} BMC: session login answered HTTP {resp.status}")

    async def _sessions_uri(self) -> str | None:
        """Where sessions are created, from the (unauthenticated) service root.

        None when the service declares no SessionService. A root that cannot be
        read leaves the standard URI to try (the POST then tells).
        """
        try:
            root = await self.get("/redfish/v1/")
        except BmcSilent:
            raise
        except (LookupError, TransportError):  # 401, 404, not JSON: let the POST tell
            return SESSIONS
        links = root.get("Links")
        sessions = links.get("Sessions") if isinstance(links, dict) else None
        uri = sessions.get("@odata.id") if isinstance(sessions, dict) else None
        if isinstance(uri, str) and uri.startswith("/"):
            return uri
        return SESSIONS if "SessionService" in root else None

    def _basic(self, user: str, password: str) -> None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers["Authorization"] = f"Basic {token}"
        self.auth = "basic"

    async def logout(self) -> None:
        if self.session_uri is None:
            return
        uri, self.session_uri = self.session_uri, None
        try:
            await self.request("DELETE", uri)
        except TransportError as exc:
            log.info("%s BMC: could not delete session %s: %s", self.node.name, uri, exc)


@contextlib.asynccontextmanager
async def redfish_session(
    transports: Transports, inventory: Inventory, node: Node, cfg: PowerConfig
) -> AsyncIterator[RedfishSession]:
    """A logged-in session, deleted on the way out whatever happened."""
    rf = RedfishSession(transports, node, cfg)
    try:
        await rf.login(inventory)
        yield rf
    finally:
        await rf.logout()
