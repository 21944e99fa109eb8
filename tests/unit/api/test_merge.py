"""--merge: shard results combine into exactly what one run gives; conflicting inputs exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from audit_bedrock import __version__, cli
from audit_bedrock.findings import fingerprint
from audit_bedrock.model import AccountOutcome, Coverage, Finding, ScanMeta, ScanResult
from audit_bedrock.reports.json_report import to_document
from tests.conftest import load_json, run_cli, validate_findings
from tests.support import shared_demo_estate

ORG, CALLER = "o-example1234", "111111111111"
A, B, C = "222222222222", "333333333333", "444444444444"


def finding(rule: str, severity: str, account: str, region: str | None = "us-east-1") -> Finding:
    resource = f"arn:aws:bedrock:{region}:{account}:logging"
    return Finding(id=fingerprint(rule, account, region, resource), rule_id=rule,
                   severity=severity,  # type: ignore[arg-type]
                   title="t", message="m", account_id=account, account_name="", region=region,
                   resource=resource, remediation="r")


def shard_doc(accounts: list[str], *, org: str | None = ORG, caller: str = CALLER,
              shard: tuple[int, int] | None = None, findings: tuple[Finding, ...] = (),
              started: str = "2026-01-01T10:00:00Z", finished: str = "2026-01-01T10:05:00Z",
              complete: bool = True, api_calls: int = 10) -> dict[str, Any]:
    meta = ScanMeta(started, finished, org, caller, ("us-east-1",),
                    tuple(AccountOutcome(a, f"acct-{a}", "Root", "scanned") for a in accounts), api_calls,
                    incomplete=not complete, shard=shard)
    cells = tuple(Coverage(a, "us-east-1", "scanned", logging_enabled=False) for a in accounts)
    return to_document(ScanResult(meta, cells, findings), __version__)


def write(tmp_path: Path, name: str, doc: Any) -> str:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


def merge_cli(tmp_path: Path, files: list[str], *extra: str) -> int:
    return cli.main(["--merge", *files, "--output-dir", str(tmp_path / "out"), "--format", "json", "-q", "-q",
                     *extra])


@pytest.mark.parametrize(("docs", "message"), [
    pytest.param([shard_doc([A]), shard_doc([B], org="o-other56789")], "different organizations",
                 id="different-organizations"),
    pytest.param([shard_doc([A]), shard_doc([B], caller="999999999999")], "different caller accounts",
                 id="different-callers"),
    pytest.param([shard_doc([A, B]), shard_doc([B, C])], f"account {B} is in both", id="overlapping-accounts"),
    pytest.param([shard_doc([A], shard=(1, 3)), shard_doc([B], shard=(1, 3))], "shard 1/3 is given twice",
                 id="same-shard-twice"),
    pytest.param([shard_doc([A], shard=(1, 2)), shard_doc([B], shard=(2, 3))], "different numbers of shards",
                 id="different-shard-counts"),
    pytest.param([shard_doc([A]), "{not json"], "corrupt merge input (line 1)", id="not-json"),
    pytest.param([shard_doc([A]), {"version": "2.1.0", "runs": []}], "not a findings.json", id="sarif-file"),
    pytest.param([shard_doc([A]), {"schema_version": 1, "scan": {}}], ": missing (a required key)",
                 id="truncated-findings"),
    pytest.param([shard_doc([A]), [1, 2]], "no schema_version 1", id="json-list"),
    pytest.param([shard_doc([A], findings=(finding("NOPE-001", "high", A),))],
                 "NOPE-001 are not in the loaded rule packs", id="unknown-rule"),
])
def test_conflicting_inputs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], docs: list[Any],
                                   message: str) -> None:
    files = [write(tmp_path, f"in{i}.json", d) for i, d in enumerate(docs)]
    assert merge_cli(tmp_path, files) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.parametrize("flags", [
    pytest.param(["--org"], id="org"),
    pytest.param(["--accounts", A], id="accounts"),
    pytest.param(["--save-facts", "f.json"], id="save-facts"),
])
def test_merge_is_not_a_scan(tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str]) -> None:
    files = [write(tmp_path, "a.json", shard_doc([A]))]
    assert merge_cli(tmp_path, files, *flags) == 2
    assert "cannot be combined" in capsys.readouterr().err


def test_missing_input_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert merge_cli(tmp_path, [str(tmp_path / "nope.json")]) == 2
    assert "cannot read merge input" in capsys.readouterr().err


def test_metadata_and_order(tmp_path: Path) -> None:
    a = shard_doc([A, C], shard=(1, 2), api_calls=30, started="2026-01-01T10:00:03Z",
                  finished="2026-01-01T10:07:00Z",
                  findings=(finding("BIL-001", "high", C), finding("BIL-004", "medium", A)))
    b = shard_doc([B], shard=(2, 2), api_calls=12, started="2026-01-01T10:00:01Z",
                  finished="2026-01-01T10:06:00Z",
                  findings=(finding("BIL-002", "critical", B), finding("BIL-001", "high", B)))
    files = [write(tmp_path, "b.json", b), write(tmp_path, "a.json", a)]
    assert merge_cli(tmp_path, files, "--fail-on", "none") == 0
    doc = load_json(tmp_path / "out" / "findings.json")
    validate_findings(doc)
    scan = doc["scan"]
    assert [x["id"] for x in scan["accounts"]] == [A, B, C]
    assert (scan["api_calls"], scan["started_at"], scan["finished_at"]) == (42, "2026-01-01T10:00:01Z",
                                                                            "2026-01-01T10:07:00Z")
    assert "shard" not in scan and scan["complete"] is True and scan["organization_id"] == ORG
    assert [(f["rule_id"], f["account_id"]) for f in doc["findings"]] == [
        ("BIL-002", B), ("BIL-001", B), ("BIL-001", C), ("BIL-004", A)]
    assert [(c["account_id"], c["region"]) for c in doc["coverage"]] == [(A, "us-east-1"), (B, "us-east-1"),
                                                                         (C, "us-east-1")]
    assert doc["summary"]["critical"] == 1 and doc["summary"]["high"] == 2


@pytest.mark.parametrize(("fail_on", "rc"), [
    pytest.param("high", 1, id="fail-on-high"),
    pytest.param("critical", 0, id="fail-on-critical"),
])
def test_fail_on_applies_to_the_merge(tmp_path: Path, fail_on: str, rc: int) -> None:
    files = [write(tmp_path, "a.json", shard_doc([A], findings=(finding("BIL-001", "high", A),))),
             write(tmp_path, "b.json", shard_doc([B]))]
    assert merge_cli(tmp_path, files, "--fail-on", fail_on) == rc


def test_missing_shard_is_incomplete_not_silent(tmp_path: Path) -> None:
    files = [write(tmp_path, "a.json", shard_doc([A], shard=(1, 3))),
             write(tmp_path, "c.json", shard_doc([C], shard=(3, 3)))]
    assert merge_cli(tmp_path, files, "--fail-on", "none") == 3
    doc = load_json(tmp_path / "out" / "findings.json")
    assert doc["scan"]["complete"] is False
    assert any("2/3" in n and "missing" in n for n in doc["scan"]["notices"])


def test_incomplete_or_interrupted_shard_makes_merge_incomplete(tmp_path: Path) -> None:
    interrupted = shard_doc([B])
    interrupted["scan"]["interrupted"] = True
    files = [write(tmp_path, "a.json", shard_doc([A], complete=False)), write(tmp_path, "b.json", interrupted)]
    assert merge_cli(tmp_path, files, "--fail-on", "none") == 3  # incomplete, not 130: the merge ran to the end
    doc = load_json(tmp_path / "out" / "findings.json")
    assert doc["scan"]["complete"] is False and doc["scan"]["interrupted"] is False
    assert any("interrupted" in n for n in doc["scan"]["notices"])


def test_baseline_applies_to_the_merge(tmp_path: Path) -> None:
    old = shard_doc([A, B], findings=(finding("BIL-001", "high", A), finding("BIL-004", "medium", B)))
    files = [write(tmp_path, "a.json", shard_doc([A], findings=(finding("BIL-001", "high", A),))),
             write(tmp_path, "b.json", shard_doc([B], findings=(finding("BIL-002", "critical", B),)))]
    baseline = write(tmp_path, "old.json", old)
    assert merge_cli(tmp_path, files, "--baseline", baseline, "--fail-on", "none") == 0
    doc = load_json(tmp_path / "out" / "findings.json")
    assert {f["rule_id"]: f["baseline"] for f in doc["findings"]} == {"BIL-001": "unchanged", "BIL-002": "new"}
    assert [f["rule_id"] for f in doc["fixed"]] == ["BIL-004"]


# --- the demo organization: two and three shards merged == one run ---------------------------------

DEMO_REGIONS = "us-east-1,us-west-2,eu-west-1,me-south-1"


def _stable(doc: dict[str, Any]) -> dict[str, Any]:
    """What must be equal between a merge and a single run: everything but times and the call count."""
    scan = {k: v for k, v in doc["scan"].items() if k not in ("started_at", "finished_at", "api_calls")}
    return {**doc, "scan": scan}


def _sarif_results(path: Path) -> list[Any]:
    sarif = load_json(path)
    return [r for run in sarif["runs"] for r in run["results"]]


@pytest.mark.slow
def test_merged_shards_equal_one_run(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The demo organization scanned once, then in 2 and in 3 shards: each merge equals the single run."""
    estate = shared_demo_estate(request.config)  # behind the proxy that answers what moto lacks, as --demo scans
    ids, endpoint = estate.ids, estate.endpoint
    common = ["--regions", DEMO_REGIONS, "--format", "json,sarif", "-q", "-q"]
    full = tmp_path / "full"
    ref = run_cli(["--org", *common, "--output-dir", str(full)], endpoint)
    assert ref.returncode in (1, 3), ref.stderr  # the demo has high findings by design
    assert {a["id"] for a in load_json(full / "findings.json")["scan"]["accounts"]} == set(ids.values())
    for count in (2, 3):
        _check_merge(endpoint, tmp_path / f"n{count}", count, common, full, ref.returncode)


def _check_merge(endpoint: str, tmp_path: Path, count: int, common: list[str], full: Path, ref_rc: int) -> None:
    parts = []
    for k in range(1, count + 1):
        out = tmp_path / f"shard{k}"
        proc = run_cli(["--org", *common, "--shard", f"{k}/{count}", "--output-dir", str(out)], endpoint)
        assert proc.returncode in (0, 1, 3), proc.stderr
        assert (out / "findings.json").is_file(), f"exit {proc.returncode} without a report: {proc.stderr[-3000:]}"
        doc = load_json(out / "findings.json")
        validate_findings(doc)
        assert doc["scan"]["shard"] == {"index": k, "count": count}
        parts.append(out / "findings.json")
    merged = tmp_path / "merged"
    proc = run_cli(["--merge", *map(str, parts), "--output-dir", str(merged), "--format", "json,sarif,html",
                    "-q", "-q"], None)  # no endpoint: a merge makes no AWS call
    assert proc.returncode == ref_rc, proc.stderr

    one, many = load_json(full / "findings.json"), load_json(merged / "findings.json")
    validate_findings(many)
    assert [f["id"] for f in many["findings"]] == [f["id"] for f in one["findings"]]
    assert many["coverage"] == one["coverage"]
    assert _stable(many) == _stable(one)
    shard_docs = [load_json(p) for p in parts]
    assert sum(len(d["scan"]["accounts"]) for d in shard_docs) == len(one["scan"]["accounts"])  # a partition
    assert many["scan"]["api_calls"] == sum(d["scan"]["api_calls"] for d in shard_docs)
    assert _sarif_results(merged / "findings.sarif") == _sarif_results(full / "findings.sarif")
    assert (merged / "report.html").stat().st_size > 0

    # --baseline on a shard covers that shard's accounts only: other shards' findings are not "fixed".
    base = tmp_path / "based"
    proc = run_cli(["--org", *common, "--shard", f"1/{count}", "--baseline", str(full / "findings.json"),
                    "--output-dir", str(base)], endpoint)
    assert proc.returncode in (0, 1, 3), proc.stderr
    based = load_json(base / "findings.json")
    assert based["fixed"] == []
    assert all(f["baseline"] == "unchanged" for f in based["findings"])
