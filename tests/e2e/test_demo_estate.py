"""The seeded demo organization, scanned end to end: the exact (rule, account, region) set it must give."""

from __future__ import annotations

import json
import logging
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from audit_bedrock.cli import main
from audit_bedrock.demo import DEMO_REGIONS, DEMO_SKIPPED_REGION, demo_config_path
from audit_bedrock.derive import derive
from audit_bedrock.engine import load_rules
from audit_bedrock.facts import FACTS_VERSION
from tests.conftest import run_cli, seed_demo, validate_facts, validate_findings

pytestmark = pytest.mark.slow

# Every finding the demo organization gives: (rule, account, region, severity). Region None = account scope.
EXPECTED: set[tuple[str, str, str | None, str]] = {
    ("BIL-001", "management", "us-east-1", "high"),
    ("BIL-001", "management", "us-west-2", "high"),
    ("BIL-001", "management", "eu-west-1", "high"),
    # payments-prod: an unguarded delivery role that names an old log group; a missing log group behind a
    # prefix-similar one; a bare large-data bucket; an orphaned role; eu-west-1 off.
    ("BIL-004", "payments-prod", "us-east-1", "high"),
    ("BIL-008", "payments-prod", "us-east-1", "medium"),
    ("BIL-009", "payments-prod", "us-east-1", "high"),
    ("BIL-014", "payments-prod", "us-east-1", "low"),
    ("BIL-016", "payments-prod", "us-east-1", "medium"),
    ("BIL-005", "payments-prod", "us-west-2", "high"),
    ("BIL-008", "payments-prod", "us-west-2", "medium"),
    ("BIL-009", "payments-prod", "us-west-2", "high"),
    ("BIL-012", "payments-prod", "us-west-2", "high"),
    ("BIL-015", "payments-prod", "us-west-2", "low"),
    ("BIL-016", "payments-prod", "us-west-2", "medium"),
    ("BIL-018", "payments-prod", "us-west-2", "medium"),
    ("BIL-001", "payments-prod", "eu-west-1", "high"),
    ("BIL-010", "payments-prod", None, "low"),
    # data-science: video/audio not delivered everywhere; a public bucket; a key Bedrock may not use; a key
    # whose state the audit role may not read.
    ("BIL-003", "data-science", "us-east-1", "medium"),
    ("BIL-013", "data-science", "us-east-1", "critical"),
    ("BIL-003", "data-science", "us-west-2", "medium"),
    ("BIL-019", "data-science", "us-west-2", "high"),
    ("BIL-003", "data-science", "eu-west-1", "medium"),
    ("SCAN-003", "data-science", "eu-west-1", "low"),
    # ml-platform: text-only CloudWatch, a role never created, short retention, a disabled key; a role that
    # trusts EC2 and an unapproved scratch bucket; a deleted bucket.
    ("BIL-003", "ml-platform", "us-east-1", "medium"),
    ("BIL-004", "ml-platform", "us-east-1", "medium"),
    ("BIL-006", "ml-platform", "us-east-1", "high"),
    ("BIL-014", "ml-platform", "us-east-1", "medium"),
    ("BIL-019", "ml-platform", "us-east-1", "high"),
    ("BIL-003", "ml-platform", "us-west-2", "medium"),
    ("BIL-007", "ml-platform", "us-west-2", "high"),
    ("BIL-017", "ml-platform", "us-west-2", "medium"),
    ("BIL-011", "ml-platform", "eu-west-1", "high"),
    # sandbox: never configured; Bedrock used in us-east-1.
    ("BIL-002", "sandbox", "us-east-1", "critical"),
    ("BIL-001", "sandbox", "us-west-2", "high"),
    ("BIL-001", "sandbox", "eu-west-1", "high"),
}


def triples(doc: dict[str, Any], names: dict[str, str]) -> set[tuple[str, str, str | None, str]]:
    return {(f["rule_id"], names[f["account_id"]], f["region"], f["severity"]) for f in doc["findings"]}


def check(doc: dict[str, Any], names: dict[str, str]) -> None:
    validate_findings(doc)
    got = triples(doc, names)
    assert got == EXPECTED, f"missing {sorted(EXPECTED - got, key=str)}; unexpected {sorted(got - EXPECTED, key=str)}"
    assert len(doc["findings"]) == len(EXPECTED)  # one finding per (rule, account, region) here
    # Every catalog rule shows except SCAN-001 and SCAN-002; the compliant account shows none.
    shown = {f["rule_id"] for f in doc["findings"]}
    assert shown == {r.id for r in load_rules()} - {"SCAN-001", "SCAN-002"}
    assert "security-tooling" not in {n for _, n, _, _ in got}
    status = {names[a["id"]]: a["status"] for a in doc["scan"]["accounts"]}
    assert status == {"management": "scanned", "security-tooling": "scanned", "payments-prod": "scanned",
                      "data-science": "scanned", "ml-platform": "scanned", "sandbox": "scanned",
                      "legacy-closed": "skipped"}
    gap = next(f for f in doc["findings"] if f["rule_id"] == "SCAN-003")
    assert gap["properties"]["blocked_rule"] == "BIL-019"
    assert gap["properties"]["missing_permissions"] == ["kms:DescribeKey"]
    orphan = next(f for f in doc["findings"] if f["rule_id"] == "BIL-010")
    assert orphan["resource"].endswith(":role/BedrockLogsRole-2023") and "/bedrock/legacy" in orphan["message"]


def test_demo_organization_gives_exactly_the_catalog(moto_server: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    # moto's backends are process globals: leave none of the demo state to later tests on this worker.
    reset = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    try:
        _check_seeded_scan(seed_demo(moto_server), moto_server, tmp_path, monkeypatch, caplog)
    finally:
        urllib.request.urlopen(reset, timeout=30).read()


def _check_seeded_scan(ids: dict[str, str], moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       caplog: pytest.LogCaptureFixture) -> None:
    names = {v: k for k, v in ids.items()}
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    out = tmp_path / "out"
    regions = ",".join((*DEMO_REGIONS, DEMO_SKIPPED_REGION))
    with caplog.at_level(logging.WARNING, logger="audit_bedrock"):
        code = main(["--org", "--config", demo_config_path(), "--regions", regions, "--output-dir", str(out),
                     "--format", "json", "--save-facts", str(tmp_path / "facts.json"), "-q"])
    assert code == 1
    assert "identical AWS request" not in caplog.text  # no request was made twice
    doc = json.loads((out / "findings.json").read_text())
    check(doc, names)
    # Facts behind a few findings: exact-name log group match, and the compliant account's derived facts
    # (the file holds the raw facts: derived ones are recomputed, as --from-facts does).
    saved = json.loads((tmp_path / "facts.json").read_text())
    validate_facts(saved)  # the whole file: every account and region document, in the vocabulary's types
    assert saved["version"] == FACTS_VERSION
    assert all("delivery_role" not in r for a in saved["accounts"] for r in a["regions"])
    facts = {a["account_id"]: derive(a) for a in saved["accounts"]}
    pay = {r["region"]: r for r in facts[ids["payments-prod"]]["regions"]}
    assert pay["us-west-2"]["log_group"]["exists"] is False
    sec = {r["region"]: r for r in facts[ids["security-tooling"]]["regions"]}
    bucket = sec["us-east-1"]["buckets"][0]
    assert (bucket["bedrock_can_put"], bucket["public"], bucket["acls_enabled"], bucket["sse_kms"],
            bucket["has_expiring_lifecycle"]) == (True, False, False, True, True)
    assert sec["us-east-1"]["delivery_role"] == {**sec["us-east-1"]["delivery_role"], "exists": True,
                                                 "trusts_bedrock": True, "confused_deputy_guarded": True,
                                                 "can_write_log_group": True}
    assert [k["bedrock_can_generate_data_key"] for k in sec["eu-west-1"]["kms_keys"]] == [True]


def test_demo_flag_scans_the_same_organization(tmp_path: Path) -> None:
    """`audit-bedrock --demo` as a user runs it (its own process and embedded server) gives the same set."""
    out = tmp_path / "demo"
    proc = run_cli(["--demo", "--output-dir", str(out), "--format", "json", "--save-facts",
                    str(tmp_path / "facts.json")], None, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    validate_facts(json.loads((tmp_path / "facts.json").read_text()))
    assert "identical AWS request" not in proc.stderr
    doc = json.loads((out / "findings.json").read_text())
    # Account ids are random per run: name the accounts from the report itself.
    names = {a["id"]: a["name"] for a in doc["scan"]["accounts"]}
    mgmt = doc["scan"]["caller_account"]
    names[mgmt] = "management"
    check(doc, names)
