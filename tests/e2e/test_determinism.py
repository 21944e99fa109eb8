"""Determinism: the same estate gives the same bytes, apart from the two timestamps.

api_calls is compared too: it counts logical operations (botocore's before-call event, once per call
and per page), not HTTP attempts, so retries do not change it; test_faults shows it unchanged under
18% throttling. Nothing else in any report may vary: not the order in which accounts finish, not the
number of workers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit_bedrock.findings import fingerprint
from audit_bedrock.reports import FORMATS
from tests.conftest import validate_facts, validate_findings
from tests.support import DEMO_SCAN_REGIONS, CliRun, Estate, run_cli_inprocess, shared_demo_estate

pytestmark = pytest.mark.slow

ALL_FORMATS = ",".join(FORMATS)


@pytest.fixture(scope="module")
def estate(request: pytest.FixtureRequest) -> Estate:
    return shared_demo_estate(request.config)


def scan(mp: pytest.MonkeyPatch, estate: Estate, out: Path, workers: int) -> CliRun:
    run = run_cli_inprocess(mp, estate.endpoint, [
        "--org", "--regions", ",".join(DEMO_SCAN_REGIONS), "--format", ALL_FORMATS, "--max-workers", str(workers),
        "--save-facts", str(out / "facts.json"), "-q", "-q"], out)
    assert run.doc is not None and run.rc in (1, 3)
    validate_findings(run.doc)
    validate_facts(json.loads((out / "facts.json").read_text()))
    return run


def run_stamps(out: Path) -> set[str]:
    """The run's own start and finish times, as ISO 8601 text and as the epoch milliseconds of OCSF's `time`."""
    import datetime as dt

    doc = json.loads((out / "findings.json").read_text())
    stamps = {doc["scan"]["started_at"], doc["scan"]["finished_at"]}
    return stamps | {str(int(dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000)) for s in stamps}


def normalized(*outs: Path) -> list[dict[str, bytes]]:
    """Every file each run wrote, with the start and finish timestamps of all the compared runs replaced by a
    placeholder. All the runs' stamps, not each run's own: the estate's delivery evidence (a log event's time,
    `last_delivery`) was written by the seeding just before the first scan, and can fall in the first run's start
    second; replaced in that run only, it would differ from the same unchanged value in the next run."""
    stamps = set().union(*(run_stamps(out) for out in outs))
    result = []
    for out in outs:
        files = {}
        for path in sorted(out.iterdir()):
            data = path.read_bytes()
            for stamp in stamps:
                data = data.replace(stamp.encode(), b"<timestamp>")
            files[path.name] = data
        result.append(files)
    return result


@pytest.fixture(scope="module")
def runs(estate: Estate, tmp_path_factory: pytest.TempPathFactory) -> list[CliRun]:
    """Three scans of one estate: 16 workers twice, then one worker (accounts finish in another order)."""
    with pytest.MonkeyPatch.context() as mp:
        from tests.conftest import DROP_ENV, FAKE_ENV
        for k in DROP_ENV:
            mp.delenv(k, raising=False)
        for k, v in FAKE_ENV.items():
            mp.setenv(k, v)
        return [scan(mp, estate, tmp_path_factory.mktemp(f"run{i}"), w) for i, w in enumerate((16, 16, 1))]


def test_two_runs_write_identical_files(runs: list[CliRun]) -> None:
    first, second = normalized(runs[0].out_dir, runs[1].out_dir)
    from audit_bedrock.reports import outputs
    assert sorted(first) == sorted(second) == sorted([*(n for f in FORMATS for n, _ in outputs(f)), "facts.json"])
    for name in first:
        assert first[name] == second[name], f"{name} differs between two runs of the same estate"


def test_worker_count_changes_nothing(runs: list[CliRun]) -> None:
    many, one = normalized(runs[0].out_dir, runs[2].out_dir)
    for name in many:
        assert many[name] == one[name], f"{name} differs between --max-workers 16 and 1"


def test_only_timestamps_were_normalized(runs: list[CliRun]) -> None:
    """The placeholder stands only where the scan's own start/finish times were; nothing else moved."""
    a, b = runs[0].doc, runs[1].doc
    assert a is not None and b is not None
    for key in set(a["scan"]) - {"started_at", "finished_at"}:
        assert a["scan"][key] == b["scan"][key], key
    assert a["scan"]["api_calls"] > 0


def test_finding_ids_are_fingerprints_of_stable_fields(runs: list[CliRun]) -> None:
    """Each id is rule, account, region and resource (plus the blocked rule for SCAN-003): no message, no time."""
    assert runs[0].doc is not None
    findings = runs[0].doc["findings"]
    assert findings
    for f in findings:
        discriminator = f["properties"].get("blocked_rule", "") if f["rule_id"] == "SCAN-003" else ""
        assert f["id"] == fingerprint(f["rule_id"], f["account_id"], f["region"], f["resource"], discriminator)
    assert len({f["id"] for f in findings}) == len(findings)


def test_findings_are_sorted(runs: list[CliRun]) -> None:
    from audit_bedrock.constants import SEVERITY_RANK

    assert runs[0].doc is not None
    keys = [(SEVERITY_RANK[f["severity"]], f["account_id"], f["region"] or "", f["rule_id"], f["resource"], f["id"])
            for f in runs[0].doc["findings"]]
    assert keys == sorted(keys)


def test_from_facts_reproduces_the_scan(runs: list[CliRun], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Re-evaluating the saved facts offline gives the scan's findings.json byte for byte."""
    out = tmp_path / "again"
    again = run_cli_inprocess(monkeypatch, None, ["--from-facts", str(runs[0].out_dir / "facts.json"),
                                                  "--format", ALL_FORMATS, "-q", "-q"], out)
    assert again.rc == runs[0].rc
    original, offline = normalized(runs[0].out_dir, out)
    for name, data in offline.items():
        assert data == original[name], f"{name} differs when re-evaluated from the saved facts"
