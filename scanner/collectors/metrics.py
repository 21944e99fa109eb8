"""Collector: evidence of Bedrock use (AWS/Bedrock Invocations) in regions where logging is off."""

from __future__ import annotations

import datetime as dt
from typing import Any

from audit_bedrock.collectors.base import RegionContext, paginate, paginate_pages
from audit_bedrock.facts import gap

NAMESPACE = "AWS/Bedrock"
METRIC = "Invocations"
DEFAULT_LOOKBACK_DAYS = 14  # also the most the config accepts (config.MAX_LOOKBACK_DAYS)
PERIOD_SECONDS = 86400  # one datapoint per series per day; a multiple of 3600 as long lookbacks require
MAX_QUERIES = 500  # GetMetricData's limit of queries per request
ACTIONS = ("cloudwatch:ListMetrics", "cloudwatch:GetMetricData")


def lookback_window(days: int, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """[now - days, now], to the second."""
    end = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    return end - dt.timedelta(days=days), end


class UsageCollector:
    """ListMetrics for every Invocations series, then GetMetricData (Sum) over all of them.

    Runs only where logging is disabled: it is the evidence that decides BIL-002 versus BIL-001.
    """

    name: str = "usage"
    actions: tuple[str, ...] = ACTIONS

    def collect(self, ctx: RegionContext, facts: dict[str, Any]) -> dict[str, Any]:
        logging_fact = facts.get("logging")
        if not isinstance(logging_fact, dict) or logging_fact.get("enabled") is not False:
            return {self.name: None}
        days = int(ctx.account.settings.get("usage_lookback_days") or DEFAULT_LOOKBACK_DAYS)
        client = ctx.client("cloudwatch")
        where = f"{ctx.account.account_id}/{ctx.region}"
        series = paginate(client, "list_metrics", "cloudwatch:ListMetrics", where, "Metrics",
                          Namespace=NAMESPACE, MetricName=METRIC)
        start, end = lookback_window(days)
        total = 0.0
        by_series: dict[str, float] = {}
        status: dict[str, tuple[str, str]] = {}  # Id -> (StatusCode, messages) of its latest page
        for first in range(0, len(series), MAX_QUERIES):
            batch = series[first:first + MAX_QUERIES]
            queries = [{"Id": f"s{first + i}", "ReturnData": True,
                        "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": METRIC,
                                                  "Dimensions": m.get("Dimensions") or []},
                                       "Period": PERIOD_SECONDS, "Stat": "Sum"}}
                       for i, m in enumerate(batch)]
            pages = client.get_paginator("get_metric_data").paginate(
                MetricDataQueries=queries, StartTime=start, EndTime=end)
            for page in paginate_pages(pages, "cloudwatch:GetMetricData", where):
                for result in page.get("MetricDataResults") or []:
                    value = float(sum(result.get("Values") or []))
                    by_series[result["Id"]] = by_series.get(result["Id"], 0.0) + value
                    total += value
                    status[result["Id"]] = (str(result.get("StatusCode") or "Complete"), "; ".join(
                        f"{m.get('Code')}: {m.get('Value')}" for m in result.get("Messages") or []))
        unfinished = sorted((sid, code, note) for sid, (code, note) in status.items() if code != "Complete")
        if unfinished:
            # The call returns 200 with a StatusCode per series (MetricDataResult): a series that is not Complete
            # after its last page is unknown use, never zero.
            codes = sorted({code for _, code, _ in unfinished})
            sid, code, note = unfinished[0]
            return {self.name: gap(
                "cloudwatch:GetMetricData", ",".join(codes),
                f"{len(unfinished)} of {len(series)} Invocations series did not complete ({', '.join(codes)}); "
                f"first: {sid} {code}{': ' + note if note else ''}")}
        invocations: int | float = int(total) if total.is_integer() else total
        return {self.name: {"invocations": invocations, "series": len(series), "lookback_days": days,
                            "series_with_use": sum(1 for v in by_series.values() if v > 0)}}

