"""The deploy/ templates: cfn-lint clean, the audit role's trust, the scheduled scan's wiring and least privilege,
and the Lambda zip built by `make lambda-package`."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest

from audit_bedrock import aws_lambda, policy
from audit_bedrock.analyzer import Request, allows
from tests.support.cfn_template import DEPLOY, TEMPLATES, Resolver, load

ROOT = DEPLOY.parent
AUDIT_ROLE = DEPLOY / "audit-role.yaml"
SCHEDULED = DEPLOY / "scheduled-scan.yaml"
SCANNER = "arn:aws:iam::111111111111:role/audit-bedrock-scanner"
ORG = "o-abcdef1234"
SCHEDULED_PARAMS = {"CodeBucket": "code-bucket"}


def lint(text: str) -> list[str]:
    """cfn-lint's errors and warnings with its default rules, as the `cfn-lint` command reports them."""
    from cfnlint.api import lint as cfn_lint

    return [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in cfn_lint(text) if m.rule.id[0] in "EW"]


def test_every_template_is_covered() -> None:
    assert {p.name for p in TEMPLATES} == {"audit-role.yaml", "scheduled-scan.yaml"}


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_passes(template: Path) -> None:
    assert lint(template.read_text()) == []


@pytest.mark.parametrize(("old", "new", "rule"), [
    pytest.param("Runtime: python3.12", "Runtime: python2.7", "E", id="bad-runtime"),
    pytest.param("!GetAtt ScannerRole.Arn", "!GetAtt NoSuchRole.Arn", "E", id="dangling-reference"),
])
def test_cfn_lint_catches_a_broken_template(old: str, new: str, rule: str) -> None:
    text = SCHEDULED.read_text()
    assert old in text
    assert any(m.startswith(rule) for m in lint(text.replace(old, new, 1)))


# ----------------------------------------------------------------------------------------- audit role

def trust(external_id: str, principal_arn: str = SCANNER) -> dict[str, Any]:
    r = Resolver(load(AUDIT_ROLE), {"ScannerPrincipalArn": principal_arn, "OrganizationId": ORG,
                                    "ExternalId": external_id})
    doc: dict[str, Any] = r.resource("AuditRole")["AssumeRolePolicyDocument"]
    return doc


def assume(principal: str, org: str = ORG, external_id: str | None = None) -> Request:
    ctx: dict[str, str] = {"aws:PrincipalOrgID": org, "aws:PrincipalArn": principal}
    if external_id is not None:
        ctx["sts:ExternalId"] = external_id
    return Request("sts:AssumeRole", "*", principal={"AWS": principal}, context=ctx)


@pytest.mark.parametrize(("external_id", "request_", "allowed"), [
    pytest.param("", assume(SCANNER), True, id="scanner"),
    pytest.param("", assume(SCANNER, org="o-zzzzzzzzzz"), False, id="other-organization"),
    pytest.param("", assume("arn:aws:iam::111111111111:role/Admin"), False, id="other-role-same-account"),
    pytest.param("", assume("arn:aws:iam::222222222222:role/audit-bedrock-scanner"), False, id="other-account"),
    pytest.param("s3cr3t-id", assume(SCANNER, external_id="s3cr3t-id"), True, id="external-id"),
    pytest.param("s3cr3t-id", assume(SCANNER), False, id="external-id-missing"),
    pytest.param("s3cr3t-id", assume(SCANNER, external_id="guess"), False, id="external-id-wrong"),
])
def test_audit_role_trust(external_id: str, request_: Request, allowed: bool) -> None:
    doc = trust(external_id)
    assert allows([doc], request_) is allowed
    (stmt,) = doc["Statement"]
    assert stmt["Principal"] == {"AWS": "arn:aws:iam::111111111111:root"}
    assert stmt["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == ORG
    assert ("sts:ExternalId" in stmt["Condition"]["StringEquals"]) is bool(external_id)


def test_audit_role_trust_accepts_an_sso_role_pattern() -> None:
    pattern = "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_SecurityAudit_*"
    sso = "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_SecurityAudit_ab12"
    assert allows([trust("", pattern)], assume(sso))
    assert not allows([trust("", pattern)], assume("arn:aws:iam::111111111111:role/AWSReservedSSO_Admin_ab12"))


def test_audit_role_parameters() -> None:
    params = load(AUDIT_ROLE)["Parameters"]
    assert set(params) == {"RoleName", "ScannerPrincipalArn", "ExternalId", "OrganizationId",
                           "SecurityHubImportPrincipalArn", "SecurityHubImportRoleName"}
    assert params["ExternalId"]["Default"] == "" and params["SecurityHubImportPrincipalArn"]["Default"] == ""
    role = Resolver(load(AUDIT_ROLE), {"ScannerPrincipalArn": SCANNER, "OrganizationId": ORG,
                                       "RoleName": "AuditBedrockRole"}).resource("AuditRole")
    assert role["RoleName"] == "AuditBedrockRole"


MERGE = "arn:aws:iam::111111111111:role/audit-bedrock-merge"


@pytest.mark.parametrize(("principal", "created"), [pytest.param("", False, id="off-by-default"),
                                                     pytest.param(MERGE, True, id="asked-for")])
def test_import_role_exists_only_when_asked(principal: str, created: bool) -> None:
    r = Resolver(load(AUDIT_ROLE), {"ScannerPrincipalArn": SCANNER, "OrganizationId": ORG,
                                    "SecurityHubImportPrincipalArn": principal})
    assert r.conditions["CreateImportRole"] is created
    # the audit role never holds the import permission
    assert not allows(policies(r, "AuditRole"), Request("securityhub:BatchImportFindings",
                                                        "arn:aws:securityhub:us-east-1:222222222222:product/"
                                                        "222222222222/default"))


@pytest.mark.parametrize(("resource", "allowed"), [
    pytest.param("arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default", True,
                 id="own-findings"),
    pytest.param("arn:aws:securityhub:eu-west-1:999999999999:product/999999999999/default", False,
                 id="not-another-account"),
])
def test_import_role_may_only_import_its_accounts_findings(resource: str, allowed: bool) -> None:
    r = Resolver(load(AUDIT_ROLE), {"ScannerPrincipalArn": SCANNER, "OrganizationId": ORG,
                                    "SecurityHubImportPrincipalArn": MERGE})
    docs = policies(r, "SecurityHubImportRole")
    assert allows(docs, Request("securityhub:BatchImportFindings", resource)) is allowed
    assert not allows(docs, Request("securityhub:BatchUpdateFindings", resource))


# ------------------------------------------------------------------------------------- scheduled scan

@pytest.fixture(scope="module")
def sched() -> Resolver:
    return Resolver(load(SCHEDULED), SCHEDULED_PARAMS)


def as_arn(value: Any) -> Any:
    """The resolver's `<LogicalId>`/`<LogicalId.Attr>` placeholders as ARN-shaped stand-ins, in documents and
    requests alike: the analyzer, like IAM, grants nothing on an entry that is not a six-field ARN pattern."""
    if isinstance(value, str):
        return re.sub(r"<([A-Za-z0-9]+(?:\.[A-Za-z]+)?)>", r"arn:aws:cfn:::\1", value)
    if isinstance(value, list):
        return [as_arn(v) for v in value]
    return {k: as_arn(v) for k, v in value.items()} if isinstance(value, dict) else value


def policies(r: Resolver, role: str) -> list[dict[str, Any]]:
    return [as_arn(p["PolicyDocument"]) for p in r.resource(role)["Policies"]]


def on(action: str, resource: str, **context: str) -> Request:
    return Request(action, as_arn(resource), context=context)


def test_schedule_starts_the_state_machine(sched: Resolver) -> None:
    sch = sched.resource("Schedule")
    assert sch["Target"]["Arn"] == "<StateMachine>" and sch["Target"]["RoleArn"] == "<SchedulerRole.Arn>"
    assert sch["ScheduleExpression"] == sched.params["ScheduleExpression"]
    assert allows(policies(sched, "SchedulerRole"), on("states:StartExecution", "<StateMachine>"))


def test_state_machine_maps_shards_then_merges(sched: Resolver) -> None:
    sm = sched.resource("StateMachine")
    d, subs = sm["Definition"], sm["DefinitionSubstitutions"]
    assert subs == {"ShardFunctionArn": "<ShardFunction.Arn>", "MergeFunctionArn": "<MergeFunction.Arn>",
                    "ShardCount": sched.params["ShardCount"]}
    plan, scan, merge = d["States"]["Plan"], d["States"]["ScanShards"], d["States"]["Merge"]
    assert (d["StartAt"], plan["Next"], scan["Next"], merge.get("End")) == ("Plan", "ScanShards", "Merge", True)
    assert plan["Parameters"]["shards.$"] == "States.ArrayRange(1, ${ShardCount}, 1)"
    assert scan["Type"] == "Map" and scan["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    worker = scan["ItemProcessor"]["States"]["ScanShard"]
    assert worker["Parameters"]["FunctionName"] == "${ShardFunctionArn}"
    # The shard event is exactly what shard_handler reads; the merge event is what merge_handler reads.
    assert set(scan["ItemSelector"]) == {"run_id.$", "shard.$", "shard_count.$"}
    assert merge["Parameters"]["FunctionName"] == "${MergeFunctionArn}"
    assert set(merge["Parameters"]["Payload"]) == {"run_id.$", "shards.$"}
    assert scan["ResultPath"] == "$.shards" and worker["OutputPath"] == "$.Payload"


@pytest.mark.parametrize(("function", "env"), [
    pytest.param("ShardFunction", aws_lambda.SHARD_ENV, id="shard"),
    pytest.param("MergeFunction", aws_lambda.MERGE_ENV, id="merge"),
])
def test_functions_point_at_real_handlers(sched: Resolver, function: str, env: tuple[str, ...]) -> None:
    fn = sched.resource(function)
    module, name = fn["Handler"].rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name))
    assert set(fn["Environment"]["Variables"]) == set(env)
    assert fn["Code"] == {"S3Bucket": "code-bucket", "S3Key": sched.params["CodeKey"]}
    assert fn["Runtime"] == "python3.12" and fn["Timeout"] <= 900


def run_keys() -> dict[str, str]:
    lay = aws_lambda.Layout("b")
    return {"shard": f"<ReportBucket.Arn>/{lay.shard_dir('r1', 2, 4)}/findings.json",
            "report": f"<ReportBucket.Arn>/{lay.report_dir('r1')}/report.html",
            "latest": f"<ReportBucket.Arn>/{lay.latest_dir()}/findings.json"}


@pytest.mark.parametrize(("role", "action", "resource", "allowed"), [
    pytest.param("ScannerRole", "s3:PutObject", "shard", True, id="scanner-writes-its-shard"),
    pytest.param("ScannerRole", "s3:PutObject", "latest", False, id="scanner-cannot-write-latest"),
    pytest.param("ScannerRole", "s3:GetObject", "shard", False, id="scanner-cannot-read"),
    pytest.param("ScannerRole", "sts:AssumeRole", "arn:aws:iam::222222222222:role/AuditBedrockRole", True,
                 id="scanner-assumes-audit-role"),
    pytest.param("ScannerRole", "sts:AssumeRole", "arn:aws:iam::222222222222:role/Admin", False,
                 id="scanner-assumes-nothing-else"),
    pytest.param("ScannerRole", "sns:Publish", "<NotificationTopic>", False, id="scanner-cannot-notify"),
    pytest.param("MergeRole", "s3:GetObject", "shard", True, id="merge-reads-shards"),
    pytest.param("MergeRole", "s3:PutObject", "report", True, id="merge-writes-report"),
    pytest.param("MergeRole", "s3:GetObject", "latest", True, id="merge-reads-baseline"),
    pytest.param("MergeRole", "s3:PutObject", "latest", True, id="merge-promotes-latest"),
    pytest.param("MergeRole", "s3:DeleteObject", "latest", False, id="merge-cannot-delete"),
    pytest.param("MergeRole", "sns:Publish", "<NotificationTopic>", True, id="merge-notifies"),
    pytest.param("MergeRole", "sts:AssumeRole", "arn:aws:iam::222222222222:role/AuditBedrockRole", False,
                 id="merge-cannot-scan"),
    pytest.param("StateMachineRole", "lambda:InvokeFunction", "<ShardFunction.Arn>", True, id="sm-invokes-shard"),
    pytest.param("StateMachineRole", "lambda:InvokeFunction", "<MergeFunction.Arn>", True, id="sm-invokes-merge"),
    pytest.param("StateMachineRole", "states:StartExecution",
                 "arn:aws:states:us-east-1:123456789012:stateMachine:audit-bedrock-scan", True, id="sm-map-runs"),
    pytest.param("StateMachineRole", "states:StartExecution",
                 "arn:aws:states:us-east-1:123456789012:stateMachine:other", False, id="sm-no-other-machine"),
])
def test_least_privilege(sched: Resolver, role: str, action: str, resource: str, allowed: bool) -> None:
    resource = run_keys().get(resource, resource)
    assert allows(policies(sched, role), on(action, resource)) is allowed


def test_merge_can_list_only_the_baseline_and_the_run_history(sched: Resolver) -> None:
    docs = policies(sched, "MergeRole")
    listing = on("s3:ListBucket", "<ReportBucket.Arn>", **{"s3:prefix": "latest/findings.json"})
    assert allows(docs, listing)
    assert allows(docs, on("s3:ListBucket", "<ReportBucket.Arn>", **{"s3:prefix": "runs/"}))
    assert not allows(docs, on("s3:ListBucket", "<ReportBucket.Arn>", **{"s3:prefix": ""}))


@pytest.mark.parametrize(("flag", "imports"), [pytest.param("false", False, id="off-by-default"),
                                               pytest.param("true", True, id="on")])
def test_merge_imports_into_security_hub_only_when_asked(flag: str, imports: bool) -> None:
    r = Resolver(load(SCHEDULED), {**SCHEDULED_PARAMS, "SecurityHubImport": flag})
    docs = policies(r, "MergeRole")
    own = "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default"  # PSEUDO AWS::AccountId
    assert allows(docs, on("securityhub:BatchImportFindings", own)) is imports
    member_role = "arn:aws:iam::222222222222:role/AuditBedrockSecurityHubImport"
    assert allows(docs, on("sts:AssumeRole", member_role)) is imports
    assert not allows(docs, on("sts:AssumeRole", "arn:aws:iam::222222222222:role/AuditBedrockRole"))
    env = r.resource("MergeFunction")["Environment"]["Variables"]
    assert env[aws_lambda.ENV_SECURITY_HUB_IMPORT] == flag


def test_no_write_or_wildcard_action_outside_the_report_bucket(sched: Resolver) -> None:
    for role in ("ScannerRole", "MergeRole", "StateMachineRole", "SchedulerRole"):
        for doc in policies(sched, role):
            for stmt in doc["Statement"]:
                actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
                for a in actions:
                    assert a != "*" and not a.endswith(":*"), (role, a)
                    if stmt["Resource"] == "*":
                        assert a.startswith("organizations:") or a.split(":")[1].startswith(
                            policy.READ_ONLY_VERBS), (role, a)


# ----------------------------------------------------------------------------------------- lambda zip

@pytest.mark.slow
def test_lambda_package_builds_and_the_handler_imports_from_the_zip(tmp_path: Path) -> None:
    out = tmp_path / "audit-bedrock-lambda.zip"
    proc = subprocess.run(["make", "-s", "lambda-package", f"LAMBDA_ZIP={out}",
                           f"LAMBDA_ARGS=--build-dir {tmp_path / 'tree'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=540, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = zipfile.ZipFile(out).namelist()
    assert "audit_bedrock/aws_lambda.py" in names and "audit_bedrock/rules/BIL-001.yaml" in names
    assert any(n.startswith("yaml/") for n in names) and any(n.startswith("jinja2/") for n in names)
    assert not any(n.startswith(("boto3/", "botocore/")) for n in names)  # the runtime provides the SDK
    assert not any("__pycache__" in n for n in names)

    # No site (so not this checkout's editable install): the zip first, then the venv for boto3/botocore only.
    site = sysconfig.get_paths()["purelib"]
    code = f"""
import sys
sys.path[:0] = [{str(out)!r}]
sys.path.append({site!r})
import audit_bedrock.aws_lambda as h, yaml, jinja2, botocore
assert h.__file__.startswith({str(out)!r}), h.__file__
assert yaml.__file__.startswith({str(out)!r}) and jinja2.__file__.startswith({str(out)!r})
assert not botocore.__file__.startswith({str(out)!r})
print(callable(h.shard_handler) and callable(h.merge_handler))
"""
    run = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, check=False)
    assert run.returncode == 0 and run.stdout.strip() == "True", run.stderr

    # As Lambda runs it (the zip extracted): package data loads, the CLI works.
    task = tmp_path / "task"
    zipfile.ZipFile(out).extractall(task)
    code = f"""
import sys
sys.path[:0] = [{str(task)!r}]
sys.path.append({site!r})
from audit_bedrock import cli
sys.exit(cli.main(["--print-policy"]))
"""
    run = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, check=False)
    assert run.returncode == 0, run.stderr
    from audit_bedrock.policy import member_policy
    assert json.loads(run.stdout) == member_policy()


# ------------------------------------------------------------------------------------ README commands

def readme_deploy() -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index("## Deploy"):text.index("\n## ", text.index("## Deploy") + 1)]


def test_readme_stackset_parameters_exist() -> None:
    import re

    section = readme_deploy()
    assert "--permission-model SERVICE_MANAGED" in section and "--auto-deployment Enabled=true" in section
    keys = set(re.findall(r"ParameterKey=(\w+)", section))
    assert keys and keys <= set(load(AUDIT_ROLE)["Parameters"])
    required = {k for k, v in load(AUDIT_ROLE)["Parameters"].items() if "Default" not in v}
    assert required <= keys


def test_readme_scheduled_scan_overrides_exist() -> None:
    import re

    section = readme_deploy()
    block = section[section.index("--template-file deploy/scheduled-scan.yaml"):]
    block = block[block.index("--parameter-overrides"):]
    block = block[:block.index("\n#")]  # up to the next command's comment
    overrides = set(re.findall(r"\b([A-Z]\w+)=", block))
    params = load(SCHEDULED)["Parameters"]
    assert overrides and overrides <= set(params)
    assert {k for k, v in params.items() if "Default" not in v} <= overrides
    outputs = set(load(SCHEDULED)["Outputs"])
    assert {"StateMachineArn", "ScannerRoleArn"} <= outputs and "'StateMachineArn'" in section
