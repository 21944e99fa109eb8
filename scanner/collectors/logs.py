"""Collector: the CloudWatch Logs log group a region's logging configuration names, matched by exact name."""

from __future__ import annotations

from typing import Any

from audit_bedrock.collectors.base import AccountContext, Failure, RegionContext, paginate_pages

ACTION = "logs:DescribeLogGroups"


def log_group_arn(region: str, account_id: str, name: str) -> str:
    """The log group's ARN (without the ':*' suffix DescribeLogGroups adds)."""
    return f"arn:aws:logs:{region}:{account_id}:log-group:{name}"


def read_log_group(actx: AccountContext, region: str, name: str) -> dict[str, Any]:
    """The `log_group` fact for `name` in `region`, read once per account and cached.

    DescribeLogGroups only offers a prefix filter, so every page is searched for the exact name;
    '/bedrock/invocations-old' never stands in for '/bedrock/invocations'. Paging stops once found.
    """
    return dict(actx.once(("logs", region, name), lambda: _read_log_group(actx, region, name)))


def _read_log_group(actx: AccountContext, region: str, name: str) -> dict[str, Any]:
    fact: dict[str, Any] = {"name": name, "arn": log_group_arn(region, actx.account_id, name), "region": region}
    client = actx.client("logs", region)
    where = f"{actx.account_id}/{region}"
    found: dict[str, Any] | None = None
    try:
        pages = client.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name)
        for page in paginate_pages(pages, ACTION, where):
            found = next((g for g in page.get("logGroups") or [] if g.get("logGroupName") == name), None)
            if found is not None:
                break
    except Failure as f:
        fact.update(exists=f.fact, retention_days=f.fact, kms_key_id=f.fact, deletion_protection=f.fact)
        return fact
    if found is None:
        fact.update(exists=False, retention_days=None, kms_key_id=None, deletion_protection=None)
    else:
        fact.update(exists=True, retention_days=found.get("retentionInDays"), kms_key_id=found.get("kmsKeyId"),
                    log_group_class=found.get("logGroupClass"),
                    # LogGroup.deletionProtectionEnabled (botocore >= 1.41.3): absent means off, as AWS omits
                    # false booleans; no extra call (BIL-025).
                    deletion_protection=found.get("deletionProtectionEnabled") is True)
    return fact


class LogGroupCollector:
    """Reads the configured log group: existence (exact name), retention, KMS key, deletion protection."""

    name: str = "log_group"
    actions: tuple[str, ...] = (ACTION,)

    def collect(self, ctx: RegionContext, facts: dict[str, Any]) -> dict[str, Any]:
        logging_fact = facts.get("logging") or {}
        group = ((logging_fact.get("cloudwatch") or {}).get("log_group")) if logging_fact.get("enabled") else None
        if not group:
            return {self.name: None}
        return {self.name: read_log_group(ctx.account, ctx.region, group)}
