"""The evidence collectors and their analysis (BIL-022..BIL-025) against real AWS response shapes (botocore Stubber).

Every response below is validated by Stubber against the operation's output shape in the installed botocore
model; the shape names are given with each case. moto diverges where it matters here (no LookupEvents, no
deletionProtectionEnabled, LastModified always "now", Roots.PolicyTypes always empty), so these cases do not
use it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from audit_bedrock import evidence
from audit_bedrock.analyzer import Request, blocks
from audit_bedrock.collectors.base import AccountContext, RegionContext
from audit_bedrock.collectors.cloudtrail import EVENT_NAME, DeletionCollector, normalize
from audit_bedrock.collectors.delivery import INSIGHTS_QUERY, DeliveryCollector, due_day, key_time
from audit_bedrock.collectors.retention import BucketProtectionCollector
from audit_bedrock.collectors.scp import account_scps, read_scps
from audit_bedrock.discovery import Estate
from audit_bedrock.engine import Evaluator, load_rules
from audit_bedrock.facts import is_gap
from audit_bedrock.model import Account

ACCT = "111122223333"
MGMT = "999988887777"
REGION = "us-east-1"
RULES = load_rules()
NOW = dt.datetime.now(dt.UTC)
TODAY = NOW.date()


def day(offset: int) -> str:
    return (TODAY - dt.timedelta(days=offset)).isoformat()


@dataclass
class Stubs:
    """Stubbed clients by service, each checked to have answered exactly what was queued."""

    clients: dict[str, Any] = field(default_factory=dict)
    stubbers: dict[str, Stubber] = field(default_factory=dict)

    def __call__(self, service: str, region: str = REGION) -> Any:
        if service not in self.clients:
            self.clients[service] = boto3.client(service, region_name=region)
            self.stubbers[service] = Stubber(self.clients[service])
            self.stubbers[service].activate()
        return self.clients[service]

    def stub(self, service: str) -> Stubber:
        self(service)
        return self.stubbers[service]

    def ctx(self, settings: dict[str, Any] | None = None) -> RegionContext:
        actx = AccountContext(ACCT, "member", lambda s, r: self(s, r), REGION, settings=settings or {})
        return RegionContext(actx, REGION)

    def done(self) -> None:
        for s in self.stubbers.values():
            s.assert_no_pending_responses()


@pytest.fixture
def stubs() -> Iterator[Stubs]:
    s = Stubs()
    yield s
    s.done()


def fired(account: dict[str, Any]) -> list[tuple[str, str]]:
    """(rule id, blocked rule or severity) of every result."""
    return sorted((r.rule.id, r.properties.get("blocked_rule", r.severity))
                  for r in Evaluator(RULES, {"required_data_types": [], "min_retention_days": 0}
                                     ).evaluate_account(account))


def account_doc(*regions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"account_id": ACCT, "account_name": "member", "ou_path": "Root", "status": "scanned", "reason": "",
            "regions": [{"account_id": ACCT, "region": REGION, "status": "scanned", **r} for r in regions],
            "scanned_regions": [REGION], **extra}


# ------------------------------------------------------------------------------------------ BIL-023 LookupEvents

CLOUDTRAIL_EVENT = {  # the CloudTrailEvent string of a real Bedrock delete (panther-analysis detection test shape)
    "eventVersion": "1.09",
    "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLEID1234567:jane.doe",
                     "arn": f"arn:aws:sts::{ACCT}:assumed-role/AWSReservedSSO_AdministratorAccess_0123/jane.doe",
                     "accountId": ACCT, "accessKeyId": "ASIAEXAMPLEKEY123456",
                     "sessionContext": {"sessionIssuer": {
                         "type": "Role", "principalId": "AROAEXAMPLEID1234567",
                         "arn": f"arn:aws:iam::{ACCT}:role/aws-reserved/sso.amazonaws.com/"
                                "AWSReservedSSO_AdministratorAccess_0123",
                         "accountId": ACCT, "userName": "AWSReservedSSO_AdministratorAccess_0123"}}},
    "eventTime": "2026-11-20T14:03:11Z", "eventSource": "bedrock.amazonaws.com", "eventName": EVENT_NAME,
    "awsRegion": REGION, "sourceIPAddress": "203.0.113.17", "requestParameters": None, "responseElements": None,
    "eventID": "28773860-a4fd-47c7-a215-6f0e6e6e532f", "readOnly": False, "eventType": "AwsApiCall",
    "managementEvent": True, "recipientAccountId": ACCT, "eventCategory": "Management",
}


def trail_event(when: dt.datetime, event_id: str, error: str | None = None, **identity: Any) -> dict[str, Any]:
    """A LookupEventsResponse Events[] item (shape Event)."""
    detail = json.loads(json.dumps(CLOUDTRAIL_EVENT))
    detail["eventID"] = event_id
    detail["userIdentity"].update(identity)
    if error:
        detail.update(errorCode=error, errorMessage="User is not authorized")
    return {"EventId": event_id, "EventName": EVENT_NAME, "ReadOnly": "false", "AccessKeyId": "ASIAEXAMPLEKEY123456",
            "EventTime": when, "EventSource": "bedrock.amazonaws.com", "Username": "jane.doe", "Resources": [],
            "CloudTrailEvent": json.dumps(detail)}


LOOKUP_PARAMS = {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": EVENT_NAME}],
                 "StartTime": ANY, "EndTime": ANY, "MaxResults": 50}
T1 = dt.datetime(2026, 11, 20, 14, 3, 11, tzinfo=dt.UTC)
T2 = dt.datetime(2026, 11, 25, 8, 0, 0, tzinfo=dt.UTC)

LOOKUP_CASES = [
    pytest.param({"Events": [trail_event(T1, "e1")]}, ("e1", "2026-11-20T14:03:11Z"),
                 [("BIL-001", "high"), ("BIL-023", "high")], id="deleted-by-sso-admin"),
    pytest.param({"Events": [trail_event(T1, "e1"), trail_event(T2, "e2", error="AccessDenied")]},
                 ("e1", "2026-11-20T14:03:11Z"), [("BIL-001", "high"), ("BIL-023", "high")],
                 id="a-later-failed-attempt-is-not-the-deletion"),
    pytest.param({"Events": [trail_event(T2, "e2", error="AccessDenied")]}, None, [("BIL-001", "high")],
                 id="only-a-failed-attempt"),
    pytest.param({"Events": []}, None, [("BIL-001", "high")], id="nothing-in-90-days"),
]


@pytest.mark.parametrize(("response", "expected", "rules"), LOOKUP_CASES)
def test_lookup_events_names_who_deleted_logging(stubs: Stubs, response: dict[str, Any],
                                                 expected: tuple[str, str] | None,
                                                 rules: list[tuple[str, str]]) -> None:
    # Shapes: LookupEventsRequest / LookupEventsResponse (botocore cloudtrail 2013-11-01).
    stubs.stub("cloudtrail").add_response("lookup_events", response, LOOKUP_PARAMS)
    fact = DeletionCollector().collect(stubs.ctx(), {"logging": {"enabled": False}})["deletion"]
    region = {"logging": {"enabled": False}, "usage": {"invocations": 0, "series": 0, "lookback_days": 14},
              "deletion": fact}
    doc = account_doc(region, scp={"management": True, "protected": None})
    evidence.derive_evidence(doc)
    last = doc["regions"][0]["deletion"]["last"]
    assert (last["event_id"], last["time"]) == expected if expected else last is None
    if expected:
        assert last["principal_arn"].startswith(f"arn:aws:sts::{ACCT}:assumed-role/AWSReservedSSO_")
        assert last["role_arn"].endswith("AWSReservedSSO_AdministratorAccess_0123")
    assert [r for r in fired(doc) if r[0] != "BIL-024"] == rules


@pytest.mark.parametrize("code", ["AccessDeniedException", "OperationNotPermittedException"])
def test_lookup_events_unreadable_is_a_gap_for_bil_023_only(stubs: Stubs, code: str) -> None:
    stubs.stub("cloudtrail").add_client_error("lookup_events", code, "not authorized", 400,
                                              expected_params=LOOKUP_PARAMS)
    fact = DeletionCollector().collect(stubs.ctx(), {"logging": {"enabled": False}})["deletion"]
    assert is_gap(fact) and fact["action"] == "cloudtrail:LookupEvents"
    region = {"logging": {"enabled": False}, "usage": {"invocations": 0, "series": 0, "lookback_days": 14},
              "deletion": fact}
    doc = account_doc(region, scp={"management": True, "protected": None})
    evidence.derive_evidence(doc)
    assert [r for r in fired(doc) if r[0] != "BIL-024"] == [("BIL-001", "high"), ("SCAN-003", "BIL-023")]


def test_lookup_events_is_one_call_and_only_where_logging_is_off(stubs: Stubs) -> None:
    collector = DeletionCollector()
    assert collector.collect(stubs.ctx(), {"logging": {"enabled": True}}) == {"deletion": None}
    stubs.stub("cloudtrail").add_response("lookup_events", {"Events": [], "NextToken": "more"}, LOOKUP_PARAMS)
    fact = collector.collect(stubs.ctx(), {"logging": {"enabled": False}})["deletion"]
    assert fact["more"] is True  # never paged: a second page would be a second call (Stubber would refuse it)


# ------------------------------------------------------------------------------------------ BIL-022 delivery

def metric_data(values: dict[str, float], status: str = "Complete") -> dict[str, Any]:
    """GetMetricDataOutput with one MetricDataResult (newest first, as CloudWatch returns by default)."""
    items = sorted(values.items(), reverse=True)
    return {"MetricDataResults": [{"Id": "inv", "Label": "inv", "StatusCode": status,
                                   "Timestamps": [dt.datetime.fromisoformat(d).replace(tzinfo=dt.UTC)
                                                  for d, _ in items],
                                   "Values": [v for _, v in items]}], "Messages": []}


METRIC_PARAMS = {"MetricDataQueries": [{"Id": "inv", "Expression": INSIGHTS_QUERY, "Period": 86400,
                                        "ReturnData": True}], "StartTime": ANY, "EndTime": ANY}
GROUP = "/aws/bedrock/invocations"
BUCKET = "bil-logs"
R = f"bedrock-logs/AWSLogs/{ACCT}/BedrockModelInvocationLogs/{REGION}/"


def s3_key(offset: int, hour: int = 9) -> str:
    d = TODAY - dt.timedelta(days=offset)
    return f"{R}{d:%Y/%m/%d}/{hour:02d}/{d:%Y%m%d}T{hour:02d}5901002Z_8b7a6f5e4d3c2b1a.json.gz"


def listing(*keys: str, truncated: bool = False) -> dict[str, Any]:
    """ListObjectsV2Output: key names only are used."""
    out: dict[str, Any] = {"IsTruncated": truncated, "Name": BUCKET, "Prefix": R, "MaxKeys": 1000,
                           "KeyCount": len(keys)}
    if keys:
        out["Contents"] = [{"Key": k, "LastModified": NOW, "ETag": '"6805f2cfc46c0f04559748bb039d69ae"',
                            "Size": 1843, "StorageClass": "STANDARD"} for k in keys]
    return out


def streams(ingested: dt.datetime | None) -> dict[str, Any]:
    """DescribeLogStreamsResponse with the Bedrock stream (or none)."""
    if ingested is None:
        return {"logStreams": []}
    ms = int(ingested.timestamp() * 1000)
    return {"logStreams": [{"logStreamName": "aws/bedrock/modelinvocations", "creationTime": ms - 10**9,
                            "firstEventTimestamp": ms - 10**9, "lastEventTimestamp": ms, "lastIngestionTime": ms,
                            "arn": f"arn:aws:logs:{REGION}:{ACCT}:log-group:{GROUP}:log-stream:"
                                   "aws/bedrock/modelinvocations", "storedBytes": 0}]}


LOGGING_BOTH = {"enabled": True, "destinations": ["cloudwatch", "s3"],
                "cloudwatch": {"log_group": GROUP, "role_arn": "arn:aws:iam::111122223333:role/r", "large_data": None},
                "s3": {"bucket": BUCKET, "prefix": "bedrock-logs"}}
LOGGING_S3 = {**LOGGING_BOTH, "destinations": ["s3"], "cloudwatch": None}

DELIVERY_CASES = [
    # (logging, invocations per day offset, stream ingestion offset, listings [(StartAfter day offset, keys)], fired)
    pytest.param(LOGGING_BOTH, {1: 42, 3: 17}, 0, [(1, [s3_key(0), s3_key(1)])], [], id="both-delivering"),
    pytest.param(LOGGING_BOTH, {1: 42}, 5, [(1, [])], [("BIL-022", "high"), ("BIL-022", "high")],
                 id="both-silent-since-the-last-day-with-use"),
    pytest.param(LOGGING_BOTH, {1: 42}, None, [(1, [s3_key(1)])], [("BIL-022", "high")],
                 id="no-bedrock-stream-in-the-log-group"),
    pytest.param(LOGGING_S3, {2: 5}, None, [(2, []), (13, [s3_key(9)])], [("BIL-022", "high")],
                 id="s3-only-names-the-older-last-delivery-with-a-second-listing"),
    pytest.param(LOGGING_S3, {0: 3, 4: 8}, None, [(4, [s3_key(4)])], [],
                 id="use-earlier-today-is-judged-by-the-previous-day"),
    pytest.param(LOGGING_S3, {0: 3}, None, [(0, []), (13, [])], [("BIL-022", "high")],
                 id="first-use-today-and-nothing-ever-delivered"),
    pytest.param(LOGGING_S3, {1: 9}, None, [(1, [s3_key(1, h) for h in range(3)])], [],
                 id="truncated-listing-is-a-lower-bound-and-enough"),
    pytest.param(LOGGING_BOTH, {}, None, [], [], id="unused-nothing-else-read"),
]


@pytest.mark.parametrize(("logging", "use", "stream", "lists", "rules"), DELIVERY_CASES)
def test_delivery_compares_the_newest_log_with_the_last_day_of_use(
        stubs: Stubs, logging: dict[str, Any], use: dict[int, float], stream: int | None,
        lists: list[tuple[int, list[str]]], rules: list[tuple[str, str]]) -> None:
    stubs.stub("cloudwatch").add_response("get_metric_data", metric_data({day(o): v for o, v in use.items()}),
                                          METRIC_PARAMS)
    if use and logging.get("cloudwatch"):
        ingested = None if stream is None else dt.datetime.combine(
            TODAY - dt.timedelta(days=stream), dt.time(9, 59, 2), dt.UTC)
        stubs.stub("logs").add_response("describe_log_streams", streams(ingested), {
            "logGroupName": GROUP, "logStreamNamePrefix": "aws/bedrock/modelinvocations", "limit": 1})
    for offset, keys in lists:
        start_after = R + (TODAY - dt.timedelta(days=offset)).strftime("%Y/%m/%d")
        stubs.stub("s3").add_response("list_objects_v2", listing(*keys, truncated=len(keys) == 3),
                                      {"Bucket": BUCKET, "Prefix": R, "StartAfter": start_after})
    facts = {"logging": logging, "log_group": {"name": GROUP, "exists": True},
             "buckets": [{"name": BUCKET, "exists": True}]}
    region = {**facts, **DeliveryCollector().collect(stubs.ctx({"usage_lookback_days": 14}), facts)}
    doc = account_doc(region, scp={"management": True, "protected": None})
    evidence.derive_evidence(doc)
    assert [r for r in fired(doc) if r[0] == "BIL-022"] == rules
    delivery = doc["regions"][0]["delivery"]
    assert delivery["invocations"]["total"] == sum(use.values())
    messages = [r.message for r in Evaluator(RULES, {}).evaluate_account(doc) if r.rule.id == "BIL-022"]
    for m in messages:
        assert f"on {delivery['invocations']['last_day']}" in m and "last delivery " in m


def test_delivery_reads_nothing_where_logging_is_off(stubs: Stubs) -> None:
    assert DeliveryCollector().collect(stubs.ctx(), {"logging": {"enabled": False}}) == {"delivery": None}


@pytest.mark.parametrize("status", ["Forbidden", "InternalError"])
def test_metrics_status_not_complete_is_a_gap_never_a_zero(stubs: Stubs, status: str) -> None:
    stubs.stub("cloudwatch").add_response("get_metric_data", metric_data({}, status), METRIC_PARAMS)
    facts = {"logging": LOGGING_S3, "buckets": [{"name": BUCKET, "exists": True}]}
    region = {**facts, **DeliveryCollector().collect(stubs.ctx(), facts)}
    doc = account_doc(region, scp={"management": True, "protected": None})
    evidence.derive_evidence(doc)
    assert ("SCAN-003", "BIL-022") in fired(doc)


def test_listing_denied_is_a_gap_for_that_destination(stubs: Stubs) -> None:
    stubs.stub("cloudwatch").add_response("get_metric_data", metric_data({day(1): 4}), METRIC_PARAMS)
    stubs.stub("logs").add_response("describe_log_streams", streams(NOW), {
        "logGroupName": GROUP, "logStreamNamePrefix": "aws/bedrock/modelinvocations", "limit": 1})
    stubs.stub("s3").add_client_error("list_objects_v2", "AccessDenied", "Access Denied", 403)
    facts = {"logging": LOGGING_BOTH, "log_group": {"name": GROUP, "exists": True},
             "buckets": [{"name": BUCKET, "exists": True}]}
    region = {**facts, **DeliveryCollector().collect(stubs.ctx(), facts)}
    doc = account_doc(region, scp={"management": True, "protected": None})
    evidence.derive_evidence(doc)
    assert [r for r in fired(doc) if "BIL-022" in r] == [("SCAN-003", "BIL-022")]


@pytest.mark.parametrize(("days", "today", "expected"), [
    pytest.param({}, "2026-12-01", None, id="unused"),
    pytest.param({"2026-11-30": 4}, "2026-12-01", "2026-11-30", id="yesterday"),
    pytest.param({"2026-11-28": 4, "2026-12-01": 2}, "2026-12-01", "2026-11-28", id="today-and-earlier"),
    pytest.param({"2026-12-01": 2}, "2026-12-01", "2026-12-01", id="only-today"),
    pytest.param({"2026-11-28": 0.0}, "2026-12-01", None, id="zero-is-not-use"),
])
def test_due_day(days: dict[str, float], today: str, expected: str | None) -> None:
    assert due_day(days, today) == expected


@pytest.mark.parametrize(("key", "expected"), [
    pytest.param(f"{R}2026/12/01/09/20261201T095901002Z_8b7a6f5e4d3c2b1a.json.gz",
                 ("2026-12-01", "2026-12-01T09:59:01Z"), id="metadata-file"),
    pytest.param(f"{R}2026/04/20/00/data/f3ae32b1-ae22-48f1-ba9c-d8075737f52a_input.json.gz",
                 ("2026-04-20", "2026-04-20T00:00:00Z"), id="large-body-under-data"),
    pytest.param(f"{R}amazon-bedrock-logs-permission-check", None, id="not-dated"),
])
def test_key_time_comes_from_the_path_not_last_modified(key: str, expected: tuple[str, str] | None) -> None:
    assert key_time(key, R) == expected


# ------------------------------------------------------------------------------------------ BIL-025 erasable

LOCKED = {"ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled",
                                      "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 365}}}}

PROTECTION_CASES = [
    # GetBucketVersioningOutput, GetObjectLockConfigurationOutput (or its 404 error code)
    pytest.param({}, "ObjectLockConfigurationNotFoundError", True, id="never-versioned-no-lock"),
    pytest.param({"Status": "Suspended"}, "ObjectLockConfigurationNotFoundError", True, id="suspended"),
    pytest.param({"Status": "Enabled", "MFADelete": "Disabled"}, "ObjectLockConfigurationNotFoundError", False,
                 id="versioned"),
    pytest.param({"Status": "Enabled"}, LOCKED, False, id="locked"),
    pytest.param("AccessDenied", "ObjectLockConfigurationNotFoundError", "gap", id="versioning-denied"),
    pytest.param("AccessDenied", LOCKED, False, id="versioning-denied-but-locked"),
]


@pytest.mark.parametrize(("versioning", "lock", "erasable"), PROTECTION_CASES)
def test_bucket_versioning_and_object_lock(stubs: Stubs, versioning: Any, lock: Any, erasable: Any) -> None:
    s3 = stubs.stub("s3")
    if isinstance(versioning, str):
        s3.add_client_error("get_bucket_versioning", versioning, "Access Denied", 403,
                            expected_params={"Bucket": BUCKET})
    else:
        s3.add_response("get_bucket_versioning", versioning, {"Bucket": BUCKET})
    if isinstance(lock, str):
        s3.add_client_error("get_object_lock_configuration", lock,
                            "Object Lock configuration does not exist for this bucket", 404,
                            expected_params={"Bucket": BUCKET})
    else:
        s3.add_response("get_object_lock_configuration", lock, {"Bucket": BUCKET})
    facts = {"logging": LOGGING_S3, "buckets": [{"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}", "exists": True}]}
    ctx = stubs.ctx()
    region = {**facts, **BucketProtectionCollector().collect(ctx, facts)}
    # The same bucket named again (another region, the large-data config) is not read again.
    assert BucketProtectionCollector().collect(ctx, facts)["bucket_protection"] == region["bucket_protection"]
    doc = account_doc(region, scp={"management": True, "protected": None})
    evidence.derive_evidence(doc)
    store = doc["regions"][0]["log_stores"][0]
    assert (is_gap(store["erasable"]) and erasable == "gap") or store["erasable"] is erasable
    expected = {True: [("BIL-025", "low")], False: [], "gap": [("SCAN-003", "BIL-025")]}[erasable]
    assert [r for r in fired(doc) if "BIL-025" in r] == expected


@pytest.mark.parametrize(("group", "fires"), [
    pytest.param({"deletion_protection": True}, False, id="protected"),
    pytest.param({"deletion_protection": False}, True, id="unprotected"),
    pytest.param({"deletion_protection": {"gap": True, "action": "logs:DescribeLogGroups", "code": "AccessDenied",
                                          "message": "x"}}, "gap", id="unreadable"),
])
def test_log_group_deletion_protection(group: dict[str, Any], fires: Any) -> None:
    region = {"logging": {"enabled": True}, "log_group": {"name": GROUP, "exists": True,
                                                          "arn": f"arn:aws:logs:{REGION}:{ACCT}:log-group:{GROUP}",
                                                          **group}}
    doc = account_doc(region, scp={"management": True, "protected": None})
    evidence.derive_evidence(doc)
    expected = {True: [("BIL-025", "low")], False: [], "gap": [("SCAN-003", "BIL-025")]}[fires]
    assert [r for r in fired(doc) if "BIL-025" in r] == expected


def test_log_group_reads_deletion_protection_from_describe_log_groups(stubs: Stubs) -> None:
    from audit_bedrock.collectors.logs import read_log_group

    # DescribeLogGroupsResponse; LogGroup.deletionProtectionEnabled exists since botocore 1.41.3.
    stubs.stub("logs").add_response("describe_log_groups", {"logGroups": [
        {"logGroupName": GROUP, "creationTime": 1730419100000, "retentionInDays": 365, "metricFilterCount": 0,
         "arn": f"arn:aws:logs:{REGION}:{ACCT}:log-group:{GROUP}:*", "storedBytes": 123456,
         "logGroupClass": "STANDARD", "logGroupArn": f"arn:aws:logs:{REGION}:{ACCT}:log-group:{GROUP}",
         "deletionProtectionEnabled": True}]}, {"logGroupNamePrefix": GROUP})
    assert read_log_group(stubs.ctx().account, REGION, GROUP)["deletion_protection"] is True


# ------------------------------------------------------------------------------------------ BIL-024 SCPs

PROTECT = {"Version": "2012-10-17", "Statement": [{
    "Sid": "ProtectBedrockInvocationLogging", "Effect": "Deny",
    "Action": ["bedrock:DeleteModelInvocationLoggingConfiguration", "bedrock:PutModelInvocationLoggingConfiguration"],
    "Resource": "*", "Condition": {"ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::*:role/BedrockLoggingAdmin",
                                                                       "arn:aws:iam::*:role/AWSControlTowerExecution"]}}}]}
DELETE_ONLY = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Deny", "Action": "bedrock:DeleteModelInvocationLoggingConfiguration", "Resource": "*"}]}
WILDCARD = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Deny", "Action": "bedrock:*ModelInvocationLoggingConfiguration", "Resource": "*",
    "Condition": {"ArnNotLike": {"aws:PrincipalARN": "arn:aws:iam::*:role/BedrockLoggingAdmin"}}}]}
REGION_DENY = {"Version": "2012-10-17", "Statement": [{  # AWS's region-deny pattern: not a logging protection
    "Effect": "Deny", "NotAction": ["iam:*", "organizations:*"], "Resource": "*",
    "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1"]}}}]}
UNDECIDABLE = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Deny", "Action": "bedrock:*", "Resource": "*",
    "Condition": {"StringEqualsWhatever": {"aws:PrincipalTag/team": "x"}}}]}
UNRELATED = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "ec2:*", "Resource": "*"}]}

BOTH = ["bedrock:DeleteModelInvocationLoggingConfiguration", "bedrock:PutModelInvocationLoggingConfiguration"]
ROOT, OU, SUB = "r-ab12", "ou-ab12-11111111", "ou-ab12-22222222"
CHAIN = {ACCT: [ROOT, OU, SUB], MGMT: [ROOT]}
ENABLED = [{"Type": "SERVICE_CONTROL_POLICY", "Status": "ENABLED"}]


def org_estate(policy_types: list[dict[str, str]] | None = None, feature_set: str = "ALL") -> Estate:
    return Estate("o-a1b2c3d4e5", MGMT, (Account(ACCT), Account(MGMT)), (),
                  organization={"management_account": MGMT, "feature_set": feature_set, "chains": CHAIN,
                   "root_policy_types": ENABLED if policy_types is None else policy_types})


def policy_summary(pid: str, name: str, managed: bool = False) -> dict[str, Any]:
    """PolicySummary (ListPoliciesResponse.Policies[])."""
    arn = (f"arn:aws:organizations::aws:policy/service_control_policy/{pid}" if managed
           else f"arn:aws:organizations::{MGMT}:policy/o-a1b2c3d4e5/service_control_policy/{pid}")
    return {"Id": pid, "Arn": arn, "Name": name, "Description": name, "Type": "SERVICE_CONTROL_POLICY",
            "AwsManaged": managed}


def target(tid: str) -> dict[str, Any]:
    """PolicyTargetSummary."""
    kind = "ROOT" if tid.startswith("r-") else "ORGANIZATIONAL_UNIT" if tid.startswith("ou-") else "ACCOUNT"
    return {"TargetId": tid, "Arn": f"arn:aws:organizations::{MGMT}:{kind.lower()}/o-a1b2c3d4e5/{tid}",
            "Name": tid, "Type": kind}


def stub_scps(stubs: Stubs, policies: dict[str, tuple[dict[str, Any], list[str]]]) -> None:
    """ListPolicies (FullAWSAccess first, never described), DescribePolicy each, ListTargetsForPolicy if it may deny."""
    org = stubs.stub("organizations")
    summaries = [policy_summary("p-FullAWSAccess", "FullAWSAccess", managed=True)]
    summaries += [policy_summary(pid, f"policy-{pid}") for pid in policies]
    org.add_response("list_policies", {"Policies": summaries}, {"Filter": "SERVICE_CONTROL_POLICY"})
    for pid, (document, targets) in policies.items():
        org.add_response("describe_policy", {"Policy": {"PolicySummary": policy_summary(pid, f"policy-{pid}"),
                                                        "Content": json.dumps(document)}}, {"PolicyId": pid})
        if document is not UNRELATED:
            org.add_response("list_targets_for_policy", {"Targets": [target(t) for t in targets]},
                             {"PolicyId": pid})


SCP_CASES = [
    pytest.param({"p-1": (PROTECT, [OU])}, True, [], id="deny-both-with-admin-exception-on-an-ou"),
    pytest.param({"p-1": (PROTECT, [ACCT])}, True, [], id="attached-to-the-account"),
    pytest.param({"p-1": (WILDCARD, [ROOT])}, True, [], id="wildcard-action-at-the-root"),
    pytest.param({"p-1": (DELETE_ONLY, [SUB])}, False, ["bedrock:PutModelInvocationLoggingConfiguration"],
                 id="only-delete-denied"),
    pytest.param({"p-1": (PROTECT, ["ou-ab12-99999999"])}, False,
                 BOTH,
                 id="attached-off-the-path"),
    pytest.param({"p-1": (REGION_DENY, [ROOT])}, False,
                 BOTH,
                 id="region-deny-is-not-protection"),
    pytest.param({"p-1": (UNDECIDABLE, [ROOT])}, False,
                 BOTH,
                 id="undecidable-deny-is-not-protection"),
    pytest.param({"p-2": (UNRELATED, [])}, False,
                 BOTH,
                 id="unrelated-policy-targets-not-listed"),
]


@pytest.mark.parametrize(("policies", "protected", "open_actions"), SCP_CASES)
def test_scp_protection_along_the_ou_path(stubs: Stubs, policies: dict[str, Any], protected: bool,
                                          open_actions: list[str]) -> None:
    stub_scps(stubs, policies)
    snapshot = read_scps(stubs("organizations"), org_estate())
    doc = account_doc(scp=account_scps(snapshot, ACCT), scanned_regions=[REGION, "eu-west-1"])
    evidence.derive_evidence(doc)
    scp = doc["scp"]
    assert (scp["protected"], scp["open_actions"]) == (protected, open_actions)
    assert fired(doc) == ([] if protected else [("BIL-024", "medium")])
    mgmt = {**account_doc(scp=account_scps(snapshot, MGMT)), "account_id": MGMT}
    evidence.derive_evidence(mgmt)
    assert fired(mgmt) == [("BIL-024", "info")]


def test_message_names_the_open_action(stubs: Stubs) -> None:
    stub_scps(stubs, {"p-1": (DELETE_ONLY, [ROOT])})
    doc = account_doc(scp=account_scps(read_scps(stubs("organizations"), org_estate()), ACCT))
    evidence.derive_evidence(doc)
    [result] = Evaluator(RULES, {}).evaluate_account(doc)
    assert "bedrock:PutModelInvocationLoggingConfiguration is not denied" in result.message


@pytest.mark.parametrize("operation", ["list_policies", "describe_policy", "list_targets_for_policy"])
def test_caller_that_may_not_read_scps_gets_a_gap(stubs: Stubs, operation: str) -> None:
    org = stubs.stub("organizations")
    calls = ["list_policies", "describe_policy", "list_targets_for_policy"]
    responses = {"list_policies": {"Policies": [policy_summary("p-1", "protect")]},
                 "describe_policy": {"Policy": {"PolicySummary": policy_summary("p-1", "protect"),
                                                "Content": json.dumps(PROTECT)}}}
    for name in calls[:calls.index(operation)]:
        org.add_response(name, responses[name])
    org.add_client_error(operation, "AccessDeniedException", "You don't have permissions to access this resource.",
                         400)
    snapshot = read_scps(stubs("organizations"), org_estate())
    doc = account_doc(scp=account_scps(snapshot, ACCT))
    evidence.derive_evidence(doc)
    assert fired(doc) == [("SCAN-003", "BIL-024")]
    mgmt = {**account_doc(scp=account_scps(snapshot, MGMT)), "account_id": MGMT}
    evidence.derive_evidence(mgmt)
    assert fired(mgmt) == [("BIL-024", "info")]  # the management account needs no SCP read


@pytest.mark.parametrize(("estate", "reason"), [
    pytest.param(org_estate(policy_types=[]), "not enabled on the root", id="scp-type-not-enabled"),
    pytest.param(org_estate(feature_set="CONSOLIDATED_BILLING"), "consolidated billing", id="billing-only"),
    pytest.param(Estate(None, ACCT, (Account(ACCT),)), "not in an organization", id="standalone-account"),
])
def test_no_scps_possible_fires_with_the_reason(stubs: Stubs, estate: Estate, reason: str) -> None:
    doc = account_doc(scp=account_scps(read_scps(stubs("organizations"), estate), ACCT))
    evidence.derive_evidence(doc)
    [result] = Evaluator(RULES, {}).evaluate_account(doc)
    assert result.rule.id == "BIL-024" and reason in result.message


@pytest.mark.parametrize(("policy", "context", "expected"), [
    pytest.param(PROTECT, {"aws:PrincipalArn": f"arn:aws:iam::{ACCT}:role/Workload"}, True, id="denied"),
    pytest.param(PROTECT, {"aws:PrincipalArn": f"arn:aws:iam::{ACCT}:role/BedrockLoggingAdmin"}, False,
                 id="admin-exception"),
    pytest.param(UNDECIDABLE, {}, None, id="undecidable-deny"),
    pytest.param({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]},
                 {}, True, id="no-allow-at-the-level-is-an-implicit-deny"),
])
def test_blocks_is_strict(policy: dict[str, Any], context: dict[str, str], expected: bool | None) -> None:
    req = Request("bedrock:DeleteModelInvocationLoggingConfiguration", "*", None,
                  {"aws:RequestedRegion": REGION, **context})
    full = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    docs = [policy] if expected is True and "Allow" in json.dumps(policy) else [full, policy]
    assert blocks(docs, req) is expected


# ------------------------------------------------------------------------------------------ reports

def test_coverage_shows_the_last_delivery_and_the_summary_counts_silent_regions() -> None:
    import io
    from dataclasses import replace

    from audit_bedrock.reports import RenderContext
    from audit_bedrock.reports.html import render_text
    from audit_bedrock.reports.json_report import render as render_json
    from audit_bedrock.reports.summary import render_summary
    from tests.conftest import validate_findings
    from tests.support.report_samples import PROD, sample_result

    base = sample_result()
    cells = [replace(c, delivering=True, last_delivery="2026-11-30T10:00:00Z")
             if (c.account_id, c.region) == (PROD, "us-east-1")
             else replace(c, delivering=False, last_delivery=None) if (c.account_id, c.region) == (PROD, "us-west-2")
             else c for c in base.coverage]
    result = replace(base, coverage=tuple(cells))
    out = io.StringIO()
    render_summary(result, [], out=out, colour=False)
    assert "regions on but not delivering: 1 (BIL-022)" in out.getvalue()
    out = io.StringIO()
    render_summary(base, [], out=out, colour=False)
    assert "not delivering" not in out.getvalue()
    html = render_text(result, RenderContext())
    assert "last delivery 2026-11-30 10:00:00" in html and "last delivery never, not delivering" in html
    doc = json.loads(render_json(result, RenderContext()))
    validate_findings(doc)
    mine = {c["region"]: c for c in doc["coverage"] if c["account_id"] == PROD}
    assert (mine["us-east-1"]["delivering"], mine["us-east-1"]["last_delivery"]) == (True, "2026-11-30T10:00:00Z")
    assert "delivering" not in next(c for c in doc["coverage"] if c["account_id"] != PROD and c["status"] == "scanned")


# ------------------------------------------------------------------------------------------ the stand-in's answers

def _parse(service: str, operation: str, body: bytes) -> dict[str, Any]:
    """Parse a wire reply as botocore does for `operation` (fails on a shape botocore would not read)."""
    import botocore.parsers
    import botocore.session

    model = botocore.session.get_session().get_service_model(service).operation_model(operation)
    parser = botocore.parsers.create_parser(model.metadata["protocol"])
    parsed: dict[str, Any] = parser.parse({"status_code": 200, "headers": {}, "body": body}, model.output_shape)
    return parsed


def test_standin_answers_lookup_events_in_the_wire_shape() -> None:
    from audit_bedrock.standin.evidence import LOOKUP_TARGET, EvidenceAnswers

    answers = EvidenceAnswers(caller=MGMT)
    answers.add_deletion(ACCT, REGION, T1, role="Admin", session="jane")
    answers.add_deletion(ACCT, REGION, T2, role="Dev", session="bot", error_code="AccessDenied")
    answers.add_deletion(MGMT, REGION, T2, role="Admin", session="root-ish")
    body = json.dumps({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": EVENT_NAME}],
                       "StartTime": int(T1.timestamp()) - 1, "EndTime": int(T2.timestamp()) + 1,
                       "MaxResults": 50}).encode()
    status, headers, reply = answers.answer(f"com.amazonaws.cloudtrail.v20131101.{LOOKUP_TARGET}", ACCT, REGION,
                                            body) or (0, {}, b"")
    assert status == 200 and headers["Content-Type"] == "application/x-amz-json-1.1"
    parsed = _parse("cloudtrail", "LookupEvents", reply)
    assert [e["EventTime"] for e in parsed["Events"]] == [T2, T1]  # newest first, datetimes from epoch seconds
    events = [normalize(e) for e in parsed["Events"]]
    assert [(e["principal_arn"], e["error_code"]) for e in events] == [
        (f"arn:aws:sts::{ACCT}:assumed-role/Dev/bot", "AccessDenied"),
        (f"arn:aws:sts::{ACCT}:assumed-role/Admin/jane", None)]
    caller_reply = answers.answer(LOOKUP_TARGET, None, REGION, body)  # the caller's own keys: its account
    assert caller_reply is not None and len(json.loads(caller_reply[2])["Events"]) == 1
    late = json.dumps({"StartTime": int(T2.timestamp()) + 10, "EndTime": int(T2.timestamp()) + 20}).encode()
    late_reply = answers.answer(LOOKUP_TARGET, ACCT, REGION, late)
    assert late_reply is not None and json.loads(late_reply[2]) == {"Events": []}
    assert answers.answer("Logs_20140328.DescribeLogGroups", ACCT, REGION, b"{}") is None  # forwarded


def test_standin_adds_deletion_protection_to_the_groups_it_names() -> None:
    from audit_bedrock.standin.evidence import LOG_GROUPS_TARGET, EvidenceAnswers

    answers = EvidenceAnswers(caller=MGMT, protected_log_groups={(ACCT, REGION, GROUP)})
    moto_reply = json.dumps({"logGroups": [{"logGroupName": GROUP, "creationTime": 1, "storedBytes": 0},
                                           {"logGroupName": "/other", "creationTime": 1, "storedBytes": 0}]}).encode()
    amended = _parse("logs", "DescribeLogGroups", answers.amend(LOG_GROUPS_TARGET, ACCT, REGION, 200, moto_reply))
    assert [g.get("deletionProtectionEnabled") for g in amended["logGroups"]] == [True, None]
    assert answers.amend(LOG_GROUPS_TARGET, "000000000000", REGION, 200, moto_reply) == moto_reply


def test_discovery_records_each_accounts_root_and_ous_at_no_extra_call() -> None:
    from moto import mock_aws

    from audit_bedrock.discovery import discover_accounts

    with mock_aws():
        org = boto3.client("organizations", region_name=REGION)
        org.create_organization(FeatureSet="ALL")
        root = org.list_roots()["Roots"][0]["Id"]
        org.enable_policy_type(RootId=root, PolicyType="SERVICE_CONTROL_POLICY")
        ou = org.create_organizational_unit(ParentId=root, Name="Prod")["OrganizationalUnit"]["Id"]
        sub = org.create_organizational_unit(ParentId=ou, Name="Payments")["OrganizationalUnit"]["Id"]
        acct = org.create_account(AccountName="p", Email="p@example.com")["CreateAccountStatus"]["AccountId"]
        org.move_account(AccountId=acct, SourceParentId=root, DestinationParentId=sub)
        calls: list[str] = []
        org.meta.events.register("before-call", lambda model, **_: calls.append(model.name))
        estate = discover_accounts(org, boto3.client("sts", region_name=REGION), use_org=True)
    meta = estate.organization
    assert meta["chains"][acct] == [root, ou, sub]
    assert meta["management_account"] == estate.caller_account and meta["feature_set"] == "ALL"
    assert {"Type": "SERVICE_CONTROL_POLICY", "Status": "ENABLED"} in meta["root_policy_types"]
    # The walk discovery always made: no ListParents, no ListPoliciesForTarget.
    assert sorted(set(calls)) == ["DescribeOrganization", "ListAccounts", "ListAccountsForParent",
                                  "ListOrganizationalUnitsForParent", "ListRoots"]
