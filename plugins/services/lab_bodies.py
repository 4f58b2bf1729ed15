"""What each product's health endpoint answers in the lab, healthy and degraded.

The bodies follow the products' documented formats (see ``catalog.py`` for the
sources), so the collector's judgement is exercised on realistic answers.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from plugins.services.catalog import CatalogEntry


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def body_for(entry: CatalogEntry | None, path: str, degraded: bool) -> web.Response:
    """What the product answers on its health path (degraded: its not-quite-healthy answer)."""
    key = entry.key if entry else None
    if key == "elasticsearch":
        doc = {
            "cluster_name": "dcc-search",
            "status": "yellow" if degraded else "green",
            "timed_out": False,
            "number_of_nodes": 3,
            "number_of_data_nodes": 3,
            "active_primary_shards": 42,
            "active_shards": 84 - (6 if degraded else 0),
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": 6 if degraded else 0,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 93.3 if degraded else 100.0,
        }
        return _json(doc)
    if key == "harbor":
        names = [
            "core",
            "database",
            "jobservice",
            "portal",
            "redis",
            "registry",
            "registryctl",
            "trivy",
        ]
        comps: list[dict[str, str]] = [{"name": n, "status": "healthy"} for n in names]
        if degraded:
            comps[-1] = {"name": "trivy", "status": "unhealthy", "error": "trivy: timeout"}
        return _json({"status": "unhealthy" if degraded else "healthy", "components": comps})
    if key == "grafana":
        return _json({"commit": "b6b3b3e3", "database": "ok", "version": "11.2.0"})
    if key == "kong":
        return _json(
            {
                "database": {"reachable": not degraded},
                "memory": {
                    "workers_lua_vms": [{"http_allocated_gc": "42.1 MiB", "pid": 18477}],
                    "lua_shared_dicts": {},
                },
                "server": {
                    "total_requests": 3421,
                    "connections_active": 8,
                    "connections_accepted": 1203,
                    "connections_handled": 1203,
                    "connections_reading": 0,
                    "connections_writing": 1,
                    "connections_waiting": 7,
                },
            }
        )
    if key == "airflow":
        beat = time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())
        return _json(
            {
                "metadatabase": {"status": "healthy"},
                "scheduler": {
                    "status": "unhealthy" if degraded else "healthy",
                    "latest_scheduler_heartbeat": beat,
                },
                "triggerer": {"status": None, "latest_triggerer_heartbeat": None},
                "dag_processor": {"status": None, "latest_dag_processor_heartbeat": None},
            }
        )
    if key == "gitlab":
        if path.endswith("/-/health"):
            return web.Response(text="GitLab OK")
        checks = {"status": "ok", "master_check": [{"status": "ok"}]}
        if degraded:
            checks["redis_check"] = [{"status": "failed", "message": "timeout"}]
        return _json(checks)
    if key == "gitea":
        status = "warn" if degraded else "pass"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return web.Response(
            text=json.dumps(
                {
                    "status": status,
                    "description": "Gitea: Git with a cup of tea",
                    "checks": {
                        "cache:ping": [{"status": status, "time": stamp}],
                        "database:ping": [{"status": "pass", "time": stamp}],
                    },
                }
            ),
            content_type="application/health+json",
        )
    if key == "label-studio":
        return _json({"status": "UP"})
    if key == "prometheus":
        word = "Healthy" if path.endswith("healthy") else "Ready"
        return web.Response(text=f"Prometheus Server is {word}.\n")
    if key == "qdrant":
        words = {"/readyz": "all shards are ready", "/livez": "healthz check passed"}
        return web.Response(text=words.get(path, "healthz check passed"))
    if key in ("mlflow", "milvus"):
        return web.Response(text="OK")
    if key == "ray":
        return web.Response(text="success")
    if key == "minio-cluster" or (key == "minio" and path.endswith("/cluster")):
        # No write quorum is MinIO's degraded state: 503 on the cluster endpoint.
        return web.Response(status=503 if degraded else 200)
    if degraded and key in ("triton", "vllm", "tgi", "jupyterhub", "minio"):
        return web.Response(status=503)  # these only say it through the status
    return web.Response(status=200)
