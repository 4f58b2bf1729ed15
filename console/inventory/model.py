"""The inventory: what the site is made of, as pydantic models.

Two layers:
- the *document* models (``InventoryDoc`` and below) mirror the YAML file, with
  ``extra="forbid"`` so a typo is an error, and node *groups* written as node
  sets (``gpu[001-016]``);
- the *resolved* model (``Inventory``, ``Node``) that the rest of the console
  uses: one ``Node`` per host, addresses expanded, references checked.

Credentials are references (``env:NAME``, ``file:PATH``), never values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

CREDENTIAL_REF = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$")


def _credential_ref(value: str) -> str:
    if not CREDENTIAL_REF.match(value):
        raise ValueError(
            "a credential must be a reference, env:NAME or file:PATH, never the secret itself"
        )
    return value


CredentialRef = Annotated[str, AfterValidator(_credential_ref)]
"""``env:NAME`` or ``file:PATH``; resolved only when used, never stored or shown."""

Role = Literal["gpu-train", "gpu-infer", "cpu", "storage", "switch", "bmc-only"]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Site(_Doc):
    name: str = Field(min_length=1)
    """Short site name shown in the header."""
    description: str = ""
    timezone: str = "UTC"


class Rack(_Doc):
    name: str = Field(min_length=1)
    position: str = ""
    """Row and place in the room (``A03``), for the elevation."""
    units: int = Field(default=42, ge=1, le=60)
    power_budget_kw: float = Field(gt=0)
    """What the rack may draw (the seed plans 20-40 kW)."""
    cooling_limit_kw: float | None = Field(default=None, gt=0)
    power_feeds: int = Field(default=2, ge=1)
    """Independent feeds (2 for N+1 / 2N)."""


class Room(_Doc):
    name: str = Field(min_length=1)
    racks: list[Rack] = Field(default_factory=list)


class SshAccess(_Doc):
    """How to reach a host over SSH. ``host`` may use ``{name}``, ``{index}``, ``{num}``."""

    host: str = "{name}"
    port: int = Field(default=22, ge=1, le=65535)
    user: str = "root"
    identity: CredentialRef | None = None
    """Private key file (``file:PATH``); none means the SSH agent is not used either."""
    known_hosts: str | None = None
    """known_hosts file; relative paths are relative to the inventory file."""


class BmcAccess(_Doc):
    """How to reach a node's BMC. ``address`` may use ``{name}``, ``{index}``, ``{num}``."""

    address: str
    protocol: Literal["ipmi", "redfish"] = "redfish"
    port: int | None = Field(default=None, ge=1, le=65535)
    user: str | None = None
    password: CredentialRef | None = None
    tls_fingerprint: str | None = None
    """SHA-256 fingerprint of the BMC's certificate, pinned (``AA:BB:...``)."""
    ca_file: str | None = None


class ExpectedHardware(_Doc):
    gpu_model: str | None = None
    gpu_count: int = Field(default=0, ge=0, le=64)
    ib_ports: int = Field(default=0, ge=0, le=64)
    ib_rate_gbps: int | None = Field(default=None, gt=0)
    driver_version: str | None = None
    cuda_version: str | None = None


class ClusterMembership(_Doc):
    kubernetes: str | None = None
    """Name of a cluster under ``clusters.kubernetes``."""
    slurm: str | None = None
    """Name of a cluster under ``clusters.slurm``."""
    partitions: list[str] = Field(default_factory=list)
    zone: str | None = None


class NodeGroup(_Doc):
    """Nodes declared together by a node set."""

    nodes: str
    """A node set: ``gpu[001-016]``."""
    role: Role
    rack: str | None = None
    u_start: int | None = Field(default=None, ge=1)
    """The U slot of the first node; the next ones stack upwards by ``u_height``."""
    u_height: int = Field(default=1, ge=1, le=10)
    ssh: SshAccess | None = None
    bmc: BmcAccess | None = None
    hardware: ExpectedHardware = Field(default_factory=ExpectedHardware)
    clusters: ClusterMembership = Field(default_factory=ClusterMembership)
    labels: dict[str, str] = Field(default_factory=dict)
    exporters: dict[str, str] = Field(default_factory=dict)
    """Prometheus ``instance`` label of each exporter on these nodes, by exporter
    (``dcgm: "{name}:9400"``, ``ipmi: "10.10.1.{num}"``, ``node: ...``); templates as ``ssh.host``.
    Only needed when the exporters' labels do not carry the node's name (see README)."""


class KubernetesCluster(_Doc):
    kubeconfig: str | None = None
    context: str | None = None
    source: Literal["direct", "prometheus"] = "direct"


class SlurmCluster(_Doc):
    controller: str
    """The node name of the controller (or login node) commands run on."""
    backup_controller: str | None = None
    slurmrestd: str | None = None
    """URL of slurmrestd, when the site runs it."""
    token: CredentialRef | None = None
    source: Literal["direct", "prometheus"] = "direct"


class Clusters(_Doc):
    kubernetes: dict[str, KubernetesCluster] = Field(default_factory=dict)
    slurm: dict[str, SlurmCluster] = Field(default_factory=dict)


class Threshold(_Doc):
    """A health rule on a numeric metric: warning and critical levels."""

    warn: float | None = None
    crit: float | None = None
    direction: Literal["above", "below"] = "above"
    """``above``: bad when the value rises past the level; ``below``: when it falls under."""


_PROM_URL = re.compile(r"^https?://[^/@\s?#]+(/[^\s?#]*)?$")


class PrometheusSource(_Doc):
    """A Prometheus (or Thanos/Mimir query frontend) the console reads its HTTP API from."""

    url: str
    """Base URL, ``https://prometheus.site:9090`` (the ``/api/v1/...`` paths are appended)."""
    token: CredentialRef | None = None
    """Bearer token (``env:NAME`` or ``file:PATH``)."""
    username: str | None = None
    """Basic auth user; the password is ``password`` (a reference)."""
    password: CredentialRef | None = None
    ca_file: str | None = None
    """CA bundle the server's certificate is verified against (default: the system CAs)."""
    tls_fingerprint: str | None = None
    """SHA-256 fingerprint of the server's certificate, pinned (instead of a CA)."""
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    """Seconds one query may take (sent to Prometheus as ``timeout`` too)."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not _PROM_URL.match(value):
            raise ValueError(
                "the URL must be http(s)://host[:port][/path], without user:password@, "
                "a query or a fragment"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _auth(self) -> PrometheusSource:
        if self.token is not None and (self.username or self.password):
            raise ValueError("give either token (bearer) or username/password (basic), not both")
        if self.password is not None and not self.username:
            raise ValueError("password is set but username is not")
        if (self.token or self.password) and not self.url.startswith("https://"):
            raise ValueError("a token or password is sent only over https: the URL is http://")
        return self


class AuditSettings(_Doc):
    db: str | None = None
    anchor: str | None = None
    """A file (or ``syslog``) the head hash is written to periodically."""


class Backup(_Doc):
    """A backup the site runs: declared here so reviews (the bring-up scorecard) can see it."""

    name: str = Field(min_length=1)
    """Short unique name (``etcd``, ``gitlab``)."""
    covers: str = Field(min_length=1)
    """What it protects (``Kubernetes etcd``, ``GitLab repositories and database``)."""
    schedule: str = Field(min_length=1)
    """When it runs, as the backup tool says it (``daily 02:00``, ``0 2 * * *``)."""
    destination: str = Field(min_length=1)
    """Where the copies go (``minio://backups/etcd``, ``tape library``); never a credential."""
    retention_days: int = Field(ge=1)
    restore_tested: date | None = None
    """The day a restore from it was last tested (YYYY-MM-DD), if ever."""


class InventoryDoc(_Doc):
    """The inventory file as written."""

    site: Site
    rooms: list[Room] = Field(default_factory=list)
    nodes: list[NodeGroup] = Field(default_factory=list)
    ssh: SshAccess = Field(default_factory=SshAccess)
    """Defaults for every group's ``ssh`` (fields a group sets win)."""
    clusters: Clusters = Field(default_factory=Clusters)
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    prometheus: PrometheusSource | None = None
    """The Prometheus subsystems with ``source: prometheus`` read (named ``default``)."""
    prometheus_servers: dict[str, PrometheusSource] = Field(default_factory=dict)
    """More Prometheus servers by name, for a plugin section's ``prometheus: NAME``."""
    roles_file: str | None = None
    audit: AuditSettings = Field(default_factory=AuditSettings)
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Each plugin's own section, validated by that plugin's config model."""
    backups: list[Backup] = Field(default_factory=list)
    """The backups the site runs (optional; names unique)."""
    demo: bool = False
    """True for the lab's inventory: the header shows DEMO."""

    @field_validator("backups")
    @classmethod
    def _unique_backups(cls, value: list[Backup]) -> list[Backup]:
        names = [b.name for b in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"backup names must be unique: {', '.join(dupes)}")
        return value


# --------------------------------------------------------------------------- resolved


class Node(_Doc):
    """One host, resolved from its group."""

    name: str
    role: Role
    room: str | None = None
    rack: str | None = None
    u: int | None = None
    u_height: int = 1
    index: int = 1
    """1-based position within its group's node set."""
    ssh: SshAccess
    bmc: BmcAccess | None = None
    hardware: ExpectedHardware = Field(default_factory=ExpectedHardware)
    clusters: ClusterMembership = Field(default_factory=ClusterMembership)
    labels: dict[str, str] = Field(default_factory=dict)
    exporters: dict[str, str] = Field(default_factory=dict)
    """Its exporters' ``instance`` labels by exporter, templates filled."""


class Inventory(BaseModel):
    """The resolved inventory every other part of the console reads."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    source: Path | None = None
    """The file it was loaded from (relative paths inside are relative to its folder)."""
    doc: InventoryDoc
    nodes: dict[str, Node]
    """By name, in declaration order."""
    plugin_configs: dict[str, Any] = Field(default_factory=dict)
    """Validated plugin config models, by plugin name (filled by ``apply_plugin_configs``)."""

    _lines: dict[tuple[str | int, ...], int] = PrivateAttr(default_factory=dict)
    """Where each key of the file was written, for messages about plugin sections."""
    _label: str = PrivateAttr(default="")
    """The file name as the operator gave it, for messages."""
    _by_rack: tuple[dict[str, Node], dict[str, list[Node]]] | None = PrivateAttr(default=None)
    """``nodes_in_rack``'s index, with the ``nodes`` it was built from."""

    @property
    def label(self) -> str:
        """The file name for messages (as given on the command line)."""
        return self._label or (str(self.source) if self.source else "<inventory>")

    def line_of(self, loc: tuple[str | int, ...]) -> int | None:
        """The line ``loc`` (or its nearest written ancestor) is on, when loaded from a file."""
        for end in range(len(loc), -1, -1):
            found = self._lines.get(tuple(loc[:end]))
            if found is not None:
                return found
        return None

    @property
    def site(self) -> Site:
        return self.doc.site

    @property
    def demo(self) -> bool:
        return self.doc.demo

    def racks(self) -> Iterator[tuple[Room, Rack]]:
        for room in self.doc.rooms:
            for rack in room.racks:
                yield room, rack

    def rack(self, name: str) -> Rack | None:
        return next((r for _, r in self.racks() if r.name == name), None)

    def nodes_in_rack(self, rack: str) -> list[Node]:
        # Indexed once: rack panes and rules ask for every rack on every refresh, and a
        # scan of the fleet per rack is quadratic (1,000 nodes in 250 racks).
        if self._by_rack is None or self._by_rack[0] is not self.nodes:  # (a model_copy)
            by_rack: dict[str, list[Node]] = {}
            for n in self.nodes.values():
                if n.rack is not None:
                    by_rack.setdefault(n.rack, []).append(n)
            self._by_rack = (self.nodes, by_rack)
        return list(self._by_rack[1].get(rack, ()))

    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    def resolve_path(self, path: str) -> Path:
        """A path from the inventory: ``~`` expanded, relative to the inventory's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir() / p
