"""How each catalogue entry's health answer is judged."""

from __future__ import annotations

import json

import pytest

from plugins.services.catalog import CATALOG
from plugins.services.parse import judge_http


def judge(key: str, body: object, status: int = 200, latency: float = 5.0, slow: float = 1000):
    text = body if isinstance(body, str) else json.dumps(body)
    return judge_http(CATALOG[key], status, text.encode(), latency, slow)


SEED_SERVICES = {
    "triton",
    "vllm",
    "tgi",
    "minio",
    "mlflow",
    "jupyterhub",
    "harbor",
    "prometheus",
    "grafana",
    "qdrant",
    "milvus",
    "elasticsearch",
    "kong",
    "airflow",
    "gitlab",
    "gitea",
    "ray",
    "label-studio",
}


def test_the_catalogue_covers_every_platform_service_of_the_seed():
    assert set(CATALOG) >= SEED_SERVICES
    for entry in CATALOG.values():
        assert entry.path.startswith("/") and 0 < entry.port < 65536


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("triton", "/v2/health/ready"),
        ("vllm", "/health"),
        ("minio", "/minio/health/live"),
        ("jupyterhub", "/hub/health"),
        ("harbor", "/api/v2.0/health"),
        ("grafana", "/api/health"),
        ("elasticsearch", "/_cluster/health"),
        ("airflow", "/health"),
        ("gitea", "/api/healthz"),
        ("ray", "/api/gcs_healthz"),
    ],
)
def test_catalogue_paths_are_the_products_own(key: str, path: str):
    assert CATALOG[key].path == path


def test_status_only_services_are_ok_on_200_and_down_otherwise():
    assert judge("triton", "").state == "ok"
    down = judge("triton", "", status=503)
    assert down.state == "down" and down.detail == "HTTP 503"


def test_a_healthy_answer_over_slow_ms_is_slow():
    health = judge("vllm", "", latency=1500.0, slow=1000)
    assert health.state == "slow" and "1500 ms" in health.detail
    assert judge("vllm", "", latency=1500.0, slow=None).state == "ok"  # type: ignore[arg-type]


def test_elasticsearch_green_yellow_red():
    assert judge("elasticsearch", {"status": "green"}).state == "ok"
    yellow = judge("elasticsearch", {"status": "yellow", "unassigned_shards": 6})
    assert yellow.state == "degraded" and "6 unassigned shards" in yellow.detail
    assert judge("elasticsearch", {"status": "red"}).state == "down"


def test_airflow_is_judged_by_its_body_not_its_status_code():
    healthy = {
        "metadatabase": {"status": "healthy"},
        "scheduler": {"status": "healthy", "latest_scheduler_heartbeat": "x"},
        "triggerer": {"status": None},
    }
    assert judge("airflow", healthy).state == "ok"
    sched = dict(healthy, scheduler={"status": "unhealthy"})
    assert judge("airflow", sched).state == "degraded"
    assert judge("airflow", sched).detail == "scheduler unhealthy"
    db = dict(healthy, metadatabase={"status": "unhealthy"})
    assert judge("airflow", db).state == "down"


def test_harbor_names_the_unhealthy_components():
    comps = [{"name": "core", "status": "healthy"}, {"name": "trivy", "status": "unhealthy"}]
    health = judge("harbor", {"status": "unhealthy", "components": comps})
    assert health.state == "degraded" and health.detail == "unhealthy: trivy"
    core = [{"name": "core", "status": "unhealthy"}]
    assert judge("harbor", {"status": "unhealthy", "components": core}).state == "down"
    assert judge("harbor", {"status": "healthy", "components": comps[:1]}).state == "ok"


def test_gitea_pass_warn_fail():
    checks = {"cache:ping": [{"status": "warn"}], "database:ping": [{"status": "pass"}]}
    assert judge("gitea", {"status": "pass", "checks": {}}).state == "ok"
    warn = judge("gitea", {"status": "warn", "checks": checks})
    assert warn.state == "degraded" and warn.detail == "warn: cache:ping"
    assert judge("gitea", {"status": "fail"}).state == "down"


def test_grafana_kong_label_studio_gitlab_bodies():
    assert judge("grafana", {"database": "ok", "version": "11"}).state == "ok"
    assert judge("grafana", {"database": "failing"}).state == "degraded"
    assert judge("kong", {"database": {"reachable": True}}).state == "ok"
    assert judge("kong", {"database": {"reachable": False}}).state == "degraded"
    assert judge("label-studio", {"status": "UP"}).state == "ok"
    assert judge("gitlab", {"status": "ok", "master_check": [{"status": "ok"}]}).state == "ok"
    failing = {"status": "ok", "redis_check": [{"status": "failed"}]}
    assert judge("gitlab", failing).detail == "failing: redis_check"
    assert judge("gitlab", "GitLab OK").state == "ok"


def test_text_answers_must_say_the_word():
    assert judge("prometheus", "Prometheus Server is Ready.\n").state == "ok"
    assert judge("ray", "success").state == "ok"
    assert judge("mlflow", "<html>proxy error</html>").state == "degraded"


def test_unreadable_json_body_is_degraded_never_an_exception():
    for key in ("harbor", "elasticsearch", "airflow", "gitea", "grafana", "kong"):
        for body in ("", "{", "[1, 2]", "null", '"str"', "\xff"):
            assert judge(key, body).state == "degraded", (key, body)


def test_a_check_without_catalogue_entry_judges_the_status_alone():
    assert judge_http(None, 204, b"", 3.0, 1000, expect_status=[204]).state == "ok"
    assert judge_http(None, 200, b"", 3.0, 1000, expect_status=[204]).state == "down"
