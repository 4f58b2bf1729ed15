"""The pieces of a measured RPO: S3 signatures (AWS's own example), marker names and
survivors, and the drill history other flows read."""

from __future__ import annotations

import time
from pathlib import Path

from console.wizards.drill_report import DrillReport, DrillStore, Measure, drill_history
from console.wizards.drill_rpo import marker_name, marker_time, survivors
from plugins.services.s3 import EMPTY_SHA256, canonical_request, parse_list, sign, signature, verify

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_the_signature_matches_aws_s3_documented_example_for_a_bucket_listing() -> None:
    # "GET Bucket (List Objects)" in the S3 SigV4 header-signing documentation.
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "x-amz-content-sha256": EMPTY_SHA256,
        "x-amz-date": "20130524T000000Z",
    }
    canonical = canonical_request(
        "GET", "/", [("max-keys", "2"), ("prefix", "J")], headers, sorted(headers), EMPTY_SHA256
    )
    sig = signature(AWS_SECRET, "20130524", "us-east-1", "20130524T000000Z", canonical)
    assert sig == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"


def test_a_signed_request_verifies_and_a_tampered_one_does_not() -> None:
    url = "http://127.0.0.1:9000/minio/dcc-drills/dcc-drill/x/000001-1"
    now = time.time()
    headers = {
        k.lower(): v
        for k, v in sign("PUT", url, [], b"data", "ak", "s3cret", "us-east-1", now).items()
    }
    path = "/minio/dcc-drills/dcc-drill/x/000001-1"
    secrets = {"ak": "s3cret"}.get
    assert verify("PUT", path, [], headers, b"data", secrets, now) is None
    assert verify("PUT", path, [], headers, b"other", secrets, now) == "XAmzContentSHA256Mismatch"
    assert verify("PUT", path + "2", [], headers, b"data", secrets, now) == "SignatureDoesNotMatch"
    assert (
        verify("PUT", path, [], headers, b"data", {"ak": "x"}.get, now) == "SignatureDoesNotMatch"
    )
    assert verify("PUT", path, [], headers, b"data", lambda _: None, now) == "InvalidAccessKeyId"
    assert verify("PUT", path, [], headers, b"data", secrets, now + 3600) == "RequestTimeTooSkewed"


def test_markers_carry_their_time_and_the_newest_survivor_before_the_fault_wins() -> None:
    t0 = 1_800_000_000.0
    names = [marker_name("dcc-drill/d/", i, t0 + i * 0.5) for i in range(1, 9)]
    assert marker_time(names[0]) == t0 + 0.5
    assert marker_time("dcc-drill/d/readme") is None
    # Written at +0.5 ... +4.0; the fault at +3.2; the survivor lost the two before it,
    # and has two written after the fault (to itself, after the failover): not counted.
    kept = names[:4] + names[6:]
    found = survivors(kept, t0 + 3.2)
    assert [t - t0 for t, _ in found] == [2.0, 1.5, 1.0, 0.5]


def test_a_listing_is_read_with_its_keys_and_continuation() -> None:
    body = (
        b'<?xml version="1.0"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<IsTruncated>true</IsTruncated><Contents><Key>a&amp;b</Key></Contents>"
        b"<Contents><Key>c</Key></Contents><NextContinuationToken>t1</NextContinuationToken>"
        b"</ListBucketResult>"
    )
    assert parse_list(body) == (["a&b", "c"], "t1")


def test_the_drill_history_lists_summaries_newest_first_and_nothing_without_a_database(
    tmp_path: Path,
) -> None:
    db = tmp_path / "drills.db"
    assert drill_history(db) == [] and not db.exists()
    store = DrillStore(db)
    for i, result in enumerate(("passed", "aborted")):
        store.save(
            DrillReport(
                id=f"d{i}",
                scenario="minio-node",
                title="Lose a MinIO node",
                scope="s",
                operator="alice",
                started=f"2026-12-0{i + 1}T10:00:00+00:00",
                ended=f"2026-12-0{i + 1}T10:01:00+00:00",
                result=result,  # type: ignore[arg-type]
                rto=Measure(name="RTO", target_s=30, measured_s=6.5),
                rpo=Measure(name="RPO", target_s=5, measured_s=2.1),
            )
        )
    left = DrillReport(
        id="d2",
        scenario="minio-node",
        title="Lose a MinIO node",
        scope="s",
        operator="bob",
        started="2026-12-03T10:00:00+00:00",  # its console died mid-drill: never ended
        result="passed",
        rto=Measure(name="RTO", target_s=30, measured_s=None),
        rpo=Measure(name="RPO", target_s=5, measured_s=None),
    )
    store.save(left)
    unfinished, newest, oldest = drill_history(db)
    assert (unfinished.result, unfinished.passed, unfinished.finished) == ("unfinished", False, "")
    assert (newest.id, newest.passed, newest.result) == ("d1", False, "aborted")
    assert (oldest.id, oldest.passed, oldest.rpo_measured_s, oldest.rto_target_s) == (
        "d0",
        True,
        2.1,
        30,
    )
