"""Collector: the region's Bedrock model invocation logging configuration."""

from __future__ import annotations

from typing import Any

from audit_bedrock.collectors.base import RegionContext, call
from audit_bedrock.constants import DATA_TYPE_FLAGS


def describe(logging_config: Any) -> dict[str, Any]:
    """Normalize a loggingConfig (possibly None or {}) into the `logging` fact."""
    lc = logging_config if isinstance(logging_config, dict) else {}
    s3 = lc.get("s3Config") if isinstance(lc.get("s3Config"), dict) else None
    cw = lc.get("cloudWatchConfig") if isinstance(lc.get("cloudWatchConfig"), dict) else None
    large = (cw or {}).get("largeDataDeliveryS3Config")
    large = large if isinstance(large, dict) and large.get("bucketName") else None
    s3 = s3 if s3 and s3.get("bucketName") else None
    cw = cw if cw and (cw.get("logGroupName") or cw.get("roleArn")) else None
    enabled = bool(s3 or cw)
    destinations = [d for d, on in (("cloudwatch", cw), ("s3", s3)) if on]
    return {
        "enabled": enabled,
        "destinations": destinations,
        "large_data_s3": bool(large),
        "data_types": {t: lc.get(flag) is True for t, flag in DATA_TYPE_FLAGS.items()},
        "s3": {"bucket": s3.get("bucketName"), "prefix": s3.get("keyPrefix") or ""} if s3 else None,
        "cloudwatch": {
            "log_group": cw.get("logGroupName"), "role_arn": cw.get("roleArn"),
            "large_data": ({"bucket": large.get("bucketName"), "prefix": large.get("keyPrefix") or ""}
                           if large else None),
        } if cw else None,
        "raw": lc,
    }


class LoggingConfigCollector:
    """Reads GetModelInvocationLoggingConfiguration; a failure here makes the region an error (SCAN-002)."""

    name = "logging"
    actions = ("bedrock:GetModelInvocationLoggingConfiguration",)

    def collect(self, ctx: RegionContext, facts: dict[str, Any]) -> dict[str, Any]:
        resp = call(ctx.client("bedrock"), "get_model_invocation_logging_configuration",
                    self.actions[0], f"{ctx.account.account_id}/{ctx.region}")
        return {"logging": describe(resp.get("loggingConfig"))}
