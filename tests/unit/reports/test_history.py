"""Trends over runs: the history loader (folder and S3 runs/ layout), the inline SVG, the summary line."""

from __future__ import annotations

import io
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from audit_bedrock.errors import UsageError
from audit_bedrock.model import Coverage
from audit_bedrock.reports.history import RunPoint, load_history, point_from_document, point_from_result, series
from audit_bedrock.reports.html import render_text
from audit_bedrock.reports.json_report import to_document
from audit_bedrock.reports.summary import render_summary
from audit_bedrock.reports.trend import coverage_chart, severity_chart
from tests.support.report_samples import HOSTILE, context, parse_html, sample_result


def run_doc(day: int, extra_high: int = 0, off: int = 0) -> dict[str, Any]:
    """A previous run's findings.json: the sample result on another day, with more highs or fewer cells logging."""
    result = sample_result()
    stamp = f"2026-01-{day:02d}T06:00:00Z"
    high = next(f for f in result.findings if f.severity == "high")
    more = tuple(replace(high, id=f"{day:02d}{i:030d}") for i in range(extra_high))
    cov = list(result.coverage)
    on = [i for i, c in enumerate(cov) if c.logging_enabled]
    for i in on[:off]:
        cov[i] = replace(cov[i], logging_enabled=False)
    result = replace(result, meta=replace(result.meta, started_at=stamp, finished_at=stamp),
                     findings=result.findings + more, coverage=tuple(cov))
    return to_document(result, "9.9.9")


def write(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)


def test_point_counts_open_findings_and_logging_cells() -> None:
    result = sample_result()
    p = point_from_result(result)
    assert p.total == len(result.open_findings())
    scanned = [c for c in result.coverage if c.status == "scanned"]
    assert p.cells == len(scanned) and p.logging_on == sum(1 for c in scanned if c.logging_enabled)
    assert point_from_document(to_document(result, "1"), "x") == replace(p, source="x")


@pytest.mark.parametrize(("delivering", "bil022", "lost"), [
    pytest.param(None, False, 0, id="no-evidence-no-finding"),
    pytest.param(None, True, 1, id="older-file-bil022-open"),
    pytest.param(False, False, 1, id="coverage-says-not-delivering"),
    pytest.param(False, True, 1, id="both"),
    pytest.param(True, False, 0, id="coverage-says-delivering"),
    pytest.param(False, "suppressed", 1, id="suppressed-bil022-still-not-delivering"),
])
def test_delivering_share(delivering: bool | None, bil022: bool | str, lost: int) -> None:
    """A cell with logging on delivers unless its coverage (BIL-022's evidence) or an open BIL-022 says it does not,
    from the run itself and from its findings.json alike."""
    result = sample_result()
    i, cell = next((i, c) for i, c in enumerate(result.coverage) if c.logging_enabled)
    cov = list(result.coverage)
    cov[i] = replace(cell, delivering=delivering, last_delivery=None)
    findings = result.findings
    if bil022:
        findings += (replace(result.findings[0], rule_id="BIL-022", account_id=cell.account_id, region=cell.region,
                             id="d" * 32, status="suppressed" if bil022 == "suppressed" else "open"),)
    result = replace(result, findings=findings, coverage=tuple(cov))
    p = point_from_result(result)
    assert p.delivering == p.logging_on - lost
    assert point_from_document(to_document(result, "1"), "x") == replace(p, source="x")


def test_local_folder_reads_runs_and_skips_latest_shards_and_junk(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path / "runs/a/report/findings.json", run_doc(3, extra_high=4))
    write(tmp_path / "runs/b/report/findings.json", run_doc(10, extra_high=2))
    write(tmp_path / "latest/findings.json", run_doc(10, extra_high=2))  # a copy of the last run
    write(tmp_path / "runs/b/shards/0001-of-0002/findings.json", run_doc(10))  # partial
    write(tmp_path / "runs/c/report/findings.json", "{not json")
    write(tmp_path / "runs/d/report/findings.json", {"schema_version": 2})
    points = load_history(str(tmp_path))
    assert [p.label for p in points] == ["2026-01-03", "2026-01-10"]
    assert points[0].count("high") == points[1].count("high") + 2
    assert "skipping" in caplog.text


def test_limit_keeps_the_most_recent(tmp_path: Path) -> None:
    for day in range(1, 6):
        path = tmp_path / f"r{day}/findings.json"
        write(path, run_doc(day))
        os.utime(path, (day * 1000, day * 1000))
    assert [p.label[-2:] for p in load_history(str(tmp_path), limit=2)] == ["04", "05"]


def test_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a folder"):
        load_history(str(tmp_path / "nope"))


@mock_aws
def test_s3_prefix_with_the_scheduled_layout() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="reports")
    for key, doc in (("runs/r1/report/findings.json", run_doc(3, extra_high=1)),
                     ("runs/r2/report/findings.json", run_doc(10)),
                     ("runs/r2/shards/0001-of-0001/findings.json", run_doc(10)),
                     ("latest/findings.json", run_doc(10)),
                     ("runs/r2/report/report.html", "<html>")):
        s3.upload_fileobj(io.BytesIO(json.dumps(doc).encode() if isinstance(doc, dict) else doc.encode()),
                          "reports", key)
    points = load_history("s3://reports/", lambda: s3)
    assert [p.source for p in points] == ["s3://reports/runs/r1/report/findings.json",
                                          "s3://reports/runs/r2/report/findings.json"]
    assert [p.label for p in load_history("s3://reports/runs", lambda: s3)] == ["2026-01-03", "2026-01-10"]


@mock_aws
def test_s3_unlistable_bucket_is_a_usage_error() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    with pytest.raises(UsageError, match="cannot list"):
        load_history("s3://no-such-bucket/runs/", lambda: s3)


def test_series_drops_a_copy_of_this_run() -> None:
    now = point_from_result(sample_result())
    old = RunPoint("2025-12-01T00:00:00Z", "2025-12-01T00:01:00Z", (("high", 1),), 1, 1, 1)
    assert series([old, replace(now, source="copy")], now) == [old, now]


# --- the SVG and the HTML section ---------------------------------------------------------------------------

def points() -> list[RunPoint]:
    return [p for p in (point_from_document(run_doc(3, extra_high=6, off=2), "a"),
                        point_from_document(run_doc(10, extra_high=3, off=1), "b")) if p is not None]


def test_severity_bars_are_stacked_per_run() -> None:
    svg = parse_html(str(severity_chart([*points(), point_from_result(sample_result())])))
    bars = svg.find_all("rect", cls="bar")
    per_run: dict[str, int] = {}
    for b in bars:
        per_run[b.attrs["data-run"]] = per_run.get(b.attrs["data-run"], 0) + int(b.text().split(": ")[1].split()[0])
    assert per_run["0"] == per_run["2"] + 6 and per_run["1"] == per_run["2"] + 3
    assert {b.attrs["data-severity"] for b in bars} >= {"high", "medium", "low"}


def test_coverage_line_and_optional_delivery_line() -> None:
    pts = [*points(), point_from_result(sample_result())]
    one = parse_html(str(coverage_chart(pts, delivery=False)))
    assert len(one.find_all("polyline")) == 1 and len(one.find_all("circle")) == 3
    two = parse_html(str(coverage_chart(pts, delivery=True)))
    assert len(two.find_all("polyline")) == 2


def test_html_trend_section_is_inline_and_escaped() -> None:
    hostile = replace(points()[0], finished_at=HOSTILE)
    ctx = replace(context(), history=(hostile, points()[1]))
    page = render_text(sample_result(), ctx)
    tree = parse_html(page)
    section = tree.by_id("trend")
    assert len(section.find_all("svg")) == 2
    assert len(tree.by_id("trend-table").find_all("tr")) == 1 + 3
    assert "<img src=x" not in page and "onerror=" not in page.replace("onerror=&#34;", "")
    assert "<script src" not in page and "@import" not in page and "url(" not in page.split("<style>")[1].split(
        "</style>")[0]


def test_html_without_history_has_no_trend() -> None:
    assert 'id="trend"' not in render_text(sample_result(), context())


# --- terminal summary ---------------------------------------------------------------------------------------

def test_summary_shows_the_change_since_the_last_run() -> None:
    out = io.StringIO()
    render_summary(sample_result(), [], out=out, colour=False, previous=points()[1])
    line = next(x for x in out.getvalue().splitlines() if x.startswith("since last run"))
    assert "(2026-01-10): -3 open" in line and "high -3" in line and "logging on" in line


def test_summary_without_history_says_nothing_about_it() -> None:
    out = io.StringIO()
    render_summary(sample_result(), [], out=out, colour=False)
    assert "since last run" not in out.getvalue()


def test_coverage_fixture_shape() -> None:  # the sample has logging on somewhere, so the chart has a line
    assert any(isinstance(c, Coverage) and c.logging_enabled for c in sample_result().coverage)
