"""Collector: proof of delivery where logging is on (BIL-022): invocations per day, then each destination's newest log.

Reads key names and stream metadata only, never a log's content: CloudWatch Metrics Insights for the
`AWS/Bedrock` `Invocations` per UTC day (one GetMetricData call), the `aws/bedrock/modelinvocations`
stream's last ingestion (DescribeLogStreams with that name prefix), and the newest key under Bedrock's
S3 layout `PREFIX/AWSLogs/ACCOUNT/BedrockModelInvocationLogs/REGION/YYYY/MM/DD/HH/<file>.json.gz`
(ListObjectsV2 with StartAfter; the layout below the region is AWS's own sample,
aws-samples/sample-bedrock-invocation-analytics deploy/lambda/parse_log.py). At most 3 calls per region.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from audit_bedrock.collectors.base import Failure, RegionContext, attempt, paginate_pages
from audit_bedrock.collectors.metrics import DEFAULT_LOOKBACK_DAYS, METRIC, NAMESPACE, PERIOD_SECONDS
from audit_bedrock.derive import LOG_STREAM, log_key_prefix
from audit_bedrock.facts import gap

ACTIONS = ("cloudwatch:GetMetricData", "logs:DescribeLogStreams", "s3:ListBucket")
# Metrics Insights queries the last two weeks only ("Metrics Insights queries can query the most recent
# two weeks of metric data", GetMetricData documentation); SEARCH() is not used (moto answers it empty).
INSIGHTS_MAX_DAYS = 14
INSIGHTS_QUERY = f'SELECT SUM({METRIC}) FROM SCHEMA("{NAMESPACE}", ModelId)'
# Bedrock writes this zero-byte object when logging is configured; it is not a delivery.
PERMISSION_CHECK = "amazon-bedrock-logs-permission-check"
_FILE_TIME = re.compile(r"^(\d{8}T\d{6})")


def day_start(day: dt.date) -> dt.datetime:
    """00:00 UTC of `day`."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def due_day(days: dict[str, float], today: str) -> str | None:
    """The day from which a delivery must exist: the last day with invocations before today, else today.

    Invocations earlier today may still be on their way (delivery takes minutes), so when there was use on an
    earlier day that day is the one judged; None when nothing was invoked.
    """
    used = sorted(d for d, v in days.items() if v > 0)
    if not used:
        return None
    earlier = [d for d in used if d < today]
    return earlier[-1] if earlier else used[-1]


def read_invocations(ctx: RegionContext, days: int, now: dt.datetime) -> dict[str, Any]:
    """Invocations per UTC day over the last `days` days (one Metrics Insights query)."""
    start = day_start(now.date() - dt.timedelta(days=days - 1))
    client = ctx.client("cloudwatch")
    where = f"{ctx.account.account_id}/{ctx.region}"
    per_day: dict[str, float] = {}
    query = {"Id": "inv", "Expression": INSIGHTS_QUERY, "Period": PERIOD_SECONDS, "ReturnData": True}
    pages = client.get_paginator("get_metric_data").paginate(
        MetricDataQueries=[query], StartTime=start, EndTime=now.replace(microsecond=0))
    for page in paginate_pages(pages, "cloudwatch:GetMetricData", where):
        for result in page.get("MetricDataResults") or []:
            status = result.get("StatusCode") or "Complete"
            if status not in ("Complete", "PartialData"):  # Forbidden, InternalError: never a zero
                return gap("cloudwatch:GetMetricData", status,
                           f"Metrics Insights query returned {status}: {result.get('Messages') or ''}")
            for ts, value in zip(result.get("Timestamps") or [], result.get("Values") or [], strict=False):
                day = ts.astimezone(dt.UTC).date().isoformat()
                per_day[day] = per_day.get(day, 0.0) + float(value)
    used = {d: v for d, v in per_day.items() if v > 0}
    last = max(used) if used else None
    total = sum(used.values())
    return {"total": _number(total), "days": {d: _number(v) for d, v in sorted(used.items())},
            "last_day": last, "last_day_count": _number(used[last]) if last else 0}


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def read_log_stream(ctx: RegionContext, group: str) -> dict[str, Any]:
    """The Bedrock stream's last ingestion time in `group` (None: no stream, or nothing ingested yet)."""
    where = f"{ctx.account.account_id}/{ctx.region}"
    reply = attempt(ctx.client("logs"), "describe_log_streams", "logs:DescribeLogStreams", where,
                    absent=("ResourceNotFoundException",), logGroupName=group, logStreamNamePrefix=LOG_STREAM,
                    limit=1)
    fact: dict[str, Any] = {"kind": "log_group", "name": group, "stream": LOG_STREAM}
    if reply.gap is not None:
        return reply.gap
    # limit=1 in the default LogStreamName order: the exact name sorts before any longer one with its prefix.
    streams = [s for s in (reply.data or {}).get("logStreams") or [] if s.get("logStreamName") == LOG_STREAM]
    ingested = streams[0].get("lastIngestionTime") if streams else None
    when = dt.datetime.fromtimestamp(ingested / 1000, dt.UTC).replace(microsecond=0) if ingested else None
    fact.update(stream_exists=bool(streams), last_delivery=_iso(when),
                last_delivery_day=when.date().isoformat() if when else None, lower_bound=False, searched_from=None)
    return fact


def _iso(when: dt.datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None


def key_time(key: str, region_prefix: str) -> tuple[str, str] | None:
    """(day, ISO time) of a log object from its key: the path's YYYY/MM/DD/HH, the file name's timestamp."""
    rest = key[len(region_prefix):].split("/")
    if len(rest) < 4 or not all(p.isdigit() for p in rest[:4]):
        return None
    day = f"{rest[0]}-{rest[1]}-{rest[2]}"
    stamp = _FILE_TIME.match(rest[-1])
    if stamp:
        t = stamp.group(1)
        return day, f"{t[:4]}-{t[4:6]}-{t[6:8]}T{t[9:11]}:{t[11:13]}:{t[13:15]}Z"
    return day, f"{day}T{rest[3]}:00:00Z"


def _newest(keys: list[str], region_prefix: str) -> tuple[str, str] | None:
    times = [t for k in keys if PERMISSION_CHECK not in k and (t := key_time(k, region_prefix))]
    return max(times) if times else None


def read_s3_delivery(ctx: RegionContext, bucket: str, prefix: str, since: str, window_start: str,
                     second_call: bool) -> dict[str, Any]:
    """The newest log object on or after `since` (a day); with `second_call`, the newest in the window otherwise.

    Keys sort in ascending UTF-8 order and the layout puts the date in the path, so StartAfter=R+since lists
    exactly the deliveries from that day on; up to 1,000 keys come back, and when there are more the newest
    one seen is a lower bound, which is enough to show delivery.
    """
    acct = ctx.account.account_id
    region_prefix = f"{log_key_prefix(prefix, acct)}{ctx.region}/"
    where = f"{acct}/{ctx.region}/{bucket}"
    client = ctx.client("s3")
    fact: dict[str, Any] = {"kind": "bucket", "name": bucket, "prefix": region_prefix}

    def newest_from(day: str) -> tuple[tuple[str, str] | None, bool]:
        reply = attempt(client, "list_objects_v2", "s3:ListBucket", where, Bucket=bucket, Prefix=region_prefix,
                        StartAfter=region_prefix + day.replace("-", "/"))
        if reply.gap is not None:
            raise Failure(reply.gap, reply.code, RuntimeError(reply.code))
        data = reply.data or {}
        return _newest([o.get("Key", "") for o in data.get("Contents") or []], region_prefix), bool(
            data.get("IsTruncated"))

    try:
        found, truncated = newest_from(since)
        searched = since
        if found is None and second_call and window_start < since:
            found, truncated = newest_from(window_start)
            searched = window_start
    except Failure as f:
        return f.fact
    fact.update(last_delivery=found[1] if found else None, last_delivery_day=found[0] if found else None,
                lower_bound=truncated and found is not None, searched_from=searched)
    return fact


class DeliveryCollector:
    """Where logging is enabled: Invocations per day and, when there was use, each destination's last delivery.

    The large-data bucket only receives oversized payloads and is not read. A missing log group or bucket is
    not read either (BIL-005/BIL-011 report it).
    """

    name: str = "delivery"
    actions: tuple[str, ...] = ACTIONS

    def collect(self, ctx: RegionContext, facts: dict[str, Any]) -> dict[str, Any]:
        logging_fact = facts.get("logging")
        if not isinstance(logging_fact, dict) or logging_fact.get("enabled") is not True:
            return {self.name: None}
        days = min(int(ctx.account.settings.get("usage_lookback_days") or DEFAULT_LOOKBACK_DAYS), INSIGHTS_MAX_DAYS)
        now = dt.datetime.now(dt.UTC)
        today = now.date().isoformat()
        window_start = (now.date() - dt.timedelta(days=days - 1)).isoformat()
        out: dict[str, Any] = {"today": today, "window_start": window_start, "lookback_days": days,
                               "due_day": None, "cloudwatch": None, "s3": None}
        try:
            out["invocations"] = read_invocations(ctx, days, now)
        except Failure as f:
            out["invocations"] = f.fact
            return {self.name: out}
        inv = out["invocations"]
        due = due_day(inv.get("days") or {}, today) if isinstance(inv, dict) and "days" in inv else None
        out["due_day"] = due
        if due is None:
            return {self.name: out}
        group = (logging_fact.get("cloudwatch") or {}).get("log_group")
        group_fact = facts.get("log_group")
        if group and not (isinstance(group_fact, dict) and group_fact.get("exists") is False):
            out["cloudwatch"] = read_log_stream(ctx, group)
        s3 = logging_fact.get("s3")
        if isinstance(s3, dict) and s3.get("bucket") and not _missing_bucket(facts, s3["bucket"]):
            out["s3"] = read_s3_delivery(ctx, s3["bucket"], s3.get("prefix") or "", due, window_start,
                                         second_call=out["cloudwatch"] is None)
        return {self.name: out}


def _missing_bucket(facts: dict[str, Any], name: str) -> bool:
    buckets = facts.get("buckets")
    found = buckets if isinstance(buckets, list) else []
    # a bucket that does not exist, or another account's (BIL-020 replaces every other finding about it)
    return any(isinstance(b, dict) and b.get("name") == name and (b.get("exists") is False or b.get("owned") is False)
               for b in found)
