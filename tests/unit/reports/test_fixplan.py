"""The fix plan: merges, never deletes, is idempotent, leaves decisions to people, and validates against botocore."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from botocore.session import get_session
from botocore.validate import ParamValidator

from audit_bedrock.analyzer import confused_deputy_guarded, trusts_service
from audit_bedrock.collectors.logging_config import describe
from audit_bedrock.config import load_config
from audit_bedrock.derive import derive
from audit_bedrock.engine import Evaluator, load_rules
from audit_bedrock.findings import FindingBuilder
from audit_bedrock.model import Finding, ScanMeta, ScanResult
from audit_bedrock.reports import RenderContext
from audit_bedrock.reports.fixplan import COVERED, SID, FixPlan, FixPlanner, Step, render, render_shell, retention_for

ACCT, REGION = "111122223333", "us-east-1"
ROLE = f"arn:aws:iam::{ACCT}:role/BedrockLogs"
BEDROCK = "bedrock.amazonaws.com"
ALL = {"textDataDeliveryEnabled": True, "imageDataDeliveryEnabled": True, "embeddingDataDeliveryEnabled": True,
       "videoDataDeliveryEnabled": True, "audioDataDeliveryEnabled": True}
_MODELS: dict[str, Any] = {}


def validate_step(step: Step) -> None:
    """Parameters exactly as boto3 takes them: botocore's ParamValidator on the operation's input shape."""
    model = _MODELS.setdefault(step.service, get_session().get_service_model(step.service))
    shape = model.operation_model(step.operation).input_shape
    report = ParamValidator().validate(step.parameters, shape)
    assert not report.has_errors(), f"{step.operation}: {report.generate_report()}"


def validate_plan(doc: dict[str, Any]) -> None:
    """A fix-plan.json against the shipped schema (reports/fix-plan.schema.json)."""
    import jsonschema

    from audit_bedrock.reports.fixplan import schema
    jsonschema.validate(doc, schema(), cls=jsonschema.Draft202012Validator)


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


OTHER_STMT = {"Sid": "KeepMe", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:role/Reader"},
              "Action": "s3:GetObject", "Resource": "arn:aws:s3:::logs/*"}


def bucket(name: str = "logs", **kw: Any) -> dict[str, Any]:
    b: dict[str, Any] = {"name": name, "arn": f"arn:aws:s3:::{name}", "exists": True, "region": REGION,
                         "uses": [{"destination": "s3", "prefix": "bedrock"}], "policy": policy(OTHER_STMT),
                         "public_access_block": {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                                                 "BlockPublicPolicy": True, "RestrictPublicBuckets": True},
                         "object_ownership": "BucketOwnerEnforced", "acl": None, "encryption": None,
                         "lifecycle_rules": [{"ID": "other", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
                                              "Expiration": {"Days": 7}}]}
    b.update(kw)
    return b


def account(logging: dict[str, Any], buckets: list[dict[str, Any]] | None = None,
            roles: dict[str, Any] | None = None, log_group: dict[str, Any] | None = None,
            keys: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    rdoc = {"account_id": ACCT, "region": REGION, "status": "scanned", "logging": describe(logging),
            "buckets": buckets or [], "kms_keys": keys or [], "log_group": log_group, "usage": None}
    doc = {"account_id": ACCT, "account_name": "acct", "ou_path": "Root", "status": "scanned", "reason": "",
           "iam": {"roles": roles or {}, "unreferenced_bedrock_roles": [], "scanned_regions": [REGION],
                   "regions_subset": False, "unread_regions": []},
           "regions": [rdoc]}
    return derive(doc) or doc  # derive() returns the derived document (older versions derived in place)


def findings(doc: dict[str, Any]) -> list[Finding]:
    cfg = load_config(None)
    builder = FindingBuilder(cfg)
    return [builder.build(r, "acct") for r in Evaluator(load_rules([]), cfg.rule_params()).evaluate_account(doc)]


def plan_for(doc: dict[str, Any], fs: list[Finding] | None = None) -> tuple[FixPlan, list[Finding]]:
    fs = findings(doc) if fs is None else fs
    planner = FixPlanner()
    planner.add(doc, fs)
    return planner.plan(), fs


def step(plan: FixPlan, operation: str) -> Step:
    found = [s for s in plan.steps if s.operation == operation]
    assert len(found) == 1, [s.operation for s in plan.steps]
    return found[0]


def rules_of(fs: list[Finding]) -> set[str]:
    return {f.rule_id for f in fs if f.status == "open"}


def role(trust: dict[str, Any], inline: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {ROLE: {"arn": ROLE, "name": "BedrockLogs", "exists": True, "trust_policy": trust,
                   "inline_policies": inline or [], "attached_policies": [], "permissions_boundary": None}}


def cw_logging() -> dict[str, Any]:
    return {"cloudWatchConfig": {"logGroupName": "/bedrock/inv", "roleArn": ROLE,
                                 "largeDataDeliveryS3Config": {"bucketName": "logs", "keyPrefix": "large"}}, **ALL}


def group(**kw: Any) -> dict[str, Any]:
    g = {"name": "/bedrock/inv", "arn": f"arn:aws:logs:{REGION}:{ACCT}:log-group:/bedrock/inv", "region": REGION,
         "exists": True, "retention_days": 400, "kms_key_id": f"arn:aws:kms:{REGION}:{ACCT}:key/lg"}
    g.update(kw)
    return g


GOOD_TRUST = policy({"Effect": "Allow", "Principal": {"Service": BEDROCK}, "Action": "sts:AssumeRole",
                     "Condition": {"StringEquals": {"aws:SourceAccount": ACCT},
                                   "ArnLike": {"aws:SourceArn": f"arn:aws:bedrock:{REGION}:{ACCT}:*"}}})
GOOD_WRITE = [{"name": "w", "document": policy({
    "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
    "Resource": f"arn:aws:logs:{REGION}:{ACCT}:log-group:/bedrock/inv:log-stream:aws/bedrock/modelinvocations"})}]


def with_bedrock_bucket(**kw: Any) -> dict[str, Any]:
    kw.setdefault("policy", policy(OTHER_STMT, {"Effect": "Allow", "Principal": {"Service": BEDROCK},
                                                "Action": "s3:PutObject", "Resource": "arn:aws:s3:::logs/*"}))
    return bucket(**kw)


# --- each covered fault: a step that fixes it (checked by re-deriving the facts with the step applied) ---------

def apply(doc: dict[str, Any], plan: FixPlan) -> dict[str, Any]:
    """The facts as they would read after the plan: each step's effect written into a raw copy, then derived."""
    out = copy.deepcopy(doc)
    rdoc = out["regions"][0]
    for s in plan.steps:
        p = s.parameters
        b = next((b for b in rdoc["buckets"] if b["name"] == p.get("Bucket")), None)
        if s.operation == "PutBucketPolicy":
            b["policy"] = json.loads(p["Policy"])  # type: ignore[index]
        elif s.operation == "PutPublicAccessBlock":
            b["public_access_block"] = p["PublicAccessBlockConfiguration"]  # type: ignore[index]
        elif s.operation == "PutBucketOwnershipControls":
            b["object_ownership"], b["acl"] = "BucketOwnerEnforced", None  # type: ignore[index]
        elif s.operation == "PutBucketLifecycleConfiguration":
            b["lifecycle_rules"] = p["LifecycleConfiguration"]["Rules"]  # type: ignore[index]
        elif s.operation == "UpdateAssumeRolePolicy":
            out["iam"]["roles"][ROLE]["trust_policy"] = json.loads(p["PolicyDocument"])
        elif s.operation == "PutRolePolicy":
            r = out["iam"]["roles"][ROLE]
            r["inline_policies"] = [*(x for x in r["inline_policies"] if x["name"] != p["PolicyName"]),
                                    {"name": p["PolicyName"], "document": json.loads(p["PolicyDocument"])}]
        elif s.operation == "CreateLogGroup":
            rdoc["log_group"] = group(retention_days=None)
        elif s.operation == "PutRetentionPolicy":
            rdoc["log_group"]["retention_days"] = p["retentionInDays"]
        elif s.operation == "PutModelInvocationLoggingConfiguration":
            rdoc["logging"] = describe(p["loggingConfig"])
        elif s.operation == "PutKeyPolicy":
            rdoc["kms_keys"][0]["policy"] = json.loads(p["Policy"])
        elif s.operation in ("EnableKey", "CancelKeyDeletion"):
            rdoc["kms_keys"][0]["state"] = "Enabled" if s.operation == "EnableKey" else "Disabled"
    return derive(out) or out


KEY = f"arn:aws:kms:{REGION}:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def key(**kw: Any) -> dict[str, Any]:
    k = {"ref": KEY, "arn": KEY, "exists": True, "state": "Enabled", "manager": "CUSTOMER",
         "policy": policy({"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
                           "Action": "kms:*", "Resource": "*"}),
         "used_by": [{"kind": "bucket", "name": "logs"}]}
    k.update(kw)
    return k


def s3_logging(**flags: bool) -> dict[str, Any]:
    return {"s3Config": {"bucketName": "logs", "keyPrefix": "bedrock"}, **{**ALL, **flags}}


FAULTS: list[Any] = [
    pytest.param("BIL-003", lambda: account(s3_logging(videoDataDeliveryEnabled=False, audioDataDeliveryEnabled=False),
                                            [with_bedrock_bucket()]),
                 ["PutModelInvocationLoggingConfiguration"], id="BIL-003"),
    pytest.param("BIL-005", lambda: account(cw_logging(), [with_bedrock_bucket()], role(GOOD_TRUST, GOOD_WRITE),
                                            {"name": "/bedrock/inv", "arn": group()["arn"], "region": REGION,
                                             "exists": False, "retention_days": None, "kms_key_id": None}),
                 ["CreateLogGroup", "PutRetentionPolicy"], id="BIL-005"),
    pytest.param("BIL-007", lambda: account(cw_logging(), [with_bedrock_bucket()], role(policy(
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}), GOOD_WRITE),
        group()), ["UpdateAssumeRolePolicy"], id="BIL-007"),
    pytest.param("BIL-008", lambda: account(cw_logging(), [with_bedrock_bucket()], role(policy(
        {"Effect": "Allow", "Principal": {"Service": [BEDROCK, "lambda.amazonaws.com"]},
         "Action": "sts:AssumeRole"}), GOOD_WRITE), group()), ["UpdateAssumeRolePolicy"], id="BIL-008-split"),
    pytest.param("BIL-009", lambda: account(cw_logging(), [with_bedrock_bucket()], role(GOOD_TRUST, [
        {"name": "w", "document": policy({"Effect": "Allow", "Action": "logs:PutLogEvents",
                                          "Resource": "arn:aws:logs:*:*:log-group:/old:*"})}]), group()),
                 ["PutRolePolicy"], id="BIL-009"),
    pytest.param("BIL-012", lambda: account(s3_logging(), [bucket()]), ["PutBucketPolicy"], id="BIL-012"),
    pytest.param("BIL-013", lambda: account(s3_logging(), [with_bedrock_bucket(
        policy=policy(OTHER_STMT, {"Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                   "Resource": "arn:aws:s3:::logs/*"},
                      {"Effect": "Allow", "Principal": {"Service": BEDROCK}, "Action": "s3:PutObject",
                       "Resource": "arn:aws:s3:::logs/*"}), public_access_block=None)]),
        ["PutPublicAccessBlock"], id="BIL-013"),
    pytest.param("BIL-014", lambda: account(cw_logging(), [with_bedrock_bucket()], role(GOOD_TRUST, GOOD_WRITE),
                                            group(retention_days=None)), ["PutRetentionPolicy"], id="BIL-014"),
    pytest.param("BIL-015", lambda: account(s3_logging(), [with_bedrock_bucket()]), ["PutBucketLifecycleConfiguration"],
                 id="BIL-015"),
    pytest.param("BIL-018", lambda: account(s3_logging(), [with_bedrock_bucket(
        object_ownership="ObjectWriter", acl=[{"type": "CanonicalUser", "id": "owner", "uri": None,
                                               "permission": "FULL_CONTROL"}])]),
        ["PutBucketOwnershipControls"], id="BIL-018"),
    pytest.param("BIL-019", lambda: account(s3_logging(), [with_bedrock_bucket(
        encryption={"algorithm": "aws:kms", "kms_key_id": KEY, "bucket_key_enabled": True})], keys=[key()]),
        ["PutKeyPolicy"], id="BIL-019-policy"),
    pytest.param("BIL-019", lambda: account(s3_logging(), [with_bedrock_bucket(
        encryption={"algorithm": "aws:kms", "kms_key_id": KEY, "bucket_key_enabled": True})],
        keys=[key(state="PendingDeletion", policy=policy({"Effect": "Allow", "Principal": {"Service": BEDROCK},
                                                          "Action": "kms:GenerateDataKey", "Resource": "*"}))]),
        ["CancelKeyDeletion", "EnableKey"], id="BIL-019-pending"),
]


@pytest.mark.parametrize(("rule", "make", "operations"), FAULTS)
def test_each_covered_fault_gets_a_step_that_fixes_it(rule: str, make: Callable[[], dict[str, Any]],
                                                      operations: list[str]) -> None:
    doc = make()
    plan, fs = plan_for(doc)
    assert rule in rules_of(fs), "the fixture does not show the fault"
    target = {f.id for f in fs if f.rule_id == rule}
    ops = [s.operation for s in plan.steps if target & set(s.fixes)]
    assert ops == operations
    for s in plan.steps:
        validate_step(s)
    after = findings(apply(doc, plan))
    assert rule not in rules_of(after)
    before_ids = {f.id for f in fs}
    assert not [f for f in after if f.id not in before_ids and f.severity in ("critical", "high")]


def test_covered_list_matches_the_issue() -> None:
    assert set(COVERED) == {f"BIL-0{n:02d}" for n in (3, 5, 7, 8, 9, 12, 13, 14, 15, 18, 19)}
    assert {p.values[0] for p in FAULTS} == set(COVERED)


# --- merge, never delete, idempotent -------------------------------------------------------------------------

def test_bucket_policy_keeps_every_statement_and_is_idempotent() -> None:
    doc = account(s3_logging(), [bucket()])
    plan, _ = plan_for(doc)
    pol = json.loads(step(plan, "PutBucketPolicy").parameters["Policy"])
    assert OTHER_STMT in pol["Statement"]
    ours = [s for s in pol["Statement"] if s.get("Sid") == SID]
    assert len(ours) == 1 and ours[0]["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCT
    assert ours[0]["Resource"] == f"arn:aws:s3:::logs/bedrock/AWSLogs/{ACCT}/BedrockModelInvocationLogs/*"
    # planning again from a policy that already has our statement (say, a half-applied run) writes the same document
    again_doc = copy.deepcopy(doc)
    again_doc["regions"][0]["buckets"][0]["policy"] = pol
    planner = FixPlanner()
    planner.add(again_doc, [f for f in findings(doc) if f.rule_id == "BIL-012"])
    assert json.loads(step(planner.plan(), "PutBucketPolicy").parameters["Policy"]) == pol


def test_trust_split_keeps_the_other_service() -> None:
    doc = FAULTS[3].values[1]()
    plan, _ = plan_for(doc)
    trust = json.loads(step(plan, "UpdateAssumeRolePolicy").parameters["PolicyDocument"])
    assert trusts_service(trust, "lambda.amazonaws.com")
    assert trusts_service(trust, BEDROCK) and confused_deputy_guarded(trust, BEDROCK)


def test_lifecycle_keeps_existing_rules() -> None:
    plan, _ = plan_for(account(s3_logging(), [with_bedrock_bucket()]))
    rules = step(plan, "PutBucketLifecycleConfiguration").parameters["LifecycleConfiguration"]["Rules"]
    assert rules[0]["ID"] == "other" and rules[0]["Expiration"] == {"Days": 7}
    assert all("Expiration" not in r for r in rules[1:])  # ours only transitions: nothing is deleted


@pytest.mark.parametrize(("wanted", "days"), [(90, 90), (91, 120), (1, 1), (5000, 3653)])
def test_retention_is_a_value_cloudwatch_accepts(wanted: int, days: int) -> None:
    assert retention_for(wanted) == days


def test_no_step_deletes_anything() -> None:
    for p in FAULTS:
        plan, _ = plan_for(p.values[1]())
        assert not [s for s in plan.steps if s.operation.startswith(("Delete", "Remove", "Detach", "Disable"))]


# --- decisions are left to people ------------------------------------------------------------------------------

NOTES: list[Any] = [
    pytest.param("BIL-011", lambda: account(s3_logging(), [{
        "name": "gone", "arn": "arn:aws:s3:::gone", "exists": False,
        "uses": [{"destination": "s3", "prefix": "bedrock"}]}]), "Which bucket", id="BIL-011"),
    pytest.param("BIL-003", lambda: account(
        {"cloudWatchConfig": {"logGroupName": "/bedrock/inv", "roleArn": ROLE}, **ALL,
         "imageDataDeliveryEnabled": False}, [], role(GOOD_TRUST, GOOD_WRITE), group()),
        "large-data bucket", id="BIL-003-cloudwatch-only-binary"),
    pytest.param("BIL-012", lambda: account(s3_logging(), [bucket(policy=policy(OTHER_STMT, {
        "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::logs/*"}))]),
                 "explicit Deny", id="BIL-012-explicit-deny"),
    pytest.param("BIL-018", lambda: account(s3_logging(), [with_bedrock_bucket(
        object_ownership="ObjectWriter", acl=[{"type": "CanonicalUser", "id": "owner", "permission": "FULL_CONTROL"},
                                              {"type": "CanonicalUser", "id": "partner", "permission": "READ"}])]),
        "beyond the owner", id="BIL-018-foreign-grant"),
    pytest.param("BIL-019", lambda: account(s3_logging(), [with_bedrock_bucket(
        encryption={"algorithm": "aws:kms", "kms_key_id": KEY, "bucket_key_enabled": True})],
        keys=[key(manager="AWS")]), "aws/s3", id="BIL-019-aws-managed"),
]


@pytest.mark.parametrize(("rule", "make", "words"), NOTES)
def test_a_decision_gets_a_note_and_no_step(rule: str, make: Callable[[], dict[str, Any]], words: str) -> None:
    plan, fs = plan_for(make())
    target = {f.id for f in fs if f.rule_id == rule}
    assert target
    assert not [s for s in plan.steps if target & set(s.fixes)]
    notes = [m for m in plan.manual if target & set(m.fixes)]
    assert notes and words in notes[0].note


def test_suppressed_findings_are_left_out() -> None:
    from dataclasses import replace
    doc = account(s3_logging(), [bucket()])
    fs = [replace(f, status="suppressed") for f in findings(doc)]
    plan, _ = plan_for(doc, fs)
    assert not plan.steps and not plan.manual


# --- renderers ---------------------------------------------------------------------------------------------------

def _result() -> ScanResult:
    meta = ScanMeta("2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "o-abc", ACCT, (REGION,), (), 1)
    return ScanResult(meta, (), ())


def test_plan_json_and_shell() -> None:
    plan, _ = plan_for(FAULTS[1].values[1]())  # BIL-005: a create with ok_if_error
    ctx = RenderContext(fix_plan=plan)
    doc = json.loads(render(_result(), ctx))
    validate_plan(doc)
    assert doc["schema_version"] == 1 and doc["steps"]
    for s in doc["steps"]:
        assert set(s) - {"ok_if_error"} == {"account_id", "region", "service", "operation", "parameters", "fixes",
                                              "note"}
    assert doc["steps"][0]["operation"] == "CreateLogGroup" and doc["steps"][0]["ok_if_error"]
    sh = render_shell(_result(), ctx).decode()
    assert "set -euo pipefail" in sh and f'--profile "$PROFILE_{ACCT}"' in sh and "export AWS_PAGER=\"\"" in sh
    assert f': "${{PROFILE_{ACCT}:?' in sh
    assert "aws logs create-log-group" in sh and "aws logs put-retention-policy" in sh
    subprocess.run(["bash", "-n"], input=sh, text=True, check=True)


def test_renderer_without_a_plan_refuses() -> None:
    with pytest.raises(ValueError, match="facts"):
        render(_result(), RenderContext())


# --- fix-plan.sh runs exactly the plan's calls, whatever AWS-controlled names hold -------------------------------

HOSTILE = "x'; touch PWNED; echo '\n$(touch PWNED2)`touch PWNED3`\r\u2028\"$HOME\\"
FAKE_AWS = """#!{python}
import json, os, sys
with open(os.environ["AWS_LOG"], "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
fail = os.environ.get("AWS_FAIL", "")
if fail and fail in sys.argv[2]:
    print("An error occurred (" + os.environ["AWS_FAIL_CODE"] + ") when calling the operation", file=sys.stderr)
    sys.exit(254)
"""


def hostile_plan() -> tuple[FixPlan, ScanResult]:
    """A key prefix and an account name that try every way out of a quoted word or a comment."""
    from audit_bedrock.model import AccountOutcome
    doc = account({"s3Config": {"bucketName": "logs", "keyPrefix": HOSTILE}, **ALL},
                  [bucket(uses=[{"destination": "s3", "prefix": HOSTILE}], policy=None, lifecycle_rules=[])])
    plan, _ = plan_for(doc)
    bil5, _ = plan_for(FAULTS[1].values[1]())  # CreateLogGroup (ok_if_error) and PutRetentionPolicy
    meta = ScanMeta("2026-01-01T00:00:00Z\n$(touch PWNED4)", "2026-01-01T00:01:00Z", "o-abc\ntouch PWNED5", ACCT,
                    (REGION,), (AccountOutcome(ACCT, f"evil{HOSTILE}", "Root", "scanned"),), 1)
    return FixPlan(plan.steps + bil5.steps, plan.manual), ScanResult(meta, (), ())


def run_script(tmp_path: Any, plan: FixPlan, result: ScanResult, **env: str) -> tuple[int, list[list[str]], str]:
    import os
    import sys

    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    fake = bindir / "aws"
    fake.write_text(FAKE_AWS.format(python=sys.executable))
    fake.chmod(0o755)
    script = tmp_path / "fix-plan.sh"
    script.write_bytes(render_shell(result, RenderContext(fix_plan=plan)))
    log = tmp_path / "aws.log"
    log.write_text("")
    proc = subprocess.run(["bash", str(script)], cwd=tmp_path, capture_output=True, text=True, check=False,
                          env={"PATH": f"{bindir}:{os.environ['PATH']}", "HOME": str(tmp_path), "AWS_LOG": str(log),
                               **env})
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return proc.returncode, calls, proc.stdout + proc.stderr


def expected_argv(s: Step, profile: str) -> list[str]:
    from botocore import xform_name
    service = {"s3": "s3api"}.get(s.service, s.service)
    return [service, xform_name(s.operation, "-"), "--profile", profile, *(["--region", s.region] if s.region else []),
            "--cli-input-json", json.dumps(s.parameters, sort_keys=True)]


def test_shell_makes_exactly_the_plans_calls_with_hostile_names(tmp_path: Any) -> None:
    plan, result = hostile_plan()
    assert any(HOSTILE in json.dumps(s.parameters) or HOSTILE.replace("\n", "") in json.dumps(s.parameters)
               or "PWNED" in json.dumps(s.parameters) for s in plan.steps), "the fixture carries no hostile value"
    rc, calls, out = run_script(tmp_path, plan, result, **{f"PROFILE_{ACCT}": "prof'ile $x"})
    assert rc == 0, out
    assert calls == [expected_argv(s, "prof'ile $x") for s in plan.steps]
    assert [json.loads(c[-1]) for c in calls] == [s.parameters for s in plan.steps]  # the values, byte for byte
    assert not list(tmp_path.glob("PWNED*")), "a name ran a command"
    text = render_shell(result, RenderContext(fix_plan=plan)).decode()
    comments = [line for line in text.splitlines() if "PWNED" in line and not line.startswith(("aws ", "ok_if "))]
    assert comments and all(line.startswith("# ") for line in comments)  # only inside one-line comments


@pytest.mark.parametrize(("env", "rc", "ran"), [
    pytest.param({}, 1, 0, id="profile-unset-runs-nothing"),
    pytest.param({"AWS_FAIL": "create-log-group", "AWS_FAIL_CODE": "ResourceAlreadyExistsException"}, 0, None,
                 id="already-exists-is-done"),
    pytest.param({"AWS_FAIL": "create-log-group", "AWS_FAIL_CODE": "AccessDeniedException"}, 1, 3,
                 id="other-error-stops-the-script"),  # the third step: nothing after it runs
    pytest.param({"AWS_FAIL": "put-bucket-policy", "AWS_FAIL_CODE": "MalformedPolicy"}, 1, 1,
                 id="a-failed-step-stops-the-script"),
])
def test_shell_stops_on_errors_but_not_on_done(tmp_path: Any, env: dict[str, str], rc: int, ran: int | None) -> None:
    plan, result = hostile_plan()
    assert [s.operation for s in plan.steps][:3] == ["PutBucketPolicy", "PutBucketLifecycleConfiguration",
                                                     "CreateLogGroup"]
    profile = {f"PROFILE_{ACCT}": "p"} if env else {}  # the first case leaves the profile unset
    got_rc, calls, out = run_script(tmp_path, plan, result, **profile, **env)
    assert (got_rc != 0) == bool(rc), out
    assert len(calls) == (len(plan.steps) if ran is None else ran)
