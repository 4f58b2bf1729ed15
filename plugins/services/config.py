"""The ``plugins.services`` section of the inventory.

Example::

    plugins:
      services:
        checks:
          - name: minio-stor01
            service: minio          # catalogue entry: port 9000, /minio/health/live
            node: stor01            # URL host from the node's ssh host
            systemd: {unit: minio.service}
          - name: grafana
            http: {url: "https://grafana.example.org/api/health", ca_file: /etc/ssl/site-ca.pem}
            service: grafana
          - name: postgres
            node: cpu01
            tcp: {port: 5432}
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from plugins.services.catalog import CATALOG, CatalogEntry, known_keys

if TYPE_CHECKING:  # pragma: no cover
    from console.inventory.model import Inventory, Node

# systemd unit names: letters, digits, ":-_.\@", with a type suffix (``.service`` is added
# when missing). Anything else could smuggle shell syntax into a command line.
_UNIT_NAME = re.compile(r"^[A-Za-z0-9:_.\\@-]+$")
_UNIT_SUFFIXES = (".service", ".socket", ".target", ".timer", ".mount", ".path", ".scope")
_FINGERPRINT = re.compile(r"^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpCheck(_Model):
    """An HTTP health check. Without ``url``, it is built from the catalogue and the node."""

    url: str | None = None
    """The full URL (``https://minio.example.org:9000/minio/health/live``)."""
    scheme: Literal["http", "https"] = "http"
    """Used when the URL is built from the node's address."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Overrides the catalogue's default port when the URL is built."""
    path: str | None = None
    """Overrides the catalogue's health path when the URL is built."""
    expect_status: list[int] = Field(default_factory=lambda: [200], min_length=1)
    """HTTP statuses that mean the service answered as healthy."""
    timeout: float = Field(default=5.0, gt=0, le=120)
    """Seconds before the request counts as failed (the service is then down)."""
    tls_fingerprint: str | None = None
    """SHA-256 of the server's certificate, pinned (``AA:BB:...``, 32 bytes)."""
    ca_file: str | None = None
    """A CA bundle for a site CA (relative paths are relative to the inventory)."""

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http:// or https:// URL with a host")
        return value

    @field_validator("path")
    @classmethod
    def _path_is_absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"path must start with '/', got {value!r}")
        return value

    @field_validator("tls_fingerprint")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is not None and not _FINGERPRINT.match(value):
            raise ValueError("tls_fingerprint must be a SHA-256 fingerprint, AA:BB:... (32 bytes)")
        return value


class TcpCheck(_Model):
    """A TCP connect check: the port accepts a connection."""

    host: str | None = None
    """Defaults to the node's ssh host."""
    port: int = Field(ge=1, le=65535)
    timeout: float = Field(default=3.0, gt=0, le=60)


class SystemdCheck(_Model):
    """A systemd unit read with ``systemctl show`` over SSH on the check's node."""

    unit: str
    """The unit name; ``.service`` is added when no type suffix is given."""

    @field_validator("unit")
    @classmethod
    def _unit_name(cls, value: str) -> str:
        if not _UNIT_NAME.match(value):
            raise ValueError(f"{value!r} is not a systemd unit name")
        return value if value.endswith(_UNIT_SUFFIXES) else value + ".service"


class Backends(_Model):
    """The checks whose services answer behind this address (a VIP, a gateway).

    ``failover``: one member holds the address (the first one up, by order),
    another takes it over when it is lost (keepalived, MinIO site replication).
    ``balance``: the address answers while any member does (a gateway, a load
    balancer). The console reads the address like any check; the lab serves it
    this way.
    """

    members: list[str] = Field(min_length=1)
    mode: Literal["failover", "balance"] = "failover"


class S3Access(_Model):
    """S3 credentials for a MinIO (or any S3) check: drills write RPO markers with them."""

    access_key: str = Field(min_length=3, pattern=r"^[A-Za-z0-9_.-]+$")
    secret_key: str = Field(pattern=r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$")
    """A reference: ``env:NAME`` or ``file:PATH``, never the key itself."""
    region: str = Field(default="us-east-1", pattern=r"^[a-z0-9-]+$")


class ServiceCheck(_Model):
    """One service to watch: any of an HTTP, a TCP and a systemd check."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Unique name; readings use ``svc:<name>``."""
    service: str | None = None
    """A catalogue key (``minio``, ``triton`` ...): default port, path and body judgement."""
    node: str | None = None
    """The inventory node it runs on (for the URL, systemd, filtering and the node card)."""
    http: HttpCheck | None = None
    tcp: TcpCheck | None = None
    systemd: SystemdCheck | None = None
    slow_ms: float | None = Field(default=1000.0, gt=0)
    """Latency above which a healthy answer counts as slow; null turns it off."""
    interval: float = Field(default=15.0, ge=1, le=3600)
    """Seconds between two checks."""
    backends: Backends | None = None
    """When this address is a VIP or a gateway: the checks that serve it."""
    s3: S3Access | None = None
    """S3 credentials (MinIO): what a drill's ``services.objects`` data probe uses."""

    @field_validator("service")
    @classmethod
    def _known_service(cls, value: str | None) -> str | None:
        if value is not None and value not in CATALOG:
            raise ValueError(f"unknown service {value!r}; the catalogue knows: {known_keys()}")
        return value

    @field_validator("node")
    @classmethod
    def _known_node(cls, value: str | None, info: ValidationInfo) -> str | None:
        # The loader may pass the inventory's node names as validation context.
        nodes = info.context.get("nodes") if isinstance(info.context, dict) else None
        if value is not None and nodes is not None and value not in nodes:
            raise ValueError(f"node {value!r} is not in the inventory")
        return value

    @model_validator(mode="before")
    @classmethod
    def _catalogue_http(cls, data: Any) -> Any:
        # ``service: minio`` without http/tcp means the catalogue's HTTP check;
        # an explicit ``http: null`` turns it off.
        if isinstance(data, dict) and data.get("service") and not {"http", "tcp"} & data.keys():
            data = {**data, "http": {}}
        return data

    @model_validator(mode="after")
    def _complete(self) -> ServiceCheck:
        if self.http is None and self.tcp is None and self.systemd is None:
            raise ValueError(f"check {self.name!r} needs http, tcp or systemd (or a service)")
        if self.http is not None and self.http.url is None:
            if self.node is None:
                raise ValueError(f"check {self.name!r}: http without url needs a node")
            if self.service is None and (self.http.port is None or self.http.path is None):
                raise ValueError(
                    f"check {self.name!r}: http without url needs a service from the "
                    f"catalogue or both port and path"
                )
        if self.tcp is not None and self.tcp.host is None and self.node is None:
            raise ValueError(f"check {self.name!r}: tcp without host needs a node")
        if self.systemd is not None and self.node is None:
            raise ValueError(f"check {self.name!r}: systemd needs the node the unit runs on")
        return self

    @property
    def entry(self) -> CatalogEntry | None:
        return None if self.service is None else CATALOG[self.service]

    @property
    def target_name(self) -> str:
        return f"svc:{self.name}"


class ServicesConfig(_Model):
    """The services plugin's section: the checks to run."""

    checks: list[ServiceCheck] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> ServicesConfig:
        seen: set[str] = set()
        for check in self.checks:
            if check.name in seen:
                raise ValueError(f"two checks are named {check.name!r}; names must be unique")
            seen.add(check.name)
        for check in self.checks:
            for member in check.backends.members if check.backends else ():
                if member not in seen or member == check.name:
                    raise ValueError(
                        f"check {check.name!r}: backend {member!r} is not another check"
                    )
        return self

    def get(self, name: str) -> ServiceCheck | None:
        return next((c for c in self.checks if c.name == name), None)


# --------------------------------------------------------------------------- resolution


def node_problems(config: ServicesConfig, inventory: Inventory) -> list[str]:
    """Checks that name a node the inventory does not have, one message each."""
    problems = []
    for i, check in enumerate(config.checks):
        if check.node is not None and check.node not in inventory.nodes:
            problems.append(
                f"plugins.services.checks[{i}] ({check.name}): node {check.node!r} "
                f"is not in the inventory"
            )
    return problems


def node_host(node: Node) -> str:
    """The address a node is reached at, from its ssh settings (``{name}`` filled in)."""
    host = node.ssh.host
    if "{" not in host:  # the loader usually resolved it already
        return host
    try:
        return host.format(name=node.name, index=node.index, num=node.index)
    except (KeyError, IndexError, ValueError):
        return host


def check_url(check: ServiceCheck, inventory: Inventory) -> str | None:
    """The URL an HTTP check requests, or None when it has no HTTP check.

    Raises:
        LookupError: the check needs its node's address and the node is not in the inventory.
    """
    http = check.http
    if http is None:
        return None
    if http.url is not None:
        return http.url
    node = inventory.nodes.get(check.node or "")
    if node is None:
        raise LookupError(f"check {check.name}: node {check.node!r} is not in the inventory")
    entry = check.entry
    port = http.port or (entry.port if entry else None)
    path = http.path or (entry.path if entry else "/")
    return f"{http.scheme}://{node_host(node)}:{port}{path}"


def tcp_address(check: ServiceCheck, inventory: Inventory) -> tuple[str, int] | None:
    """The (host, port) a TCP check connects to, or None without a TCP check."""
    if check.tcp is None:
        return None
    if check.tcp.host is not None:
        return check.tcp.host, check.tcp.port
    node = inventory.nodes.get(check.node or "")
    if node is None:
        raise LookupError(f"check {check.name}: node {check.node!r} is not in the inventory")
    return node_host(node), check.tcp.port


def config_of(inventory: Inventory) -> ServicesConfig:
    """The validated section from the inventory (an empty one when absent)."""
    cfg = inventory.plugin_configs.get("services")
    return cfg if isinstance(cfg, ServicesConfig) else ServicesConfig()
