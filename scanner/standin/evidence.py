"""What moto cannot answer for the evidence rules, answered by the stand-in proxy in AWS's own wire shapes.

- `cloudtrail:LookupEvents`: moto has none (its server answers HTTP 500 text/html, which botocore would
  retry, i.e. repeat). The proxy answers it from `deletions` and never forwards it. JSON 1.1, target
  `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents`; `EventTime` is epoch seconds
  (the JSON protocol's timestamp format); `CloudTrailEvent` is the event record as a JSON string.
- `logs:DescribeLogGroups`: moto never returns `LogGroup.deletionProtectionEnabled` (botocore >= 1.41.3);
  the proxy adds `true` to the groups in `protected_log_groups`.
- `logs:DescribeLogStreams`, with `backdate_ingestion` (the benchmark's): moto stamps `lastIngestionTime` with
  the moment of the PutLogEvents call, so an estate seeded minutes apart answers differently; the proxy
  gives each stream its `lastEventTimestamp` instead, as if AWS had ingested the seeded events when they
  happened (LogStream in botocore's logs model).

Only the stand-in (demo, tests, benchmark) uses this; the scanner never does. Standard library only: the
proxy imports it.
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
LOG_STREAMS_TARGET = "Logs_20140328.DescribeLogStreams"
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
    backdate_ingestion: bool = False
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
        if status == 200 and self.backdate_ingestion and target.endswith(LOG_STREAMS_TARGET):
            streams = json.loads(body)
            for stream in streams.get("logStreams") or []:
                if "lastIngestionTime" in stream and stream.get("lastEventTimestamp") is not None:
                    stream["lastIngestionTime"] = stream["lastEventTimestamp"]
            return json.dumps(streams).encode()
        if status != 200 or not target.endswith(LOG_GROUPS_TARGET) or not self.protected_log_groups:
            return body
        doc = json.loads(body)
        acct = account or self.caller or ""
        for group in doc.get("logGroups") or []:
            if (acct, region, group.get("logGroupName")) in self.protected_log_groups:
                group["deletionProtectionEnabled"] = True
        return json.dumps(doc).encode()



def demo_answers(ids: dict[str, str], today: dt.date | None = None) -> EvidenceAnswers:
    """What the proxy answers for the demo organization (`ids`: account name -> id).

    sandbox's eu-west-1 logging was deleted by an SSO administrator five days ago (BIL-023), after a
    developer's attempt that failed the day before (not a deletion); security-tooling's log group has
    deletion protection. Times are whole days before `today`, so every proxy of one estate answers alike.
    """
    day = today or dt.datetime.now(dt.UTC).date()
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    answers = EvidenceAnswers(caller=ids["management"])
    answers.add_deletion(ids["sandbox"], "eu-west-1", midnight - dt.timedelta(days=5) + dt.timedelta(
        hours=7, minutes=52, seconds=29), role="aws-reserved/sso.amazonaws.com/AWSReservedSSO_AdministratorAccess_"
        "5e0c0c2b1a9f", session="jane.doe")
    answers.add_deletion(ids["sandbox"], "eu-west-1", midnight - dt.timedelta(days=6) + dt.timedelta(hours=15),
                         role="SandboxDeveloper", session="ci-bot", error_code="AccessDenied")
    answers.protected_log_groups.add((ids["security-tooling"], "us-east-1", "/bedrock/invocations"))
    return answers
