"""The collectors fed the response shapes real AWS gives (issue 11), through botocore's Stubber.

Stubber.add_response validates each response against the operation's output shape in the installed botocore
model, and add_client_error builds the error the way botocore parses it, so these tests fail if a shape here is
not one AWS can send. Each table names its source: the botocore shape and the AWS documentation page.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.stub import ANY, Stubber

from audit_bedrock.collectors.base import AccountContext, RegionContext
from audit_bedrock.collectors.iam import IamCollector
from audit_bedrock.collectors.kms import KeyCollector
from audit_bedrock.collectors.metrics import UsageCollector
from audit_bedrock.config import Config, parse_config
from audit_bedrock.derive import derive_key, derive_unreferenced
from audit_bedrock.discovery import Estate, bedrock_region_list, bedrock_regions, discover_accounts
from audit_bedrock.engine import Evaluator, RawResult, load_rules
from audit_bedrock.errors import UsageError
from audit_bedrock.facts import is_gap
from audit_bedrock.findings import FindingBuilder
from audit_bedrock.scan import Accumulator, Scanner, ScanPlan

T = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
ACCOUNT = "111111111111"
OTHER = "222222222222"  # another ACTIVE account of the organization
STRANGER = "999999999999"  # an account outside it
REGION = "eu-west-1"
BEDROCK = "bedrock.amazonaws.com"
RULES = load_rules()
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}"
AWS_S3_KEY_ID = "0987dcba-09fe-87dc-65ba-ab0987654321"


class Stubs:
    """One Stubber-backed client per (service, region): the make_client of an AccountContext."""

    def __init__(self) -> None:
        self.clients: dict[tuple[str, str], Any] = {}
        self.stubbers: dict[tuple[str, str], Stubber] = {}
        self.calls: list[str] = []

    def __call__(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self.clients:
            client = boto3.session.Session().client(service, region_name=region, aws_access_key_id="a",
                                                    aws_secret_access_key="b")
            client.meta.events.register_first("before-call.*.*", self._record)
            stubber = Stubber(client)
            stubber.activate()
            self.clients[key], self.stubbers[key] = client, stubber
        return self.clients[key]

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def stub(self, service: str, region: str = REGION) -> Stubber:
        self(service, region)
        return self.stubbers[(service, region)]

    def verify(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


def context(stubs: Stubs, account: str = ACCOUNT, peer: Any = None) -> AccountContext:
    actx = AccountContext(account, "member", stubs, REGION)
    if peer is not None:
        actx.peer = peer
    return actx


def results(account_doc: dict[str, Any]) -> list[RawResult]:
    return Evaluator(RULES, Config().rule_params()).evaluate_account(account_doc)


def region_doc(**facts: Any) -> dict[str, Any]:
    return {"account_id": ACCOUNT, "region": REGION, "status": "scanned", "logging": {"enabled": True}, **facts}


def account_doc(*regions: dict[str, Any], **facts: Any) -> dict[str, Any]:
    return {"account_id": ACCOUNT, "account_name": "member", "ou_path": "", "status": "scanned", "reason": "",
            "regions": list(regions), **facts}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


# ================================================================================================ KMS (BIL-019)
# Shapes: botocore kms ListAliasesResponse/AliasListEntry, DescribeKeyResponse/KeyMetadata (KeyManager AWS|CUSTOMER),
# GetKeyPolicyResponse. Docs: KMS DescribeKey ("AWS services use DescribeKey to create AWS managed keys from a
# predefined AWS alias with no key ID"), GetKeyPolicy ("Cross-account use: No"), S3 UG "Using server-side
# encryption with AWS KMS keys" (encryption context aws:s3:arn: the bucket ARN with an S3 Bucket Key, the object
# ARN otherwise), https://docs.aws.amazon.com/kms/latest/developerguide/services-s3.html

def key_metadata(arn: str = KEY_ARN, manager: str = "CUSTOMER", state: str = "Enabled") -> dict[str, Any]:
    return {"KeyMetadata": {"AWSAccountId": arn.split(":")[4], "KeyId": arn.rsplit("/", 1)[1], "Arn": arn,
                            "CreationDate": T, "Enabled": state == "Enabled", "KeyUsage": "ENCRYPT_DECRYPT",
                            "KeyState": state, "Origin": "AWS_KMS", "KeyManager": manager,
                            "KeySpec": "SYMMETRIC_DEFAULT", "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
                            "MultiRegion": False}}


def key_policy_response(*statements: dict[str, Any]) -> dict[str, Any]:
    root = {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*", "Resource": "*"}
    return {"Policy": json.dumps(policy(root, *statements)), "PolicyName": "default"}


def bedrock_key_statement(condition: dict[str, Any]) -> dict[str, Any]:
    return {"Sid": "Bedrock", "Effect": "Allow", "Principal": {"Service": BEDROCK}, "Action": "kms:GenerateDataKey",
            "Resource": "*", "Condition": condition}


def bucket_facts(ref: str | None, bucket_key: bool = False) -> dict[str, Any]:
    return {"log_group": None, "buckets": [{
        "name": "logs", "arn": "arn:aws:s3:::logs", "exists": True,
        "uses": [{"destination": "s3", "prefix": "bedrock"}],
        "encryption": {"algorithm": "aws:kms", "kms_key_id": ref, "bucket_key_enabled": bucket_key}}]}


def collect_keys(actx: AccountContext, facts: dict[str, Any]) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = KeyCollector().collect(RegionContext(actx, REGION), facts)["kms_keys"]
    for key in keys:
        derive_key(key, ACCOUNT, REGION, facts["buckets"])
    return keys


def bil_019(keys: list[dict[str, Any]], facts: dict[str, Any]) -> list[RawResult]:
    return [r for r in results(account_doc(region_doc(**facts, kms_keys=keys)))
            if r.rule.id == "BIL-019" or r.properties.get("blocked_rule") == "BIL-019"]


SOURCE = {"StringEquals": {"aws:SourceAccount": ACCOUNT},
          "ArnLike": {"aws:SourceArn": f"arn:aws:bedrock:{REGION}:{ACCOUNT}:*"}}
CONTEXT_CASES = [
    # (name, BucketKeyEnabled, Condition of the Bedrock statement, Bedrock may GenerateDataKey)
    ("documented-source-conditions", False, SOURCE, True),
    ("pinned-to-bucket-arn-with-bucket-key", True,
     {"StringEquals": {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::logs"}}, True),
    ("pinned-to-bucket-arn-without-bucket-key-sees-the-object-arn", False,
     {"StringEquals": {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::logs"}}, False),
    ("pinned-to-objects-without-bucket-key", False,
     {"StringLike": {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::logs/bedrock/*"}}, True),
    ("pinned-to-other-prefix", False,
     {"StringLike": {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::logs/other/*"}}, False),
    ("via-s3-in-the-bucket-region", True, {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}, True),
    ("via-s3-in-another-region", True, {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}, False),
    ("is-aws-service", True, {"Bool": {"aws:PrincipalIsAWSService": "true"}}, True),
    # kms:CallerAccount is not documented for a service principal: a policy that needs it does not admit Bedrock.
    ("caller-account-not-sent", True, {"StringEquals": {"kms:CallerAccount": ACCOUNT}}, False),
]


@pytest.mark.parametrize(("bucket_key", "condition", "usable"),
                         [pytest.param(b, c, u, id=n) for n, b, c, u in CONTEXT_CASES])
def test_key_policy_is_evaluated_with_the_context_s3_sends(bucket_key: bool, condition: dict[str, Any],
                                                           usable: bool) -> None:
    stubs = Stubs()
    kms = stubs.stub("kms")
    kms.add_response("describe_key", key_metadata(), {"KeyId": KEY_ARN})
    kms.add_response("get_key_policy", key_policy_response(bedrock_key_statement(condition)),
                     {"KeyId": KEY_ARN, "PolicyName": "default"})
    facts = bucket_facts(KEY_ARN, bucket_key)
    (key,) = collect_keys(context(stubs), facts)
    stubs.verify()
    assert key["bedrock_can_generate_data_key"] is usable
    assert bool(bil_019([key], facts)) is not usable


AWS_S3_ALIASES = {"Aliases": [
    {"AliasName": "alias/aws/s3", "AliasArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/aws/s3",
     "TargetKeyId": AWS_S3_KEY_ID, "CreationDate": T, "LastUpdatedDate": T},
    {"AliasName": "alias/aws/dynamodb", "AliasArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/aws/dynamodb"},
    {"AliasName": "alias/bedrock-logs", "AliasArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/bedrock-logs",
     "TargetKeyId": KEY_ID, "CreationDate": T, "LastUpdatedDate": T}], "Truncated": False}


@pytest.mark.parametrize("ref", [pytest.param(None, id="sse-kms-without-a-key-id"),
                                 pytest.param("alias/aws/s3", id="alias-name"),
                                 pytest.param(f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/aws/s3", id="alias-arn")])
def test_aws_managed_s3_key_is_bil_019_without_any_call(ref: str | None) -> None:
    stubs = Stubs()
    facts = bucket_facts(ref)
    (key,) = collect_keys(context(stubs), facts)
    assert stubs.calls == []  # never DescribeKey on the alias: it could create the AWS managed key
    assert (key["aws_managed"], key["manager"], key["bedrock_can_generate_data_key"]) == (True, "AWS", False)
    (finding,) = bil_019([key], facts)
    assert finding.rule.id == "BIL-019" and "AWS managed key aws/s3" in finding.message
    assert "SSE-S3" in finding.message and "SSE-S3" in finding.rule.remediation
    assert "key policy that does not allow" not in finding.message


def test_key_arn_that_is_aws_managed_skips_the_policy() -> None:
    stubs = Stubs()
    arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{AWS_S3_KEY_ID}"
    stubs.stub("kms").add_response("describe_key", key_metadata(arn, manager="AWS"), {"KeyId": arn})
    facts = bucket_facts(arn)
    (key,) = collect_keys(context(stubs), facts)
    stubs.verify()
    assert stubs.calls == ["DescribeKey"] and key["aws_managed"] is True
    assert "AWS managed key" in bil_019([key], facts)[0].message


def test_customer_alias_is_resolved_with_list_aliases_then_read_by_key_id() -> None:
    stubs = Stubs()
    kms = stubs.stub("kms")
    kms.add_response("list_aliases", AWS_S3_ALIASES, {})
    kms.add_response("describe_key", key_metadata(), {"KeyId": KEY_ID})  # the target key id, never the alias
    kms.add_response("get_key_policy", key_policy_response(bedrock_key_statement(SOURCE)),
                     {"KeyId": KEY_ARN, "PolicyName": "default"})
    facts = bucket_facts("alias/bedrock-logs")
    facts["buckets"].append({**facts["buckets"][0], "name": "logs-2", "arn": "arn:aws:s3:::logs-2"})
    keys = collect_keys(context(stubs), facts)
    stubs.verify()
    assert stubs.calls == ["ListAliases", "DescribeKey", "GetKeyPolicy"]  # once for two buckets
    assert [(k["arn"], k["bedrock_can_generate_data_key"]) for k in keys] == [(KEY_ARN, True)]


def test_alias_nobody_created_is_a_missing_key() -> None:
    stubs = Stubs()
    stubs.stub("kms").add_response("list_aliases", AWS_S3_ALIASES, {})
    facts = bucket_facts("alias/deleted-key")
    (key,) = collect_keys(context(stubs), facts)
    assert stubs.calls == ["ListAliases"]
    assert (key["exists"], key["enabled"], key["state"]) == (False, False, "NotFound")
    assert "state NotFound" in bil_019([key], facts)[0].message


def test_list_aliases_denied_is_a_gap() -> None:
    stubs = Stubs()
    stubs.stub("kms").add_client_error("list_aliases", "AccessDeniedException", "not authorized", 400)
    facts = bucket_facts("alias/bedrock-logs")
    (key,) = collect_keys(context(stubs), facts)
    (gap_result,) = bil_019([key], facts)
    assert gap_result.rule.id == "SCAN-003" and gap_result.properties["missing_permissions"] == ["kms:ListAliases"]


@contextlib.contextmanager
def entered(other: Any, exits: list[str]) -> Iterator[Any]:
    try:
        yield other
    finally:
        exits.append("left")


def test_key_of_another_org_account_is_read_in_that_account() -> None:
    here, there, exits = Stubs(), Stubs(), []
    arn = f"arn:aws:kms:{REGION}:{OTHER}:key/{KEY_ID}"
    kms = there.stub("kms")
    kms.add_response("describe_key", key_metadata(arn), {"KeyId": arn})
    kms.add_response("get_key_policy", key_policy_response(bedrock_key_statement(SOURCE)),
                     {"KeyId": arn, "PolicyName": "default"})
    other = AccountContext(OTHER, "", there, REGION)
    facts = bucket_facts(arn)
    (key,) = collect_keys(context(here, peer=lambda acct: entered(other if acct == OTHER else None, exits)), facts)
    there.verify()
    assert here.calls == [] and there.calls == ["DescribeKey", "GetKeyPolicy"]  # GetKeyPolicy is not cross-account
    assert exits == ["left"] and key["read_in"] == OTHER and key["bedrock_can_generate_data_key"] is True


@pytest.mark.parametrize(("peer", "code"), [
    pytest.param(None, "KeyOutsideOrganization", id="outside-the-organization"),
    pytest.param({"gap": True, "action": "sts:AssumeRole", "code": "AccessDenied", "message": "cannot enter"},
                 "AccessDenied", id="org-account-not-enterable"),
])
def test_key_that_cannot_be_read_where_it_lives_is_a_gap_naming_why(peer: Any, code: str) -> None:
    here, exits = Stubs(), []
    arn = f"arn:aws:kms:{REGION}:{STRANGER}:key/{KEY_ID}"
    facts = bucket_facts(arn)
    (key,) = collect_keys(context(here, peer=lambda acct: entered(peer, exits)), facts)
    assert here.calls == []  # no GetKeyPolicy across accounts: it never works
    assert is_gap(key["bedrock_can_generate_data_key"]) and key["policy"]["code"] == code
    (gap_result,) = bil_019([key], facts)
    assert gap_result.rule.id == "SCAN-003" and gap_result.properties["error_codes"] == [code]
    if peer is None:
        assert "not an ACTIVE account of the scanned organization" in gap_result.message
        assert "no permission of the audit role" in gap_result.message


# ================================================================================================ usage (BIL-001/002)
# Shapes: botocore cloudwatch ListMetricsOutput, GetMetricDataOutput/MetricDataResult (StatusCode
# Complete|InternalError|PartialData|Forbidden, Messages[MessageData]). Doc: GetMetricData ("PartialData means
# that an incomplete set of data points were returned. You can use the NextToken value ... InternalError
# indicates that an error occurred"), https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html

SERIES = {"Metrics": [{"Namespace": "AWS/Bedrock", "MetricName": "Invocations",
                       "Dimensions": [{"Name": "ModelId", "Value": "anthropic.claude-3-haiku-20240307-v1:0"}]},
                      {"Namespace": "AWS/Bedrock", "MetricName": "Invocations",
                       "Dimensions": [{"Name": "ModelId", "Value": "amazon.titan-embed-text-v2:0"}]}]}


def series(sid: str, status: str, values: list[float], **extra: Any) -> dict[str, Any]:
    return {"Id": sid, "Label": "Invocations", "Timestamps": [T] * len(values), "Values": values,
            "StatusCode": status, **extra}


USAGE_CASES = [
    # (name, pages of MetricDataResults, expected invocations or the gap's code)
    ("complete", [[series("s0", "Complete", [3.0]), series("s1", "Complete", [4.0])]], 7),
    ("complete-and-zero", [[series("s0", "Complete", []), series("s1", "Complete", [])]], 0),
    # The paginator follows NextToken: PartialData followed by Complete for the same Id is complete.
    ("partial-then-complete", [[series("s0", "PartialData", [1.0]), series("s1", "Complete", [2.0])],
                               [series("s0", "Complete", [5.0])]], 8),
    ("internal-error", [[series("s0", "Complete", [3.0]),
                         series("s1", "InternalError", [], Messages=[{"Code": "InternalError",
                                                                      "Value": "Retry the request"}])]],
     "InternalError"),
    ("forbidden", [[series("s0", "Forbidden", []), series("s1", "Complete", [])]], "Forbidden"),
    ("partial-on-the-last-page", [[series("s0", "PartialData", [1.0]), series("s1", "Complete", [])]],
     "PartialData"),
]


@pytest.mark.parametrize(("pages", "expected"), [pytest.param(p, e, id=n) for n, p, e in USAGE_CASES])
def test_metric_status_not_complete_is_a_gap_never_zero(pages: list[list[dict[str, Any]]], expected: Any) -> None:
    stubs = Stubs()
    cw = stubs.stub("cloudwatch")
    cw.add_response("list_metrics", SERIES, {"Namespace": "AWS/Bedrock", "MetricName": "Invocations"})
    for i, page in enumerate(pages):
        response: dict[str, Any] = {"MetricDataResults": page}
        params: dict[str, Any] = {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY}
        if i + 1 < len(pages):
            response["NextToken"] = f"tok{i}"
        if i:
            params["NextToken"] = f"tok{i - 1}"
        cw.add_response("get_metric_data", response, params)
    rdoc = region_doc(logging={"enabled": False})
    rdoc.update(UsageCollector().collect(RegionContext(context(stubs), REGION), rdoc))
    stubs.verify()
    usage = rdoc["usage"]
    fired = results(account_doc(rdoc))
    if isinstance(expected, int):
        assert usage["invocations"] == expected
        assert {r.rule.id for r in fired} == {"BIL-002" if expected else "BIL-001"}
        return
    assert is_gap(usage) and usage["code"] == expected and usage["action"] == "cloudwatch:GetMetricData"
    (bil_001,) = [r for r in fired if r.rule.id == "BIL-001"]
    assert "could not be read" in bil_001.message and "no invocations were seen" not in bil_001.message
    assert [r.properties["blocked_rule"] for r in fired if r.rule.id == "SCAN-003"] == ["BIL-002"]


@pytest.mark.parametrize(("days", "ok"), [pytest.param(14, True, id="14"), pytest.param(15, False, id="15"),
                                          pytest.param(90, False, id="90")])
def test_usage_lookback_longer_than_list_metrics_sees_is_refused(days: int, ok: bool, tmp_path: Path) -> None:
    """ListMetrics doc: "ListMetrics doesn't return information about metrics if those metrics haven't reported
    data in the past two weeks"."""
    if ok:
        assert parse_config({"usage_lookback_days": days}, "c.yaml").usage_lookback_days == days
        return
    with pytest.raises(UsageError, match=r"usage_lookback_days.*at most 14.*two weeks"):
        parse_config({"usage_lookback_days": days}, "c.yaml")
    from audit_bedrock.cli import EXIT_USAGE, main
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"usage_lookback_days: {days}\n")
    assert main(["--config", str(cfg), "--list-rules"]) == EXIT_USAGE


# ================================================================================================ SCP-denied regions
# Shape: botocore bedrock GetModelInvocationLoggingConfiguration error AccessDeniedException (403). Message
# wording: AWS Security Blog "Enhanced access denied error messages with policy ARNs",
# https://aws.amazon.com/blogs/security/enhanced-access-denied-error-messages-with-policy-arns/

USER = "User: arn:aws:sts::111111111111:assumed-role/BedrockAudit/audit-bedrock is not authorized to perform: " \
       "bedrock:GetModelInvocationLoggingConfiguration"
SCP_ARN = "arn:aws:organizations::999999999999:policy/o-exampleorg1/service_control_policy/p-examplescp"
SCP_CASES = [
    # (name, code, message, skipped)
    ("scp-with-policy-arn", "AccessDeniedException",
     f"{USER} with an explicit deny in a service control policy: {SCP_ARN}", True),
    ("scp-before-policy-arns", "AccessDeniedException",
     f"{USER} on resource: * with an explicit deny in a service control policy", True),
    ("scp-query-protocol-code", "AccessDenied", f"{USER} with an explicit deny in a service control policy", True),
    ("resource-control-policy-is-an-error", "AccessDeniedException",
     f"{USER} with an explicit deny in a resource control policy", False),
    ("permissions-boundary-is-an-error", "AccessDeniedException",
     f"{USER} with an explicit deny in a permissions boundary", False),
    ("no-identity-policy-is-an-error", "AccessDeniedException",
     f"{USER} because no identity-based policy allows the bedrock:GetModelInvocationLoggingConfiguration action",
     False),
]


@pytest.mark.parametrize(("code", "message", "skipped"),
                         [pytest.param(c, m, s, id=n) for n, c, m, s in SCP_CASES])
def test_scp_denied_region_is_skipped_not_an_error(code: str, message: str, skipped: bool) -> None:
    from audit_bedrock.api import _result
    from audit_bedrock.reports import RenderContext, renderer

    stubs = Stubs()
    stubs.stub("bedrock").add_client_error("get_model_invocation_logging_configuration", code, message, 403)
    plan = ScanPlan(Estate(None, ACCOUNT, ()), (REGION,), "Audit", None, 1)
    rdoc = Scanner(None, plan).scan_region(RegionContext(context(stubs), REGION))  # type: ignore[arg-type]
    assert rdoc["status"] == ("skipped" if skipped else "error")
    acc = Accumulator(Evaluator(RULES, Config().rule_params()), FindingBuilder(Config()))
    acc.add(account_doc(rdoc))
    rules = {f.rule_id for f in acc.findings}
    if not skipped:
        assert rules == {"SCAN-002"} and acc.incomplete
        return
    assert "denied by a service control policy" in rdoc["reason"]
    assert (SCP_ARN in rdoc["reason"]) is (SCP_ARN in message)
    assert rules == set() and not acc.incomplete  # no SCAN-002, no BIL-001 to suppress
    (cell,) = acc.coverage
    assert (cell.status, cell.reason) == ("skipped", rdoc["reason"])
    result = _result(acc, None, ACCOUNT, (REGION,), "s", "f", 1)
    ctx = RenderContext(catalog={r.id: r.to_catalog() for r in RULES}, version="0")
    assert rdoc["reason"] in renderer("html")(result, ctx).decode()
    sarif = json.loads(renderer("sarif")(result, ctx))
    (note,) = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert note["descriptor"]["id"] == "audit-bedrock/region-skipped" and rdoc["reason"] in note["message"]["text"]
    assert sarif["runs"][0]["invocations"][0]["executionSuccessful"] is True


# ================================================================================================ orphans (BIL-010)
# Shapes: botocore iam ListRolesResponse/Role (ListRoles doc: "This operation does not return the following
# attributes ... PermissionsBoundary, RoleLastUsed, Tags"), GetRoleResponse/AttachedPermissionsBoundary,
# GetPolicyResponse, GetPolicyVersionResponse. https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListRoles.html

ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/service-role/BedrockLogs"
BOUNDARY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/Boundary"


def listed_role() -> dict[str, Any]:
    """A fresh Role as ListRoles gives it (botocore decodes policy documents in place after each call)."""
    return {"Path": "/service-role/", "RoleName": "BedrockLogs", "RoleId": "AROAEXAMPLEEXAMPLE1234", "Arn": ROLE_ARN,
            "CreateDate": T, "MaxSessionDuration": 3600,
            "AssumeRolePolicyDocument": quote(json.dumps(policy({"Effect": "Allow", "Principal": {"Service": BEDROCK},
                                                                 "Action": "sts:AssumeRole"})))}


WRITE_LOGS = policy({"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"})
DENY_ALL = policy({"Effect": "Deny", "Action": "*", "Resource": "*"})
ORPHAN_CASES = [
    # (name, role policy, GetRole outcome: None = not called, "denied", or the boundary document / {} for none,
    #  grants_put_log_events)
    ("no-boundary-is-a-working-orphan", WRITE_LOGS, {}, True),
    ("deny-all-boundary-stops-it", WRITE_LOGS, DENY_ALL, False),
    ("boundary-allowing-logs-keeps-it-working", WRITE_LOGS,
     policy({"Effect": "Allow", "Action": "logs:*", "Resource": "*"}), True),
    ("boundary-allowing-other-things-stops-it", WRITE_LOGS,
     policy({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}), False),
    ("get-role-denied-is-a-gap", WRITE_LOGS, "denied", "gap"),
    ("no-log-grant-no-get-role", policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}), None, False),
]


@pytest.mark.parametrize(("role_policy", "boundary", "expected"),
                         [pytest.param(p, b, e, id=n) for n, p, b, e in ORPHAN_CASES])
def test_orphan_role_is_working_only_through_its_permissions_boundary(role_policy: dict[str, Any], boundary: Any,
                                                                      expected: Any) -> None:
    stubs = Stubs()
    iam = stubs.stub("iam")
    iam.add_response("list_roles", {"Roles": [listed_role()], "IsTruncated": False}, {})
    iam.add_response("list_role_policies", {"PolicyNames": ["logs"], "IsTruncated": False},
                     {"RoleName": "BedrockLogs"})
    iam.add_response("get_role_policy", {"RoleName": "BedrockLogs", "PolicyName": "logs",
                                         "PolicyDocument": quote(json.dumps(role_policy))},
                     {"RoleName": "BedrockLogs", "PolicyName": "logs"})
    iam.add_response("list_attached_role_policies", {"AttachedPolicies": [], "IsTruncated": False},
                     {"RoleName": "BedrockLogs"})
    if boundary == "denied":
        iam.add_client_error("get_role", "AccessDenied", "not authorized to perform: iam:GetRole", 403)
    elif boundary is not None:
        full = {**listed_role(), "Tags": [{"Key": "owner", "Value": "ml"}],
                "RoleLastUsed": {"LastUsedDate": T, "Region": REGION}}
        if boundary:
            full["PermissionsBoundary"] = {"PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                                           "PermissionsBoundaryArn": BOUNDARY_ARN}
        iam.add_response("get_role", {"Role": full}, {"RoleName": "BedrockLogs"})
        if boundary:
            iam.add_response("get_policy", {"Policy": {"PolicyName": "Boundary", "Arn": BOUNDARY_ARN,
                                                       "DefaultVersionId": "v2"}}, {"PolicyArn": BOUNDARY_ARN})
            iam.add_response("get_policy_version", {"PolicyVersion": {
                "Document": quote(json.dumps(boundary)), "VersionId": "v2", "IsDefaultVersion": True,
                "CreateDate": T}}, {"PolicyArn": BOUNDARY_ARN, "VersionId": "v2"})
    iam_fact = {"roles": {}, "scanned_regions": [REGION], "unread_regions": [], "regions_subset": False,
                "unreferenced_bedrock_roles": IamCollector()._unreferenced(context(stubs), set(), {REGION})}
    stubs.verify()
    assert ("GetRole" in stubs.calls) is (boundary is not None)
    derive_unreferenced(iam_fact, ACCOUNT)
    (role,) = iam_fact["unreferenced_bedrock_roles"]
    fired = results(account_doc(iam=iam_fact))
    if expected == "gap":
        assert is_gap(role["grants_put_log_events"])
        assert [r.properties["blocked_rule"] for r in fired if r.rule.id == "SCAN-003"] == ["BIL-010"]
        return
    assert role["grants_put_log_events"] is expected
    assert [r.resource for r in fired if r.rule.id == "BIL-010"] == ([ROLE_ARN] if expected else [])


# ================================================================================================ Organizations
# Shape: botocore organizations Account (State: AccountState PENDING_ACTIVATION|ACTIVE|SUSPENDED|PENDING_CLOSURE|
# CLOSED; Status, retired: "The Status parameter in the Account object will be retired on September 9, 2026"),
# https://docs.aws.amazon.com/organizations/latest/APIReference/API_Account.html

def org_account(acct: str, **fields: str) -> dict[str, Any]:
    return {"Id": acct, "Arn": f"arn:aws:organizations::{ACCOUNT}:account/o-exampleorg1/{acct}",
            "Email": f"{acct}@example.com", "Name": f"n{acct}", "JoinedMethod": "CREATED", "JoinedTimestamp": T,
            **fields}


ORG_CASES = [
    # (name, State/Status fields, scanned, skip reason)
    ("state-and-status-active", {"State": "ACTIVE", "Status": "ACTIVE"}, True, ""),
    ("state-only-active", {"State": "ACTIVE"}, True, ""),
    ("status-only-active", {"Status": "ACTIVE"}, True, ""),
    ("state-wins-over-a-stale-status", {"State": "CLOSED", "Status": "SUSPENDED"}, False, "account is CLOSED"),
    ("state-active-over-a-stale-status", {"State": "ACTIVE", "Status": "SUSPENDED"}, True, ""),
    ("suspended", {"State": "SUSPENDED"}, False, "account is SUSPENDED"),
    ("pending-closure", {"State": "PENDING_CLOSURE"}, False, "account is PENDING_CLOSURE"),
    ("closed", {"State": "CLOSED"}, False, "account is CLOSED"),
    ("pending-activation", {"State": "PENDING_ACTIVATION"}, False, "account is PENDING_ACTIVATION"),
    ("status-only-suspended", {"Status": "SUSPENDED"}, False, "account is SUSPENDED"),
]


@pytest.mark.parametrize(("fields", "scanned", "reason"),
                         [pytest.param(f, s, r, id=n) for n, f, s, r in ORG_CASES])
def test_organizations_state_before_status(fields: dict[str, str], scanned: bool, reason: str) -> None:
    stubs = Stubs()
    sts, org = stubs.stub("sts", "us-east-1"), stubs.stub("organizations", "us-east-1")
    sts.add_response("get_caller_identity", {"UserId": "AIDAEXAMPLE", "Account": ACCOUNT,
                                             "Arn": f"arn:aws:iam::{ACCOUNT}:user/auditor"}, {})
    org.add_response("describe_organization", {"Organization": {"Id": "o-exampleorg1", "MasterAccountId": ACCOUNT}},
                     {})
    org.add_response("list_accounts", {"Accounts": [org_account(ACCOUNT, State="ACTIVE"),
                                                    org_account(OTHER, **fields)]}, {})
    org.add_response("list_roots", {"Roots": [{"Id": "r-ab12", "Name": "Root"}]}, {})
    org.add_response("list_accounts_for_parent", {"Accounts": []}, {"ParentId": "r-ab12"})
    org.add_response("list_organizational_units_for_parent", {"OrganizationalUnits": []}, {"ParentId": "r-ab12"})
    estate = discover_accounts(stubs("organizations", "us-east-1"), stubs("sts", "us-east-1"), use_org=True)
    stubs.verify()
    assert [a.id for a in estate.accounts] == ([ACCOUNT, OTHER] if scanned else [ACCOUNT])
    assert [(a.id, why) for a, why in estate.skipped] == ([] if scanned else [(OTHER, reason)])
    assert (OTHER in estate.members) is scanned  # only ACTIVE accounts are entered for peer reads


# ================================================================================================ Bedrock regions
# Shape: botocore ssm GetParametersByPathResult/Parameter. Doc: SSM UG "Calling AWS service, Region, endpoint,
# Availability Zone, and local zone public parameters",
# https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-public-parameters-global-infrastructure.html

PATH = "/aws/service/global-infrastructure/services/bedrock/regions"


def parameter(region: str) -> dict[str, Any]:
    return {"Name": f"{PATH}/{region}", "Type": "String", "Value": region, "Version": 1, "LastModifiedDate": T,
            "ARN": f"arn:aws:ssm:us-east-1::parameter{PATH}/{region}", "DataType": "text"}


def test_bedrock_regions_come_from_ssm_across_pages_and_partitions() -> None:
    stubs = Stubs()
    ssm = stubs.stub("ssm", "us-east-1")
    # ap-southeast-9 stands for a region newer than the installed botocore; the others are other partitions.
    ssm.add_response("get_parameters_by_path", {"Parameters": [parameter("us-east-1"), parameter("us-gov-west-1"),
                                                               parameter("ap-southeast-9")],
                                                "NextToken": "AAEAAWdleGFtcGxl"},
                     {"Path": PATH, "Recursive": False})
    ssm.add_response("get_parameters_by_path", {"Parameters": [parameter("eu-west-1"), parameter("cn-north-1"),
                                                               parameter("eusc-de-east-1")]},
                     {"Path": PATH, "Recursive": False, "NextToken": "AAEAAWdleGFtcGxl"})
    found = bedrock_region_list(stubs("ssm", "us-east-1"), "aws")
    stubs.verify()
    assert found.source == "ssm" and found.regions == ("ap-southeast-9", "eu-west-1", "us-east-1")
    assert "ap-southeast-9" not in bedrock_regions()


@pytest.mark.parametrize(("code", "status"), [pytest.param("AccessDeniedException", 400, id="denied"),
                                              pytest.param("InternalServerError", 500, id="server-error")])
def test_bedrock_regions_fall_back_to_botocore(code: str, status: int) -> None:
    stubs = Stubs()
    stubs.stub("ssm", "us-east-1").add_client_error("get_parameters_by_path", code, "no", status)
    found = bedrock_region_list(stubs("ssm", "us-east-1"), "aws")
    assert found.source == "botocore" and found.regions == bedrock_regions()


def test_no_region_of_the_partition_falls_back_to_botocore() -> None:
    stubs = Stubs()
    stubs.stub("ssm", "us-east-1").add_response("get_parameters_by_path",
                                                {"Parameters": [parameter("us-gov-west-1")]},
                                                {"Path": PATH, "Recursive": False})
    assert bedrock_region_list(stubs("ssm", "us-east-1"), "aws").source == "botocore"


def test_region_source_is_in_findings_json_and_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto serves the public parameters (moto/ssm/resources/services.json.gz): a whole CLI run records "ssm"."""
    from moto import mock_aws

    from audit_bedrock.cli import main
    from tests.conftest import validate_findings

    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws():
        assert main(["--regions", "us-east-1", "--output-dir", str(tmp_path / "a"), "--format", "json",
                     "-q", "-q"]) == 1  # BIL-001
    doc = json.loads((tmp_path / "a" / "findings.json").read_text())
    validate_findings(doc)
    assert doc["scan"]["region_source"] == "ssm"
    other = json.loads(json.dumps(doc))
    other["scan"]["region_source"] = "botocore"
    other["scan"]["accounts"][0]["id"] = OTHER
    for part in ("coverage", "findings"):
        for item in other[part]:
            item["account_id"] = OTHER
            if part == "findings":
                item["id"] = item["id"][::-1]
    (tmp_path / "b.json").write_text(json.dumps(other))
    from audit_bedrock.merge import merge
    assert merge([str(tmp_path / "a" / "findings.json")]).meta.region_source == "ssm"
    assert merge([str(tmp_path / "a" / "findings.json"), str(tmp_path / "b.json")]).meta.region_source == "mixed"
