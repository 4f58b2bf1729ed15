"""The exposition format (exporters' text) and the query API's JSON, on the real samples."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.plugin import ParseError
from console.sources.exposition import format_family, parse_exposition
from console.transports.prometheus import (
    PromError,
    parse_envelope,
    parse_instant,
    parse_range,
)

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples"


def sample(rel: str) -> str:
    return (SAMPLES / rel).read_text(encoding="utf-8")


# --------------------------------------------------------------------------- exposition


def test_dcgm_readme_scrape_reads_with_its_labels_and_blank_sentinel():
    expo = parse_exposition(sample("dcgm/dcgm-exporter-readme-metrics.txt"), strict=False)
    assert expo.names() == [
        "DCGM_FI_DEV_MEMORY_TEMP",
        "DCGM_FI_DEV_MEM_CLOCK",
        "DCGM_FI_DEV_SM_CLOCK",
    ]
    (sm,) = expo.family("DCGM_FI_DEV_SM_CLOCK")
    assert sm.labels == {"gpu": "0", "UUID": "GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52"}
    assert sm.value == 139
    (mem_temp,) = expo.family("DCGM_FI_DEV_MEMORY_TEMP")
    assert mem_temp.value == float(9223372036854775794)  # DCGM "not supported" sentinel
    assert expo.types["DCGM_FI_DEV_SM_CLOCK"] == "gauge"


def test_dcgm_kubernetes_scrape_keeps_the_pod_labels_even_when_empty():
    expo = parse_exposition(sample("dcgm/dcgm-exporter-readme-metrics-k8s.txt"), strict=False)
    (sm,) = expo.family("DCGM_FI_DEV_SM_CLOCK")
    assert sm.labels["pod"] == "" and sm.labels["namespace"] == ""


def test_the_elided_documentation_lines_are_refused_when_strict():
    with pytest.raises(ParseError, match="line 7"):
        parse_exposition(sample("dcgm/dcgm-exporter-readme-metrics.txt"))


def test_ipmi_exporter_documentation_reads_every_sample_nan_included():
    expo = parse_exposition(sample("prometheus/ipmi-exporter-docs-metrics.txt"))
    assert len(expo.samples) == 32
    (value,) = expo.family("ipmi_sensor_value")
    assert math.isnan(value.value)
    assert value.labels == {"id": "139", "name": "Power Cable", "type": "Cable/Interconnect"}
    (power,) = expo.family("ipmi_power_watts")
    assert power.value == 70


def test_node_exporter_infiniband_families_read_with_exponents():
    expo = parse_exposition(sample("prometheus/node-exporter-infiniband-metrics.txt"))
    rates = {
        (s.labels["device"], s.labels["port"]): s.value
        for s in expo.family("node_infiniband_rate_bytes_per_second")
    }
    assert rates == {("i40iw0", "1"): 1.25e9, ("mlx4_0", "1"): 5e9, ("mlx4_0", "2"): 5e9}
    assert expo.types["node_infiniband_port_data_received_bytes_total"] == "counter"
    assert len(expo.helps) == len(expo.types)


LABEL_VALUE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20
)  # quotes, backslashes and newlines included
NAME = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,15}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(
    name=NAME,
    rows=st.lists(
        st.tuples(
            st.dictionaries(NAME.filter(lambda n: not n.startswith("__")), LABEL_VALUE, max_size=4),
            st.one_of(
                st.integers(min_value=-(2**53), max_value=2**53),
                st.floats(allow_nan=True, allow_infinity=True),
            ),
        ),
        max_size=5,
    ),
)
def test_what_the_lab_writes_parses_back_to_the_same_samples(name, rows):
    text = format_family(name, "gauge", "help text", rows)
    back = parse_exposition(text)
    assert len(back.samples) == len(rows)
    for (labels, value), got in zip(rows, back.samples, strict=True):
        assert got.name == name and dict(got.labels) == labels
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(got.value)
        else:
            assert got.value == float(value)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_either_parses_or_raises_parse_error(text):
    with contextlib.suppress(ParseError):
        parse_exposition(text)
    parse_exposition(text, strict=False)  # lenient: never raises


# --------------------------------------------------------------------------- query JSON


def test_the_documented_instant_vector_answer():
    data, warnings = parse_envelope(
        sample("prometheus/prometheus-docs-query-vector.json").encode(), 200, "p"
    )
    rtype, samples = parse_instant(data)
    assert rtype == "vector" and warnings == ()
    assert [(s.labels["job"], s.ts, s.value) for s in samples] == [
        ("prometheus", 1435781451.781, 1.0),
        ("node", 1435781451.781, 0.0),
    ]


def test_the_documented_range_matrix_answer():
    data, _ = parse_envelope(
        sample("prometheus/prometheus-docs-query-range-matrix.json").encode(), 200, "p"
    )
    series = parse_range(data)
    assert [s.labels["instance"] for s in series] == ["localhost:9090", "localhost:9091"]
    assert series[1].points == ((1435781430.781, 0.0), (1435781445.781, 0.0), (1435781460.781, 1.0))


def test_a_real_one_hour_matrix_from_slurm_web():
    data, _ = parse_envelope(
        sample("prometheus/slurmweb-query-range-matrix-gpus.json").encode(), 200, "p"
    )
    series = parse_range(data)
    assert {s.labels["state"] for s in series} >= {"allocated"}
    for s in series:
        steps = {round(b[0] - a[0]) for a, b in zip(s.points, s.points[1:], strict=False)}
        assert steps <= {30}


def test_an_error_answer_keeps_its_type_and_words():
    body = b'{"status":"error","errorType":"bad_data","error":"1:5: parse error: unclosed"}'
    with pytest.raises(PromError) as err:
        parse_envelope(body, 400, "prometheus p:9090")
    assert err.value.error_type == "bad_data" and err.value.status == 400
    assert str(err.value) == "prometheus p:9090: bad_data: 1:5: parse error: unclosed"


def test_warnings_are_kept_and_nan_is_unknown_not_zero():
    body = json.dumps(
        {
            "status": "success",
            "warnings": ["partial response: store down"],
            "data": {
                "resultType": "vector",
                "result": [{"metric": {"a": "b"}, "value": [1.5, "NaN"]}],
            },
        }
    ).encode()
    data, warnings = parse_envelope(body, 200, "p")
    assert warnings == ("partial response: store down",)
    (s,) = parse_instant(data)[1]
    assert s.value is None


def test_an_odd_server_s_non_text_label_values_become_text():
    body = json.dumps(
        {
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [
                    {"metric": {"gpu": 3, "Hostname": "gpu001"}, "value": [1.5, "42"]},
                    {"metric": {"gpu": "4", "Hostname": "gpu001"}, "value": [1.5, "43"]},
                ],
            },
        }
    ).encode()
    data, _ = parse_envelope(body, 200, "p")
    odd, plain = parse_instant(data)[1]
    assert odd.labels == {"gpu": "3", "Hostname": "gpu001"}
    assert plain.labels == {"gpu": "4", "Hostname": "gpu001"}


def test_a_proxy_page_is_not_an_api_answer():
    with pytest.raises(PromError, match=r"not a Prometheus API answer \(HTTP 502: <html>"):
        parse_envelope(b"<html>Bad Gateway</html>", 502, "p")


JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=5) | st.integers(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(doc=JSON, status=st.sampled_from([200, 400, 422, 503]))
def test_any_json_answer_either_parses_or_raises_prom_error(doc, status):
    body = json.dumps({"status": "success", "data": doc} if status == 200 else doc).encode()
    try:
        data, _ = parse_envelope(body, status, "p")
        parse_instant(data)
    except PromError:
        pass
