"""End to end: the CLI as a separate process against a moto server subprocess seeded with the demo estate."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from audit_bedrock.derive import derive
from audit_bedrock.facts import FACTS_VERSION
from audit_bedrock.standin.evidence import demo_answers
from audit_bedrock.standin.proxy import Proxy
from tests.conftest import load_json, run_cli, seed_demo, validate_facts, validate_findings

pytestmark = pytest.mark.slow

REGIONS = "us-east-1,us-west-2,eu-west-1"


def test_org_scan_of_demo_estate(moto_subprocess: str, tmp_path: Path) -> None:
    ids = seed_demo(moto_subprocess)
    out = tmp_path / "out"
    # As --demo does: through the stand-in proxy, which answers what moto cannot (CloudTrail LookupEvents, log
    # group deletion protection); straight against moto, security-tooling would not be compliant.
    with Proxy(moto_subprocess, answers=demo_answers(ids)) as proxy:
        proc = run_cli(["--org", "--regions", REGIONS, "--output-dir", str(out), "--format", "json",
                        "--save-facts", str(tmp_path / "facts.json")], proxy.url)
    assert proc.returncode == 1, proc.stderr
    doc = load_json(out / "findings.json")
    validate_findings(doc)
    validate_facts(load_json(tmp_path / "facts.json"))
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
    check_saved_facts(tmp_path, tmp_path / "facts.json", doc)


DERIVED_REGION_KEYS = ("delivery_role", "destinations")
DERIVED_BUCKET_KEYS = ("bedrock_can_put", "public", "acls_enabled", "sse_kms", "has_expiring_lifecycle")


def check_saved_facts(tmp_path: Path, path: Path, live: dict[str, Any]) -> None:
    """--save-facts wrote raw facts (version 2); derive() is pure on them; a version-1 file (derived values
    inside) replays to the same findings."""
    saved = load_json(path)
    assert saved["version"] == FACTS_VERSION == 2
    regions = [r for a in saved["accounts"] for r in a["regions"] if r["status"] == "scanned"]
    assert regions
    for r in regions:
        assert not set(DERIVED_REGION_KEYS) & set(r), "a derived fact was saved"
        for b in r.get("buckets") or []:
            assert not set(DERIVED_BUCKET_KEYS) & set(b), "a derived bucket fact was saved"
    derived = []
    for account in saved["accounts"]:
        before = copy.deepcopy(account)
        once = derive(account)
        assert account == before, "derive() changed its input"
        assert derive(once) == once, "derive() is not idempotent"
        derived.append(once)
    assert any(b.get("bedrock_can_put") is True for a in derived for r in a["regions"] for b in r.get("buckets") or [])
    v1 = tmp_path / "facts-v1.json"
    v1.write_text(json.dumps({**saved, "version": 1, "accounts": derived}))
    proc = run_cli(["--from-facts", str(v1), "--output-dir", str(tmp_path / "v1"), "--format", "json"], None)
    assert proc.returncode == 1, proc.stderr
    assert [f["id"] for f in load_json(tmp_path / "v1" / "findings.json")["findings"]] \
        == [f["id"] for f in live["findings"]]
