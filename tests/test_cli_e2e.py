"""End to end: the CLI as a separate process against a moto server subprocess seeded with the demo estate."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import load_json, run_cli, seed_demo, validate_findings

pytestmark = pytest.mark.slow

REGIONS = "us-east-1,us-west-2,eu-west-1"


def test_org_scan_of_demo_estate(moto_subprocess: str, tmp_path: Path) -> None:
    ids = seed_demo(moto_subprocess)
    out = tmp_path / "out"
    proc = run_cli(["--org", "--regions", REGIONS, "--output-dir", str(out), "--format", "json",
                    "--save-facts", str(tmp_path / "facts.json")], moto_subprocess)
    assert proc.returncode == 1, proc.stderr
    doc = load_json(out / "findings.json")
    validate_findings(doc)
    assert doc["schema_version"] == 1
    status = {a["name"]: a["status"] for a in doc["scan"]["accounts"]}
    assert status["legacy-closed"] == "skipped"
    assert sum(1 for s in status.values() if s == "scanned") == 6
    by_account: dict[str, set[tuple[str, str | None]]] = {}
    for f in doc["findings"]:
        by_account.setdefault(f["account_id"], set()).add((f["rule_id"], f["region"]))
    assert ids["security-tooling"] not in by_account  # the compliant account
    assert ("BIL-021", "eu-west-1") in by_account[ids["payments-prod"]]  # a us-east-1 bucket
    assert ("BIL-020", "us-west-2") in by_account[ids["sandbox"]]  # a stranger's bucket
    assert ("BIL-004", "us-east-1") in by_account[ids["payments-prod"]]
    assert ("BIL-003", "us-east-1") in by_account[ids["data-science"]]
    assert "wrote" in proc.stdout

    # --from-facts re-evaluates offline (no endpoint at all) and gives the same findings.
    again = tmp_path / "again"
    proc2 = run_cli(["--from-facts", str(tmp_path / "facts.json"), "--output-dir", str(again)], None)
    assert proc2.returncode == 1, proc2.stderr
    doc2 = load_json(again / "findings.json")
    assert [f["id"] for f in doc2["findings"]] == [f["id"] for f in doc["findings"]]
    assert doc2["coverage"] == doc["coverage"]
