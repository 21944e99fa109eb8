"""The audit-role and caller policies: generated from the collectors' declarations, shipped in the templates,
printed by --print-policy, and sufficient for every call a real scan makes."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from audit_bedrock import cli, collectors, policy
from audit_bedrock.analyzer import Request, allows
from tests.support.cfn_template import DEPLOY, Resolver, load

AUDIT_ROLE = DEPLOY / "audit-role.yaml"
SCHEDULED = DEPLOY / "scheduled-scan.yaml"
ROLE_PARAMS = {"ScannerPrincipalArn": "arn:aws:iam::111111111111:role/audit-bedrock-scanner",
               "OrganizationId": "o-abcdef1234"}


def print_policy(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert cli.main(["--print-policy", *args]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


# ------------------------------------------------------------------------------------ generated policies

def test_member_policy_is_exactly_the_declared_actions() -> None:
    declared = set(collectors.DISCOVERY_ACTIONS) | set(collectors.PRIMARY.actions)
    for c in (*collectors.REGION_COLLECTORS, *collectors.ACCOUNT_COLLECTORS):
        declared |= set(c.actions)
    doc = policy.member_policy()
    assert len(doc["Statement"]) == 1
    stmt = doc["Statement"][0]
    assert stmt["Effect"] == "Allow" and stmt["Resource"] == "*"
    assert stmt["Action"] == sorted(declared) == collectors.required_actions()
    assert set(stmt) == {"Sid", "Effect", "Action", "Resource"}  # no NotAction, no Condition


@pytest.mark.parametrize("action", collectors.required_actions())
def test_every_declared_action_is_read_only(action: str) -> None:
    assert policy.is_read_only(action), f"{action} is not a concrete Get/List/Describe/Head action"


@pytest.mark.parametrize(("action", "expected"), [
    pytest.param("s3:GetBucketPolicy", True, id="get"),
    pytest.param("ec2:DescribeRegions", True, id="describe"),
    pytest.param("iam:ListRolePolicies", True, id="list"),
    pytest.param("s3:PutObject", False, id="write"),
    pytest.param("s3:Get*", False, id="wildcard"),
    pytest.param("iam:SimulatePrincipalPolicy", False, id="other-verb"),
    pytest.param("GetBucketPolicy", False, id="no-service"),
])
def test_is_read_only(action: str, expected: bool) -> None:
    assert policy.is_read_only(action) is expected


@pytest.mark.parametrize(("service", "operation", "action"), [
    pytest.param("s3", "HeadBucket", "s3:ListBucket", id="s3-head-bucket"),
    pytest.param("s3", "GetBucketLocation", "s3:GetBucketLocation", id="s3-same-name"),
    pytest.param("s3", "GetBucketEncryption", "s3:GetEncryptionConfiguration", id="s3-encryption"),
    pytest.param("s3", "GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock", id="s3-pab"),
    pytest.param("s3", "GetBucketLifecycleConfiguration", "s3:GetLifecycleConfiguration", id="s3-lifecycle"),
    pytest.param("logs", "DescribeLogGroups", "logs:DescribeLogGroups", id="logs"),
    pytest.param("cloudwatch", "GetMetricData", "cloudwatch:GetMetricData", id="cloudwatch"),
    pytest.param("sts", "GetCallerIdentity", None, id="no-permission"),
])
def test_operation_to_iam_action(service: str, operation: str, action: str | None) -> None:
    assert policy.iam_action(service, operation) == action


def test_print_policy_member_is_the_generated_policy(capsys: pytest.CaptureFixture[str]) -> None:
    assert print_policy(capsys) == policy.member_policy()
    assert print_policy(capsys, "member") == policy.member_policy()


@pytest.mark.parametrize(("args", "config", "role"), [
    pytest.param([], None, "AuditBedrockRole", id="default-role"),
    pytest.param(["--role-name", "OrganizationAccountAccessRole"], None, "OrganizationAccountAccessRole",
                 id="admin-role-by-name"),
    pytest.param(["--role-name", "AuditBedrockRole"], None, "AuditBedrockRole", id="flag"),
    pytest.param([], "role_name: FromConfig\n", "FromConfig", id="config"),
])
def test_print_policy_caller(capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str],
                             config: str | None, role: str) -> None:
    if config is not None:
        (tmp_path / "c.yaml").write_text(config)
        args = [*args, "--config", str(tmp_path / "c.yaml")]
    doc = print_policy(capsys, "caller", *args)
    assert doc == policy.caller_policy(role)
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["AssumeAuditRole"]["Resource"] == f"arn:aws:iam::*:role/{role}"
    assert by_sid["AssumeAuditRole"]["Action"] == "sts:AssumeRole"
    assert by_sid["DiscoverOrganization"]["Action"] == ["organizations:Describe*", "organizations:List*"]
    assert by_sid["ScanCallerAccount"]["Action"] == collectors.required_actions()
    assert allows([doc], Request("sts:AssumeRole", f"arn:aws:iam::222222222222:role/{role}"))
    assert not allows([doc], Request("sts:AssumeRole", "arn:aws:iam::222222222222:role/Admin"))
    assert not allows([doc], Request("organizations:CreateAccount", "*"))


# ----------------------------------------------------------------------------- templates == declarations

def test_audit_role_template_policy_equals_print_policy(capsys: pytest.CaptureFixture[str]) -> None:
    props = Resolver(load(AUDIT_ROLE), ROLE_PARAMS).resource("AuditRole")
    (inline,) = props["Policies"]
    assert inline["PolicyDocument"] == print_policy(capsys) == policy.member_policy(), (
        "deploy/audit-role.yaml is stale: run `make deploy-templates`")


def test_scheduled_scan_scanner_role_equals_caller_policy(capsys: pytest.CaptureFixture[str]) -> None:
    r = Resolver(load(SCHEDULED), {"CodeBucket": "code", "CodeKey": "audit-bedrock-lambda.zip"})
    role_name = r.params["AuditRoleName"]
    props = r.resource("ScannerRole")
    docs = {p["PolicyName"]: p["PolicyDocument"] for p in props["Policies"]}
    assert docs["audit-bedrock-caller"] == print_policy(capsys, "caller", "--role-name", role_name), (
        "deploy/scheduled-scan.yaml is stale: run `make deploy-templates`")


@pytest.mark.parametrize("template", [AUDIT_ROLE, SCHEDULED], ids=lambda p: p.name)
def test_templates_are_current(template: Path) -> None:
    assert policy.main(["check", str(template)]) == 0, "run `make deploy-templates`"


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("A:\n  # BEGIN generated: member-actions\n  # END generated: member-actions\n",
                  "A:\n  # BEGIN generated: member-actions (make deploy-templates; do not edit)\n{items}"
                  "  # END generated: member-actions\n", id="empty-block"),
    pytest.param("x:\n    # BEGIN generated: member-actions\n    - old:Action\n    # END generated: member-actions",
                  "x:\n    # BEGIN generated: member-actions (make deploy-templates; do not edit)\n{items4}"
                  "    # END generated: member-actions", id="stale-block-keeps-indent"),
])
def test_render_rewrites_the_generated_block(text: str, expected: str) -> None:
    acts = collectors.required_actions()
    want = expected.format(items="".join(f"  - {a}\n" for a in acts),
                           items4="".join(f"    - {a}\n" for a in acts))
    assert policy.render(text) == want
    assert policy.render(want) == want  # idempotent


def test_render_without_a_block_fails() -> None:
    with pytest.raises(ValueError, match="member-actions"):
        policy.render("Resources: {}\n")


def test_check_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("a:\n  # BEGIN generated: member-actions\n  - s3:PutObject\n  # END generated: member-actions\n")
    assert policy.main(["check", str(f)]) == 1
    assert "make deploy-templates" in capsys.readouterr().err
    assert policy.main(["write", str(f)]) == 0
    assert "s3:PutObject" not in f.read_text()
    assert policy.main(["check", str(f)]) == 0


# ---------------------------------------------------------------- every call of a real scan is granted

@dataclass(frozen=True)
class Call:
    side: str  # "member": made with assumed audit-role credentials; "caller": the caller's own credentials
    account: str
    region: str
    service: str
    operation: str
    body: Any


def record_calls(monkeypatch: pytest.MonkeyPatch) -> list[Call]:
    """Record every request of a scan through Sessions.add_hook, with the side whose credentials sign it.

    Every thread shares one client per (service, region) and binds the account it scans (Sessions.bind or
    Sessions.client), so the account comes from the thread's binding, and the side from the credentials the
    request is signed with: the caller's own keys (discovery, AssumeRole, the caller's account) or an assumed role's.
    """
    from audit_bedrock.aws.clients import Sessions, ThreadCredentials

    calls: list[Call] = []
    lock = threading.Lock()
    local = threading.local()
    original_client, original_init = Sessions.client, Sessions.__init__

    def client(self: Sessions, service: str, region: str, credentials: Any, account: str) -> Any:
        local.account = account
        return original_client(self, service, region, credentials, account)

    def init(self: Sessions, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        caller_key = self.caller_credentials().get_frozen_credentials().access_key

        def hook(model: Any, params: Any, request_signer: Any = None, **_: Any) -> None:
            creds = request_signer._credentials
            account = getattr(local, "account", "caller")
            if isinstance(creds, ThreadCredentials):  # a shared client: it signs as the thread's bound account
                account = self.bound_account() or account
            side = "caller" if creds.get_frozen_credentials().access_key == caller_key else "member"
            region = request_signer.region_name
            with lock:
                calls.append(Call(side, account, region,
                                  model.service_model.service_name, model.name, params.get("body")))

        self.add_hook(hook)

    monkeypatch.setattr(Sessions, "client", client)
    monkeypatch.setattr(Sessions, "__init__", init)
    return calls


def granted(doc: dict[str, Any], call: Call) -> bool:
    action = policy.iam_action(call.service, call.operation)
    if action is None:
        return True
    resource = f"arn:aws:{call.service}:{call.region}:{call.account}:resource"
    if (call.service, call.operation) == ("sts", "AssumeRole"):
        resource = call.body["RoleArn"]
    if (call.service, call.operation) == ("ssm", "GetParametersByPath"):  # a public parameter: no account
        path = json.loads(call.body)["Path"] if isinstance(call.body, str | bytes) else call.body["Path"]
        resource = f"arn:aws:ssm:{call.region}::parameter{path}"
    return allows([doc], Request(action, resource))


@pytest.mark.slow
def test_demo_scan_calls_only_what_the_shipped_policies_grant(
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from audit_bedrock.demo import DEMO_REGIONS, DEMO_SKIPPED_REGION, MEMBER_ROLE
    from tests.support import shared_demo_estate

    estate = shared_demo_estate(request.config)  # behind the proxy answering what moto lacks, as --demo scans
    ids = estate.ids
    monkeypatch.setenv("AWS_ENDPOINT_URL", estate.endpoint)
    calls = record_calls(monkeypatch)
    rc = cli.main(["--org", "--regions", ",".join((*DEMO_REGIONS, DEMO_SKIPPED_REGION)), "--role-name",
                   MEMBER_ROLE, "--output-dir", str(tmp_path / "out"), "--format", "json", "-q", "-q"])
    assert rc == 1  # the demo estate has high findings by design

    shipped = Resolver(load(AUDIT_ROLE), ROLE_PARAMS).resource("AuditRole")["Policies"][0]["PolicyDocument"]
    member = [c for c in calls if c.side == "member"]
    caller = [c for c in calls if c.side == "caller"]
    # Non-vacuous: every ACTIVE member account was entered and read, in more than one service.
    assert {c.account for c in member} == {i for n, i in ids.items() if n not in ("management", "legacy-closed")}
    assert {"bedrock", "ec2"} <= {c.service for c in member}
    assert {c.service for c in caller} >= {"organizations", "sts"}

    denied = sorted({f"{c.service}.{c.operation} -> {policy.iam_action(c.service, c.operation)}"
                     for c in member if not granted(shipped, c)})
    assert denied == [], f"member-account calls the audit role does not grant: {denied}"
    caller_doc = policy.caller_policy(MEMBER_ROLE)
    denied = sorted({f"{c.service}.{c.operation} -> {policy.iam_action(c.service, c.operation)}"
                     for c in caller if not granted(caller_doc, c)})
    assert denied == [], f"caller calls the caller policy does not grant: {denied}"
    # Exactly: nothing outside the declarations is called, and nothing declared goes unused by the demo.
    actions = {policy.iam_action(c.service, c.operation) for c in member} - {None}
    assert actions <= set(collectors.required_actions())
    unused = sorted(set(collectors.required_actions()) - actions)
    assert unused == [], f"declared but never called in the demo scan (extend the demo or drop them): {unused}"


# ------------------------------------------------------- the one write: the Security Hub import, only when asked

PSEUDO_ACCOUNT = "123456789012"  # tests/support/cfn_template.PSEUDO's AWS::AccountId
IMPORTER = "arn:aws:iam::111111111111:role/audit-bedrock-merge"


def template_writes(template: Path, params: dict[str, str]) -> dict[str, set[str]]:
    """Each IAM role of a template, resolved with `params`: the non-read actions its inline policies allow."""
    r = Resolver(load(template), params)
    out: dict[str, set[str]] = {}
    for name, res in load(template)["Resources"].items():
        if res["Type"] != "AWS::IAM::Role" or ("Condition" in res and not r.conditions[res["Condition"]]):
            continue
        out[name] = set().union(*(policy.writes(p["PolicyDocument"]) for p in r.resource(name).get("Policies", [])))
    return out


@pytest.mark.parametrize(("doc", "expected"), [
    pytest.param(policy.member_policy(), set(), id="audit-role"),
    pytest.param(policy.caller_policy("AuditBedrockRole"), set(), id="caller"),
    pytest.param(policy.import_policy("222222222222"), set(policy.WRITE_ACTIONS), id="import-role"),
    pytest.param({"Statement": [{"Effect": "Allow", "Action": "s3:*"}]}, {"s3:*"}, id="wildcard-is-a-write"),
    pytest.param({"Statement": [{"Effect": "Deny", "Action": "s3:PutObject"}]}, set(), id="deny-grants-nothing"),
])
def test_writes_of_the_generated_policies(doc: dict[str, Any], expected: set[str]) -> None:
    assert policy.writes(doc) == expected


@pytest.mark.parametrize(("template", "params", "expected"), [
    pytest.param(AUDIT_ROLE, ROLE_PARAMS, {"AuditRole": set()}, id="audit-role-default"),
    pytest.param(AUDIT_ROLE, {**ROLE_PARAMS, "SecurityHubImportPrincipalArn": IMPORTER},
                 {"AuditRole": set(), "SecurityHubImportRole": {policy.IMPORT_ACTION}}, id="audit-role-importing"),
    pytest.param(SCHEDULED, {"CodeBucket": "code", "CodeKey": "k"}, None, id="scheduled-default"),
    pytest.param(SCHEDULED, {"CodeBucket": "code", "CodeKey": "k", "SecurityHubImport": "true"},
                 {policy.IMPORT_ACTION}, id="scheduled-importing"),
])
def test_batch_import_findings_is_the_only_write_and_only_when_asked(
        template: Path, params: dict[str, str], expected: dict[str, set[str]] | set[str] | None) -> None:
    """Outside the report bucket and the topic (the scheduled stack's own storage), the only write any role of
    the deploy templates may make is BatchImportFindings, and only with the opt-in parameter."""
    got = template_writes(template, params)
    if template == AUDIT_ROLE:
        assert got == expected
        return
    # the stack's own machinery: its report bucket, its topic, its state machine and functions (scoped to them
    # by test_deploy.py's least-privilege table)
    own_storage = {"s3:PutObject", "sns:Publish", "states:StartExecution", "states:StopExecution",
                   "lambda:InvokeFunction", "logs:CreateLogStream", "logs:PutLogEvents", "logs:CreateLogGroup"}
    outside = {role: acts - own_storage for role, acts in got.items() if acts - own_storage}
    assert outside == ({} if expected is None else {"MergeRole": expected})


def test_import_role_policy_equals_the_generated_one() -> None:
    r = Resolver(load(AUDIT_ROLE), {**ROLE_PARAMS, "SecurityHubImportPrincipalArn": IMPORTER})
    (inline,) = r.resource("SecurityHubImportRole")["Policies"]
    assert inline["PolicyDocument"] == policy.import_policy(PSEUDO_ACCOUNT)
    assert r.resource("SecurityHubImportRole")["RoleName"] == policy.DEFAULT_IMPORT_ROLE


def test_merge_role_import_statements_equal_the_generated_ones() -> None:
    r = Resolver(load(SCHEDULED), {"CodeBucket": "code", "CodeKey": "k", "SecurityHubImport": "true"})
    docs = [p["PolicyDocument"] for p in r.resource("MergeRole")["Policies"]]
    stmts = [s for d in docs for s in d["Statement"] if s.get("Sid") in ("ImportOwnFindings", "EnterImportRoles")]
    assert stmts == policy.caller_import_statements(PSEUDO_ACCOUNT, r.params["SecurityHubImportRoleName"])


@pytest.mark.parametrize(("principal", "resource", "allowed"), [
    pytest.param(f"arn:aws:iam::{PSEUDO_ACCOUNT}:role/x", f"arn:aws:securityhub:eu-west-1:{PSEUDO_ACCOUNT}:product/"
                 f"{PSEUDO_ACCOUNT}/default", True, id="own-product-any-region"),
    pytest.param("", "arn:aws:securityhub:us-east-1:222222222222:product/222222222222/default", False,
                 id="not-another-accounts-product"),
    pytest.param("", f"arn:aws:securityhub:us-east-1:{PSEUDO_ACCOUNT}:product/aws/guardduty", False,
                 id="not-another-product"),
])
def test_import_permission_is_the_accounts_own_default_product(principal: str, resource: str, allowed: bool) -> None:
    doc = policy.import_policy(PSEUDO_ACCOUNT)
    assert allows([doc], Request(policy.IMPORT_ACTION, resource)) is allowed
    assert not allows([doc], Request("securityhub:BatchUpdateFindings", resource))


def test_one_name_for_the_import_role_everywhere() -> None:
    from audit_bedrock import integrations
    defaults = {load(t)["Parameters"]["SecurityHubImportRoleName"]["Default"] for t in (AUDIT_ROLE, SCHEDULED)}
    assert defaults == {policy.DEFAULT_IMPORT_ROLE} == {integrations.DEFAULT_IMPORT_ROLE}
    assert policy.IMPORT_ACTION not in policy.member_policy()["Statement"][0]["Action"]
