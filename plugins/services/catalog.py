"""Built-in health endpoints of the platform services the seed names.

Each entry says where a service answers its health check (default port and
path) and how to read the body (``judge``; the judging itself is in
``parse.judge_http``). A check in the inventory names an entry with
``service: minio`` and may override any part.

Sources (the endpoint and the body format, checked against the projects' docs):

- Triton: KServe v2 protocol, ``GET /v2/health/ready`` -> 200 and an empty body
  (triton-inference-server/server docs/protocol, ``health`` section).
- vLLM: OpenAI-compatible server, ``GET /health`` -> 200 empty (vllm docs, serving).
- TGI: text-generation-inference router, ``GET /health`` -> 200 empty
  (huggingface/text-generation-inference openapi ``/health``).
- MinIO: ``/minio/health/live`` (liveness) and ``/minio/health/cluster`` (write
  quorum; 503 without quorum) (min.io docs, "Healthcheck API").
- MLflow: tracking server ``GET /health`` -> ``OK`` (mlflow/server/handlers).
- JupyterHub: ``GET /hub/health`` -> 200 (jupyterhub REST API docs).
- Harbor: ``GET /api/v2.0/health`` -> ``{"status": "healthy", "components":
  [{"name": "core", "status": "healthy"}, ...]}`` (goharbor swagger OverallHealthStatus).
- Prometheus: ``/-/healthy`` and ``/-/ready`` -> 200 with a short text
  (prometheus docs, management API).
- Grafana: ``GET /api/health`` -> ``{"commit": ..., "database": "ok", "version": ...}``
  (grafana docs, HTTP API "Health").
- Qdrant: ``/healthz``, ``/livez``, ``/readyz`` -> 200 text (qdrant docs, monitoring).
- Milvus: ``GET :9091/healthz`` -> ``OK`` (milvus docs, "Configure health check").
- Elasticsearch: ``GET /_cluster/health`` -> JSON with ``status`` green/yellow/red
  (elastic docs, cluster health API).
- Kong: admin API ``GET /status`` on port 8001 -> ``{"database": {"reachable": true},
  "server": {...}}`` (Kong admin API docs).
- Airflow: ``GET /health`` -> ``{"metadatabase": {"status": "healthy"}, "scheduler":
  {"status": "healthy", "latest_scheduler_heartbeat": ...}}``; the HTTP status is
  always 200, only the body tells (airflow docs, "Checking Airflow Health Status").
- GitLab: ``/-/readiness`` -> ``{"status": "ok"|"failed", "master_check": [{"status":
  "ok"}]}`` and ``/-/health`` -> ``GitLab OK`` (docs.gitlab.com, monitoring/health_check).
- Gitea: ``GET /api/healthz`` -> ``{"status": "pass"|"warn"|"fail", "checks":
  {"cache:ping": [...], "database:ping": [...]}}`` (go-gitea/gitea
  routers/web/healthcheck/check.go, after draft-inadarei-api-health-check).
- Ray: dashboard ``GET :8265/api/gcs_healthz`` -> 200 ``success`` (ray dashboard
  health check module).
- Label Studio: ``GET /health`` -> ``{"status": "UP"}`` (label-studio core views).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

JudgeKind = Literal[
    "status",  # the HTTP status alone decides
    "text",  # the status, and the body must contain ``expect_text``
    "harbor",
    "grafana",
    "elasticsearch",
    "kong",
    "airflow",
    "gitlab",
    "gitea",
    "label_studio",
]


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """Where a kind of service answers its health check and how to read the answer."""

    key: str
    """What a check writes as ``service:``."""
    label: str
    """The product's name, as operators say it."""
    port: int
    """The port it listens on by default."""
    path: str
    """The health path (with a leading slash)."""
    judge: JudgeKind = "status"
    expect_text: str | None = None
    """For ``judge="text"``: a word the body must contain when healthy."""
    unit: str | None = None
    """The systemd unit it usually runs as, for the lab and for documentation."""
    extra_paths: tuple[str, ...] = ()
    """Other health paths it serves (a readiness beside a liveness), for the lab."""


_ENTRIES = (
    CatalogEntry(
        "triton",
        "NVIDIA Triton",
        8000,
        "/v2/health/ready",
        unit="tritonserver.service",
        extra_paths=("/v2/health/live",),
    ),
    CatalogEntry("vllm", "vLLM", 8000, "/health", unit="vllm.service"),
    CatalogEntry("tgi", "Text Generation Inference", 8080, "/health", unit="tgi.service"),
    CatalogEntry(
        "minio",
        "MinIO",
        9000,
        "/minio/health/live",
        unit="minio.service",
        extra_paths=("/minio/health/cluster", "/minio/health/ready"),
    ),
    CatalogEntry(
        "minio-cluster", "MinIO cluster quorum", 9000, "/minio/health/cluster", unit="minio.service"
    ),
    CatalogEntry(
        "mlflow", "MLflow", 5000, "/health", "text", expect_text="OK", unit="mlflow.service"
    ),
    CatalogEntry("jupyterhub", "JupyterHub", 8000, "/hub/health", unit="jupyterhub.service"),
    CatalogEntry("harbor", "Harbor", 443, "/api/v2.0/health", "harbor", unit="harbor.service"),
    CatalogEntry(
        "prometheus",
        "Prometheus",
        9090,
        "/-/ready",
        "text",
        expect_text="Ready",
        unit="prometheus.service",
        extra_paths=("/-/healthy",),
    ),
    CatalogEntry(
        "grafana", "Grafana", 3000, "/api/health", "grafana", unit="grafana-server.service"
    ),
    CatalogEntry(
        "qdrant",
        "Qdrant",
        6333,
        "/readyz",
        unit="qdrant.service",
        extra_paths=("/healthz", "/livez"),
    ),
    CatalogEntry(
        "milvus", "Milvus", 9091, "/healthz", "text", expect_text="OK", unit="milvus.service"
    ),
    CatalogEntry(
        "elasticsearch",
        "Elasticsearch",
        9200,
        "/_cluster/health",
        "elasticsearch",
        unit="elasticsearch.service",
    ),
    CatalogEntry("kong", "Kong gateway", 8001, "/status", "kong", unit="kong.service"),
    CatalogEntry(
        "airflow", "Apache Airflow", 8080, "/health", "airflow", unit="airflow-webserver.service"
    ),
    CatalogEntry(
        "gitlab",
        "GitLab",
        80,
        "/-/readiness",
        "gitlab",
        unit="gitlab-runsvdir.service",
        extra_paths=("/-/health", "/-/liveness"),
    ),
    CatalogEntry("gitea", "Gitea", 3000, "/api/healthz", "gitea", unit="gitea.service"),
    CatalogEntry(
        "ray",
        "Ray dashboard",
        8265,
        "/api/gcs_healthz",
        "text",
        expect_text="success",
        unit="ray-head.service",
    ),
    CatalogEntry(
        "label-studio", "Label Studio", 8080, "/health", "label_studio", unit="label-studio.service"
    ),
)

CATALOG: dict[str, CatalogEntry] = {e.key: e for e in _ENTRIES}
"""Every built-in entry by key."""


def lookup(key: str | None) -> CatalogEntry | None:
    """The entry for ``key``, or None for a check that names no catalogue service."""
    return None if key is None else CATALOG.get(key)


def known_keys() -> str:
    """The catalogue's keys, for error messages."""
    return ", ".join(sorted(CATALOG))
