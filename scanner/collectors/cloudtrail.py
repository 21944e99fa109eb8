"""Collector: who deleted the logging configuration (BIL-023), from CloudTrail event history where logging is off.

One `cloudtrail:LookupEvents` call per disabled region (EventName DeleteModelInvocationLoggingConfiguration,
the last 90 days, up to 50 events, never paged and never repeated). LookupEvents is limited to two requests
per second per account and region; the client's adaptive retries absorb a throttle caused by other traffic.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from audit_bedrock.collectors.base import RegionContext, attempt

ACTION = "cloudtrail:LookupEvents"
EVENT_NAME = "DeleteModelInvocationLoggingConfiguration"
HISTORY_DAYS = 90  # CloudTrail event history keeps 90 days
MAX_RESULTS = 50


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def normalize(event: dict[str, Any]) -> dict[str, Any]:
    """One LookupEvents `Event` as the fact keeps it: who, when, and whether the call failed."""
    try:
        parsed: Any = json.loads(event.get("CloudTrailEvent") or "{}")
    except json.JSONDecodeError:
        parsed = {}
    detail = _object(parsed)
    identity = _object(detail.get("userIdentity"))
    issuer = _object(_object(identity.get("sessionContext")).get("sessionIssuer"))
    when = event.get("EventTime")
    time = when.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z") \
        if isinstance(when, dt.datetime) else _text(detail.get("eventTime"))
    principal = (_text(identity.get("arn")) or _text(issuer.get("arn")) or _text(event.get("Username"))
                 or _text(identity.get("invokedBy")) or "unknown")
    return {"event_id": _text(event.get("EventId")), "time": time, "principal_arn": principal,
            "role_arn": _text(issuer.get("arn")), "principal_type": _text(identity.get("type")),
            "username": _text(event.get("Username")), "source_ip": _text(detail.get("sourceIPAddress")),
            "error_code": _text(detail.get("errorCode"))}


class DeletionCollector:
    """Where logging is disabled: the DeleteModelInvocationLoggingConfiguration events of the last 90 days."""

    name: str = "deletion"
    actions: tuple[str, ...] = (ACTION,)

    def collect(self, ctx: RegionContext, facts: dict[str, Any]) -> dict[str, Any]:
        logging_fact = facts.get("logging")
        if not isinstance(logging_fact, dict) or logging_fact.get("enabled") is not False:
            return {self.name: None}
        end = dt.datetime.now(dt.UTC).replace(microsecond=0)
        reply = attempt(ctx.client("cloudtrail"), "lookup_events", ACTION, f"{ctx.account.account_id}/{ctx.region}",
                        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": EVENT_NAME}],
                        StartTime=end - dt.timedelta(days=HISTORY_DAYS), EndTime=end, MaxResults=MAX_RESULTS)
        if reply.gap is not None:
            return {self.name: reply.gap}
        data = reply.data or {}
        events = sorted((normalize(e) for e in data.get("Events") or []), key=lambda e: e["time"] or "",
                        reverse=True)
        return {self.name: {"window_days": HISTORY_DAYS, "events": events, "more": bool(data.get("NextToken"))}}
