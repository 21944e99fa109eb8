"""Config keys end to end through the CLI: approved_destinations, min_retention_days, usage_lookback_days,
required_data_types, severity_overrides, disabled_rules, suppressions (with expiry), rule_paths / --rules-dir,
--list-rules and --explain.

Most cases re-evaluate a saved facts file (--from-facts: no AWS); usage_lookback_days needs a real scan.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from audit_bedrock.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, main
from audit_bedrock.derive import derive
from audit_bedrock.facts import FACTS_FORMAT, FACTS_VERSION

ACCT = "111111111111"
REGION = "us-east-1"
GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCT}:log-group:/bedrock/invocations"


ROLE_ARN = f"arn:aws:iam::{ACCT}:role/r"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCT}:key/k"
SOURCE = {"StringEquals": {"aws:SourceAccount": ACCT},
          "ArnLike": {"aws:SourceArn": f"arn:aws:bedrock:{REGION}:{ACCT}:*"}}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def region_doc() -> dict[str, Any]:
    """One region's raw facts (as collected; --from-facts derives the rest): CloudWatch + S3, all healthy but
    30-day retention. Shapes as the collectors write them (collectors/s3.py, logs.py, logging_config.py)."""
    bucket = {"name": "team-scratch", "arn": "arn:aws:s3:::team-scratch", "exists": True, "region": REGION,
              "uses": [{"destination": "s3", "prefix": "bedrock"}],
              "policy": policy({"Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"},
                                "Action": "s3:PutObject", "Condition": SOURCE,
                                "Resource": f"arn:aws:s3:::team-scratch/bedrock/AWSLogs/{ACCT}/*"}),
              "public_access_block": {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                                      "RestrictPublicBuckets": True},
              "object_ownership": "BucketOwnerEnforced", "acl": None,
              "encryption": {"algorithm": "aws:kms", "kms_key_id": KEY_ARN, "bucket_key_enabled": True},
              "lifecycle_rules": [{"ID": "expire", "Status": "Enabled", "Filter": {"Prefix": "bedrock/"},
                                   "Expiration": {"Days": 400}}]}
    return {
        "account_id": ACCT, "region": REGION, "status": "scanned",
        "logging": {"enabled": True, "destinations": ["cloudwatch", "s3"], "large_data_s3": False,
                    "data_types": {"text": True, "image": False, "embedding": False, "video": False, "audio": False},
                    "s3": {"bucket": "team-scratch", "prefix": "bedrock"},
                    "cloudwatch": {"log_group": "/bedrock/invocations", "role_arn": ROLE_ARN, "large_data": None}},
        "log_group": {"name": "/bedrock/invocations", "arn": GROUP_ARN, "exists": True, "retention_days": 30,
                      "kms_key_id": KEY_ARN, "deletion_protection": True},  # protected: BIL-025 is not under test
        "buckets": [bucket], "kms_keys": [], "usage": None,
    }


def delivery_role() -> dict[str, Any]:
    """The IAM collector's record of the delivery role (collectors/iam.py): guarded trust, least privilege."""
    trust = policy({"Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"}, "Action": "sts:AssumeRole",
                    "Condition": SOURCE})
    write = policy({"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": f"{GROUP_ARN}:log-stream:aws/bedrock/modelinvocations"})
    return {"arn": ROLE_ARN, "name": "r", "exists": True, "trust_policy": trust,
            "inline_policies": [{"name": "logs", "document": write}], "attached_policies": [],
            "permissions_boundary": None}


@pytest.fixture
def facts(tmp_path: Path) -> Path:
    account = {"account_id": ACCT, "account_name": "team", "ou_path": "Root", "status": "scanned", "reason": "",
               "regions": [region_doc()], "scanned_regions": [REGION],
               "iam": {"roles": {ROLE_ARN: delivery_role()}, "unreferenced_bedrock_roles": [],
                       "scanned_regions": [REGION], "unread_regions": [], "regions_subset": True}}
    path = tmp_path / "facts.json"
    path.write_text(json.dumps({"format": FACTS_FORMAT, "version": FACTS_VERSION, "accounts": [account],
                                "scan": {"caller_account": ACCT, "regions": [REGION]}}))
    return path


def run(tmp_path: Path, facts: Path, config: str | None, *extra: str) -> tuple[int, dict[str, Any]]:
    args = ["--from-facts", str(facts), "--output-dir", str(tmp_path / "out"), "--format", "json", "-q", "-q",
            *extra]
    if config is not None:
        cfg = tmp_path / "config.yaml"
        cfg.write_text(config)
        args += ["--config", str(cfg)]
    code = main(args)
    doc = json.loads((tmp_path / "out" / "findings.json").read_text()) if code != EXIT_USAGE else {}
    return code, doc


def rules_of(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{f['rule_id']}@{f['resource'].rsplit(':', 1)[-1]}": f for f in doc["findings"]}


def test_the_fixture_derives_to_a_healthy_region(facts: Path) -> None:
    """The raw fixture means what the cases assume: every derived answer about the delivery path is good."""
    region = derive(json.loads(facts.read_text())["accounts"][0])["regions"][0]
    bucket = region["buckets"][0]
    assert (bucket["bedrock_can_put"], bucket["public"], bucket["acls_enabled"], bucket["sse_kms"],
            bucket["has_expiring_lifecycle"]) == (True, False, False, True, True)
    role = region["delivery_role"]
    assert (role["trusts_bedrock"], role["confused_deputy_guarded"], role["can_write_log_group"]) == (True, True, True)


def test_replay_uses_the_current_analyzer(tmp_path: Path, facts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--from-facts derives again: an analyzer that now answers differently changes the replayed findings."""
    from audit_bedrock import derive as derive_module

    real = derive_module.derive_bucket

    def stricter(bucket: dict[str, Any], account_id: str, region: str) -> None:
        real(bucket, account_id, region)
        bucket["bedrock_can_put"] = False  # as if a fixed analyzer found the policy does not let Bedrock write

    _, before = run(tmp_path / "before", facts, None)
    monkeypatch.setattr(derive_module, "derive_bucket", stricter)
    _, after = run(tmp_path / "after", facts, None)
    assert set(rules_of(after)) - set(rules_of(before)) == {"BIL-012@team-scratch"}


CASES = [
    pytest.param(None, {"BIL-003@model-invocation-logging", "BIL-014@/bedrock/invocations"}, id="defaults"),
    pytest.param("min_retention_days: 30\n", {"BIL-003@model-invocation-logging"}, id="min_retention_days"),
    pytest.param("required_data_types: [text]\n", {"BIL-014@/bedrock/invocations"}, id="required_data_types"),
    pytest.param("disabled_rules: [BIL-014, BIL-003]\n", set(), id="disabled_rules"),
    pytest.param("approved_destinations: {buckets: [central-*]}\nrequired_data_types: [text]\n",
                 {"BIL-014@/bedrock/invocations", "BIL-017@team-scratch"}, id="approved-buckets-pattern"),
    pytest.param("approved_destinations: {buckets: [team-*], log_groups: [/other/*]}\nrequired_data_types: [text]\n",
                 {"BIL-014@/bedrock/invocations", "BIL-017@/bedrock/invocations"}, id="approved-log-groups"),
    pytest.param("approved_destinations: {accounts: ['222222222222']}\nrequired_data_types: [text]\n",
                 {"BIL-014@/bedrock/invocations", "BIL-017@/bedrock/invocations", "BIL-017@team-scratch"},
                 id="approved-accounts"),
    pytest.param("approved_destinations: {buckets: [team-scratch], log_groups: [/bedrock/invocations],\n"
                 "  accounts: ['111111111111']}\nrequired_data_types: [text]\n",
                 {"BIL-014@/bedrock/invocations"}, id="everything-approved"),
]


@pytest.mark.parametrize(("config", "expected"), CASES)
def test_config_keys_change_what_fires(tmp_path: Path, facts: Path, config: str | None, expected: set[str]) -> None:
    code, doc = run(tmp_path, facts, config)
    assert set(rules_of(doc)) == expected
    assert code == EXIT_OK  # nothing here is high or critical


def test_severity_override_and_fail_on(tmp_path: Path, facts: Path) -> None:
    code, doc = run(tmp_path, facts, "severity_overrides: {BIL-014: high}\n")
    f = rules_of(doc)["BIL-014@/bedrock/invocations"]
    assert (f["severity"], f["properties"]["default_severity"]) == ("high", "medium")
    assert code == EXIT_FINDINGS


@pytest.mark.parametrize(
    ("expires", "status", "notice"),
    [pytest.param("2999-01-01", "suppressed", False, id="active"),
     pytest.param("2001-01-01", "open", True, id="expired-stops-suppressing"),
     pytest.param(None, "suppressed", False, id="no-expiry")],
)
def test_suppressions_expire(tmp_path: Path, facts: Path, expires: str | None,
                             status: str, notice: bool) -> None:
    expiry = f", expires: {expires}" if expires else ""
    cfg = (f"suppressions:\n  - {{rule: BIL-014, account: '{ACCT}', region: {REGION}, reason: accepted risk{expiry}}}\n"
           "severity_overrides: {BIL-014: high}\n")
    code, doc = run(tmp_path, facts, cfg)
    f = rules_of(doc)["BIL-014@/bedrock/invocations"]
    assert f["status"] == status
    assert code == (EXIT_FINDINGS if status == "open" else EXIT_OK)  # suppressed findings do not fail the run
    expired_notices = [n for n in doc["scan"]["notices"] if "expired" in n]
    assert bool(expired_notices) == notice
    if notice:
        assert f["properties"]["expired_suppression"]["expires"] == expires
        assert "BIL-014" in expired_notices[0]


RULE_PACK = """\
id: ORG-001
title: Log group names must start with /org/
severity: low
scope: region
requires: [fact.log_group]
condition: "fact.log_group.exists == `true` && !starts_with(fact.log_group.name, '/org/')"
resource: "fact.log_group.arn"
message: "Log group {name} in {region} does not follow the naming standard."
vars:
  name: "fact.log_group.name"
rationale: Our log routing relies on the /org/ prefix.
remediation: Rename the log group.
references: [https://example.com/standards/logging]
examples:
  fire:
    - name: wrong prefix
      facts: {region: us-east-1, account_id: "111111111111", status: scanned,
              log_group: {name: /bedrock/x, exists: true,
                          arn: "arn:aws:logs:us-east-1:111111111111:log-group:/bedrock/x"}}
  pass:
    - name: right prefix
      facts: {region: us-east-1, account_id: "111111111111", status: scanned,
              log_group: {name: /org/x, exists: true, arn: "arn:aws:logs:us-east-1:111111111111:log-group:/org/x"}}
"""


@pytest.mark.parametrize("how", ["rules-dir", "rule_paths"])
def test_organization_rule_packs(tmp_path: Path, facts: Path, how: str) -> None:
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "ORG-001.yaml").write_text(RULE_PACK)
    if how == "rules-dir":
        code, doc = run(tmp_path, facts, None, "--rules-dir", str(pack))
    else:
        code, doc = run(tmp_path, facts, "rule_paths: [pack]\n")  # relative to the config file
    assert "ORG-001@/bedrock/invocations" in rules_of(doc)
    assert code == EXIT_OK


def test_rule_pack_duplicate_id_is_a_usage_error(tmp_path: Path, facts: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "dup.yaml").write_text(RULE_PACK.replace("ORG-001", "BIL-005"))
    code, _ = run(tmp_path, facts, None, "--rules-dir", str(pack))
    assert code == EXIT_USAGE
    assert "duplicate rule id" in capsys.readouterr().err


def test_list_rules_and_explain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "ORG-001.yaml").write_text(RULE_PACK)
    assert main(["--list-rules", "--rules-dir", str(pack)]) == EXIT_OK
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert {f"BIL-{i:03d}" for i in range(1, 20)} | {"SCAN-001", "SCAN-002", "SCAN-003", "ORG-001"} <= listed
    assert main(["--explain", "bil-012"]) == EXIT_OK
    text = capsys.readouterr().out
    assert text.startswith("BIL-012") and "Why it matters" in text and "Remediation" in text
    assert "bedrock.amazonaws.com" in text
    assert main(["--explain", "BIL-0199"]) == EXIT_USAGE
    assert "no rule" in capsys.readouterr().err


@pytest.mark.parametrize(("lookback", "expected"), [pytest.param(3, "BIL-001", id="3-days-misses-old-use"),
                                                    pytest.param(14, "BIL-002", id="14-days-sees-it")])
def test_usage_lookback_days_reaches_the_metrics_collector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           lookback: int, expected: str) -> None:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws():
        boto3.client("cloudwatch", region_name=REGION).put_metric_data(Namespace="AWS/Bedrock", MetricData=[{
            "MetricName": "Invocations", "Dimensions": [{"Name": "ModelId", "Value": "m"}], "Value": 8,
            "Timestamp": dt.datetime.now(dt.UTC) - dt.timedelta(days=5)}])
        cfg = tmp_path / "c.yaml"
        cfg.write_text(f"usage_lookback_days: {lookback}\n")
        out = tmp_path / "out"
        code = main(["--regions", REGION, "--config", str(cfg), "--output-dir", str(out), "--format", "json",
                     "-q", "-q"])
    doc = json.loads((out / "findings.json").read_text())
    assert [f["rule_id"] for f in doc["findings"]] == [expected, "BIL-024"]  # not in an organization: no SCP
    assert code == EXIT_FINDINGS


@pytest.mark.parametrize("stop, expected", [
    pytest.param({}, {"interrupted": False, "timed_out": False, "complete": True}, id="finished"),
    pytest.param({"interrupted": True}, {"interrupted": True, "timed_out": False, "complete": False}, id="interrupted"),
    pytest.param({"timed_out": True}, {"interrupted": False, "timed_out": True, "complete": False}, id="timed-out"),
])
def test_replayed_facts_keep_how_the_scan_stopped(tmp_path: Path, facts: Path, stop: dict[str, bool],
                                                  expected: dict[str, bool], request: pytest.FixtureRequest) -> None:
    """Regression: facts saved by a scan that reached --timeout were replayed as a complete scan. The saved
    scan block carries interrupted and timed_out (test_interrupt saves them from a real deadline), and
    --from-facts reports them."""
    doc = json.loads(facts.read_text())
    doc["scan"].update(stop)
    facts.write_text(json.dumps(doc))
    code, out = run(tmp_path, facts, None)
    assert {k: out["scan"].get(k, False) for k in expected} == expected  # timed_out is written only when true
    assert any("deadline" in n for n in out["scan"]["notices"]) is expected["timed_out"]
    # the fixture's one finding (30-day retention) is below --fail-on; an interrupted scan's replay keeps its 130
    assert code == {"finished": EXIT_OK, "interrupted": 130, "timed-out": 3}[request.node.callspec.id]
