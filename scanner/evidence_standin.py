"""What moto cannot answer for the evidence rules, answered by the stand-in proxy in AWS's own wire shapes.

- `cloudtrail:LookupEvents`: moto has none (its server answers HTTP 500 text/html, which botocore would
  retry, i.e. repeat). The proxy answers it from `deletions` and never forwards it. JSON 1.1, target
  `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents`; `EventTime` is epoch seconds
  (the JSON protocol's timestamp format); `CloudTrailEvent` is the event record as a JSON string.
- `logs:DescribeLogGroups`: moto never returns `LogGroup.deletionProtectionEnabled` (botocore >= 1.41.3);
  the proxy adds `true` to the groups in `protected_log_groups`.

Only the stand-in (demo, tests, benchmark) uses this; the scanner never does.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

LOOKUP_TARGET = "CloudTrail_20131101.LookupEvents"
LOG_GROUPS_TARGET = "Logs_20140328.DescribeLogGroups"
JSON_11 = "application/x-amz-json-1.1"


def deletion_event(account: str, region: str, when: dt.datetime, *, role: str, session: str,
                   error_code: str | None = None) -> dict[str, Any]:
    """A LookupEvents Event for DeleteModelInvocationLoggingConfiguration by an assumed role (JSON wire form)."""
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{account}/{region}/{when.isoformat()}"))
    role_arn = f"arn:aws:iam::{account}:role/{role}"
    issuer = {"type": "Role", "principalId": f"AROAEXAMPLE{account[:9]}", "arn": role_arn, "accountId": account,
              "userName": role.rsplit("/", 1)[-1]}
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "AssumedRole", "principalId": f"AROAEXAMPLE{account[:9]}:{session}",
                         "arn": f"arn:aws:sts::{account}:assumed-role/{role.rsplit('/', 1)[-1]}/{session}",
                         "accountId": account, "accessKeyId": "ASIAEXAMPLEKEY123456",
                         "sessionContext": {"sessionIssuer": issuer,
                                            "attributes": {"creationDate": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                                           "mfaAuthenticated": "false"}}},
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "eventSource": "bedrock.amazonaws.com",
        "eventName": "DeleteModelInvocationLoggingConfiguration", "awsRegion": region,
        "sourceIPAddress": "203.0.113.17", "userAgent": "aws-cli/2.22.0", "requestParameters": None,
        "responseElements": None, "requestID": str(uuid.uuid5(uuid.NAMESPACE_OID, event_id)), "eventID": event_id,
        "readOnly": False, "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if error_code:
        record.update(errorCode=error_code, errorMessage="User is not authorized to perform this operation")
    return {"EventId": event_id, "EventName": "DeleteModelInvocationLoggingConfiguration", "ReadOnly": "false",
            "AccessKeyId": "ASIAEXAMPLEKEY123456", "EventTime": int(when.timestamp()),
            "EventSource": "bedrock.amazonaws.com", "Username": session, "Resources": [],
            "CloudTrailEvent": json.dumps(record)}


@dataclass
class EvidenceAnswers:
    """The stand-in's answers for what moto lacks, by (account, region); `caller` names the caller's own keys."""

    caller: str | None = None
    deletions: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    protected_log_groups: set[tuple[str, str, str]] = field(default_factory=set)
    answered: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_deletion(self, account: str, region: str, when: dt.datetime, *, role: str = "Administrator",
                     session: str = "jane.doe", error_code: str | None = None) -> None:
        self.deletions.setdefault((account, region), []).append(
            deletion_event(account, region, when, role=role, session=session, error_code=error_code))

    def answer(self, target: str, account: str | None, region: str, body: bytes) -> tuple[int, dict[str, str],
                                                                                        bytes] | None:
        """The reply to a request moto cannot answer, or None to forward it."""
        if not target.endswith(LOOKUP_TARGET):
            return None
        try:
            req = json.loads(body or b"{}")
        except json.JSONDecodeError:
            req = {}
        attrs = {a.get("AttributeKey"): a.get("AttributeValue") for a in req.get("LookupAttributes") or []}
        start, end = float(req.get("StartTime") or 0), float(req.get("EndTime") or 2**40)
        events = [e for e in self.deletions.get((account or self.caller or "", region), [])
                  if attrs.get("EventName") in (None, e["EventName"]) and start <= e["EventTime"] <= end]
        events.sort(key=lambda e: -int(e["EventTime"]))
        with self._lock:
            self.answered += 1
        limit = int(req.get("MaxResults") or 50)
        reply: dict[str, Any] = {"Events": events[:limit]}
        if len(events) > limit:
            reply["NextToken"] = "standin-next"
        return 200, {"Content-Type": JSON_11, "x-amzn-RequestId": str(uuid.uuid4())}, json.dumps(reply).encode()

    def amend(self, target: str, account: str | None, region: str, status: int, body: bytes) -> bytes:
        """A forwarded reply with what moto leaves out."""
        if status != 200 or not target.endswith(LOG_GROUPS_TARGET) or not self.protected_log_groups:
            return body
        doc = json.loads(body)
        acct = account or self.caller or ""
        for group in doc.get("logGroups") or []:
            if (acct, region, group.get("logGroupName")) in self.protected_log_groups:
                group["deletionProtectionEnabled"] = True
        return json.dumps(doc).encode()


# ---------------------------------------------------------------------------------------------- the demo's evidence

PROTECT_SCP = {"Version": "2012-10-17", "Statement": [{
    "Sid": "ProtectBedrockInvocationLogging", "Effect": "Deny",
    "Action": ["bedrock:DeleteModelInvocationLoggingConfiguration", "bedrock:PutModelInvocationLoggingConfiguration"],
    "Resource": "*", "Condition": {"ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::*:role/BedrockLoggingAdmin"]}}}]}
DELETE_ONLY_SCP = {"Version": "2012-10-17", "Statement": [{
    "Sid": "NoDeletingBedrockLogging", "Effect": "Deny", "Action": "bedrock:DeleteModelInvocationLoggingConfiguration",
    "Resource": "*"}]}
DEMO_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
LOG_STREAM = "aws/bedrock/modelinvocations"


def _member(endpoint: str, caller: dict[str, str], account: str, role: str) -> Any:
    """A boto3 session in `account` through `role`, as the seed enters member accounts."""
    import boto3

    creds = boto3.client("sts", region_name="us-east-1", endpoint_url=endpoint, **caller).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="demo-evidence")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"])


def _invocations(session: Any, endpoint: str, region: str, when: dt.datetime, counts: dict[str, float]) -> None:
    session.client("cloudwatch", region_name=region, endpoint_url=endpoint).put_metric_data(
        Namespace="AWS/Bedrock", MetricData=[
            {"MetricName": "Invocations", "Dimensions": [{"Name": "ModelId", "Value": m}], "Value": v,
             "Timestamp": when, "Unit": "Count"} for m, v in counts.items()])


def demo_answers(ids: dict[str, str], today: dt.date | None = None) -> EvidenceAnswers:
    """What the proxy answers for the demo organization (`ids`: account name -> id).

    payments-prod's eu-west-1 logging was deleted by an SSO administrator five days ago (BIL-023), after a
    developer's attempt that failed the day before (not a deletion); security-tooling's log group has
    deletion protection. Times are whole days before `today`, so every proxy of one estate answers alike.
    """
    day = today or dt.datetime.now(dt.UTC).date()
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    answers = EvidenceAnswers(caller=ids["management"])
    answers.add_deletion(ids["payments-prod"], "eu-west-1", midnight - dt.timedelta(days=5) + dt.timedelta(
        hours=7, minutes=52, seconds=29), role="aws-reserved/sso.amazonaws.com/AWSReservedSSO_AdministratorAccess_"
        "5e0c0c2b1a9f", session="jane.doe")
    answers.add_deletion(ids["payments-prod"], "eu-west-1", midnight - dt.timedelta(days=6) + dt.timedelta(hours=15),
                         role="PaymentsDeveloper", session="ci-bot", error_code="AccessDenied")
    answers.protected_log_groups.add((ids["security-tooling"], "us-east-1", "/bedrock/invocations"))
    return answers


def seed_demo_evidence(endpoint: str, ids: dict[str, str], caller: dict[str, str],
                       role: str = "OrganizationAccountAccessRole") -> None:
    """Add the evidence of BIL-022..BIL-025 to the seeded demo organization (the proxy adds `demo_answers`).

    security-tooling stays compliant: Bedrock is used in every region and its logs arrive (objects under
    Bedrock's key layout, the CloudWatch stream ingested), an SCP on the account denies both logging changes
    except to BedrockLoggingAdmin, its buckets are versioned with Object Lock, its log group has deletion
    protection (through the proxy). data-science us-east-1 and ml-platform us-west-2 are used and receive
    nothing (BIL-022); the Payments OU denies only the deletion (BIL-024 names Put as open); every other
    bucket and log group is erasable (BIL-025).
    """
    import boto3

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    used = now - dt.timedelta(days=2)
    org = boto3.client("organizations", region_name="us-east-1", endpoint_url=endpoint, **caller)
    root = org.list_roots()["Roots"][0]["Id"]
    org.enable_policy_type(RootId=root, PolicyType="SERVICE_CONTROL_POLICY")
    for name, content, target in (("protect-bedrock-logging", PROTECT_SCP, ids["security-tooling"]),
                                  ("no-deleting-bedrock-logging", DELETE_ONLY_SCP, "Payments")):
        pid = org.create_policy(Name=name, Description=name, Type="SERVICE_CONTROL_POLICY",
                                Content=json.dumps(content))["Policy"]["PolicySummary"]["Id"]
        if not target.isdigit():  # an OU, by name
            target = next(o["Id"] for o in _all_ous(org, root) if o["Name"] == target)
        org.attach_policy(PolicyId=pid, TargetId=target)

    acct = ids["security-tooling"]
    sec = _member(endpoint, caller, acct, role)
    for region in DEMO_REGIONS:
        _invocations(sec, endpoint, region, used, {"anthropic.claude-3-haiku-20240307-v1:0": 120,
                                                   "amazon.titan-embed-text-v2:0": 30})
        s3 = sec.client("s3", region_name=region, endpoint_url=endpoint)
        bucket = f"sec-bedrock-logs-{acct}-{region}"
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 400}}})
        # The bucket policy denies insecure transport, which moto's http endpoint is: lift it while writing.
        saved = s3.get_bucket_policy(Bucket=bucket)["Policy"]
        s3.delete_bucket_policy(Bucket=bucket)
        for hour in (9, 10):
            stamp = used.replace(hour=hour)
            key = (f"bedrock/AWSLogs/{acct}/BedrockModelInvocationLogs/{region}/{stamp:%Y/%m/%d/%H}/"
                   f"{stamp:%Y%m%dT%H%M%S}002Z_{uuid.uuid5(uuid.NAMESPACE_URL, f'{region}/{hour}').hex[:16]}"
                   ".json.gz")
            s3.put_object(Bucket=bucket, Key=key, Body=b"\x1f\x8b")  # key names only are ever read
        s3.put_bucket_policy(Bucket=bucket, Policy=saved)
    logs = sec.client("logs", region_name="us-east-1", endpoint_url=endpoint)
    logs.create_log_stream(logGroupName="/bedrock/invocations", logStreamName=LOG_STREAM)
    logs.put_log_events(logGroupName="/bedrock/invocations", logStreamName=LOG_STREAM, logEvents=[
        {"timestamp": int(used.timestamp() * 1000), "message": '{"schemaType": "ModelInvocationLog"}'}])
    for name, region in (("data-science", "us-east-1"), ("ml-platform", "us-west-2")):
        _invocations(_member(endpoint, caller, ids[name], role), endpoint, region, used,
                     {"anthropic.claude-3-5-sonnet-20240620-v1:0": 58})


def _all_ous(org: Any, root: str) -> list[dict[str, Any]]:
    """Every OU under `root` (the demo's tree is small)."""
    out, todo = [], [root]
    while todo:
        parent = todo.pop()
        for ou in org.list_organizational_units_for_parent(ParentId=parent)["OrganizationalUnits"]:
            out.append(ou)
            todo.append(ou["Id"])
    return out
