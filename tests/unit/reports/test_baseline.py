"""--baseline and --fail-on-new: new/unchanged marks, the fixed list, exit codes, and what the reports show."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from audit_bedrock.api import OutputOptions, RunOptions, Settings, exit_code, write_reports
from audit_bedrock.cli import EXIT_FINDINGS, EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE, main
from audit_bedrock.config import Config
from audit_bedrock.engine import load_rules
from audit_bedrock.findings import apply_baseline
from audit_bedrock.model import Finding, ScanResult
from audit_bedrock.reports.json_report import to_document
from tests.conftest import load_json, run_cli, validate_facts, validate_findings
from tests.support import shared_demo_estate
from tests.support.report_samples import PROD, finding, parse_html, sample_result


def complete_result() -> ScanResult:
    r = sample_result()
    return replace(r, meta=replace(r.meta, incomplete=False))


def _by_rule(result: ScanResult, rule_id: str) -> Finding:
    return next(f for f in result.findings if f.rule_id == rule_id)


@pytest.mark.parametrize(("before", "now", "marks", "fixed"), [
    pytest.param(["a", "b"], ["a", "b"], {"a": "unchanged", "b": "unchanged"}, [], id="nothing-changed"),
    pytest.param(["a"], ["a", "b"], {"a": "unchanged", "b": "new"}, [], id="one-new"),
    pytest.param(["a", "b"], ["a"], {"a": "unchanged"}, ["b"], id="one-fixed"),
    pytest.param([], ["a"], {"a": "new"}, [], id="empty-baseline"),
    pytest.param(["a", "b!"], ["a"], {"a": "unchanged"}, [], id="suppressed-gone-is-not-fixed"),
])
def test_apply_baseline(before: list[str], now: list[str], marks: dict[str, str], fixed: list[str]) -> None:
    def mk(name: str) -> Finding:
        f = finding("BIL-001", "high", PROD, "p", "us-east-1", f"arn:aws:bedrock:us-east-1:{PROD}:{name.rstrip('!')}")
        return replace(f, status="suppressed") if name.endswith("!") else f

    marked, gone, _ = apply_baseline([mk(n) for n in now], [mk(n) for n in before])
    assert {f.resource.rsplit(":", 1)[1]: f.baseline for f in marked} == marks
    assert [f.resource.rsplit(":", 1)[1] for f in gone] == fixed


def finish(out: Path, base: Path, fail_on_new: bool, cfg: Config, result: ScanResult, formats: tuple[str, ...]
           ) -> int:
    """Write the reports of `result` against the baseline file `base`, as a run does; the exit code."""
    from audit_bedrock.findings import load_baseline

    options = RunOptions(output=OutputOptions(formats=formats, output_dir=str(out), baseline=str(base),
                                              fail_on_new=fail_on_new))
    settings = Settings(cfg, tuple(load_rules([])))
    report = write_reports(result, settings, options, load_baseline(str(base)))
    return exit_code(report.result, settings, new_only=fail_on_new)


def _write_baseline(path: Path, result: ScanResult, drop: tuple[str, ...] = ()) -> Path:
    doc = to_document(replace(result, findings=tuple(f for f in result.findings if f.rule_id not in drop)), "0")
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(("dropped", "fail_on", "fail_on_new", "code", "new"), [
    pytest.param((), "high", True, EXIT_OK, 0, id="nothing-new"),
    pytest.param((), "high", False, EXIT_FINDINGS, 0, id="old-high-still-fails-without-flag"),
    pytest.param(("BIL-012",), "high", True, EXIT_FINDINGS, 1, id="new-high-fails"),
    pytest.param(("BIL-010",), "high", True, EXIT_OK, 1, id="new-low-below-threshold"),
    pytest.param(("BIL-010",), "low", True, EXIT_FINDINGS, 1, id="new-low-at-threshold"),
    pytest.param(("SCAN-001",), "high", True, EXIT_OK, 1, id="new-coverage-finding-does-not-fail"),
])
def test_fail_on_new_exit_codes_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            dropped: tuple[str, ...], fail_on: str, fail_on_new: bool,
                                            code: int, new: int) -> None:
    result = complete_result()
    base = _write_baseline(tmp_path / "base.json", result, dropped)
    out = tmp_path / "out"
    rc = finish(out, base, fail_on_new, Config(fail_on=fail_on), result, ("json", "html", "sarif"))
    assert rc == code
    stdout = capsys.readouterr().out
    assert f"vs baseline    {new} new, " in stdout
    doc = load_json(out / "findings.json")
    validate_findings(doc)
    assert sorted(f["rule_id"] for f in doc["findings"] if f["baseline"] == "new") == sorted(dropped)
    page = parse_html((out / "report.html").read_text())
    badges = {li.attrs["data-rule"]: li.find("span", cls="badge").text() for li in page.find_all("li", cls="finding")}
    assert sorted(r for r, b in badges.items() if b == "new") == sorted(set(dropped) & set(badges))
    assert str(base) in page.by_id("meta-baseline").text()
    sarif = load_json(out / "findings.sarif")
    assert sorted(r["ruleId"] for r in sarif["runs"][0]["results"] if r["properties"]["baseline"] == "new") \
        == sorted(dropped)


def test_fixed_findings_reach_json_html_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = complete_result()
    gone = _by_rule(before, "BIL-004")
    now = replace(before, findings=tuple(f for f in before.findings if f.id != gone.id))
    base = _write_baseline(tmp_path / "base.json", before)
    out = tmp_path / "out"
    assert finish(out, base, True, Config(), now, ("json", "html")) == EXIT_OK
    assert [f["id"] for f in load_json(out / "findings.json")["fixed"]] == [gone.id]
    rows = parse_html((out / "report.html").read_text()).by_id("fixed").find_all("tr", cls="fixed-finding")
    assert [r.find("code").text() for r in rows] == [gone.resource]
    assert "  fixed high     BIL-004" in capsys.readouterr().out


@pytest.mark.parametrize(("content", "message"), [
    pytest.param(None, "cannot read baseline file", id="missing"),
    pytest.param("{not json", "corrupt baseline file", id="corrupt"),
    pytest.param('{"schema_version": 2, "findings": []}', "schema_version 1", id="wrong-version"),
    pytest.param('{"schema_version": 1, "findings": [{"id": "x"}]}', "missing (a required key)",
                 id="finding-without-fields"),
])
def test_bad_baseline_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None,
                                       message: str) -> None:
    path = tmp_path / "base.json"
    if content is not None:
        path.write_text(content)
    rc = main(["--baseline", str(path), "--from-facts", str(tmp_path / "none.json"),
               "--output-dir", str(tmp_path / "out")])
    assert rc == EXIT_USAGE
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_cli_baseline_round_trip(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    endpoint = shared_demo_estate(request.config).endpoint
    first = tmp_path / "first"
    regions = ["--regions", "us-east-1,us-west-2,eu-west-1"]
    facts = tmp_path / "facts.json"
    proc = run_cli(["--org", *regions, "--output-dir", str(first), "--save-facts", str(facts)], endpoint)
    assert proc.returncode == EXIT_FINDINGS, proc.stderr
    validate_facts(load_json(facts))
    # same estate against its own findings: nothing new, so --fail-on-new passes
    again = run_cli(["--from-facts", str(facts), "--output-dir", str(tmp_path / "again"),
                     "--baseline", str(first / "findings.json"), "--fail-on-new"], None)
    complete = load_json(first / "findings.json")["scan"]["complete"]
    assert again.returncode == (EXIT_OK if complete else EXIT_INCOMPLETE), again.stderr
    assert "vs baseline    0 new," in again.stdout
    # a baseline that lacks one high finding: that one is new and fails the run
    doc = load_json(first / "findings.json")
    high = next(f for f in doc["findings"] if f["severity"] == "high" and f["rule_id"].startswith("BIL-"))
    doc["findings"] = [f for f in doc["findings"] if f["id"] != high["id"]]
    older = tmp_path / "older.json"
    older.write_text(json.dumps(doc))
    third = run_cli(["--from-facts", str(facts), "--output-dir", str(tmp_path / "third"),
                     "--baseline", str(older), "--fail-on-new"], None)
    assert third.returncode == EXIT_FINDINGS, third.stderr
    assert "vs baseline    1 new," in third.stdout
    marked = load_json(tmp_path / "third" / "findings.json")
    assert [f["id"] for f in marked["findings"] if f["baseline"] == "new"] == [high["id"]]
    page = parse_html((tmp_path / "third" / "report.html").read_text())
    assert page.by_id(f"f-{high['id']}").find("span", cls="badge").text() == "new"
