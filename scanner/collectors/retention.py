"""Collector: whether each log bucket keeps what was written (BIL-025): versioning and Object Lock, +2 calls a bucket.

Each distinct bucket is read once per account (the large-data bucket too); a bucket that does not exist is
not read. A bucket never versioned answers `{}` to GetBucketVersioning; one without Object Lock answers
ObjectLockConfigurationNotFoundError (404), which is a fact, not a gap.
"""

from __future__ import annotations

import copy
from typing import Any

from audit_bedrock.collectors.base import AccountContext, RegionContext, attempt

ACTIONS = ("s3:GetBucketVersioning", "s3:GetBucketObjectLockConfiguration")
NO_LOCK = "ObjectLockConfigurationNotFoundError"


def read_protection(actx: AccountContext, region: str, name: str) -> dict[str, Any]:
    """{name, versioning: Enabled|Suspended|None, mfa_delete, object_lock: {enabled, mode, days, years}|None}."""
    return copy.deepcopy(actx.once(("s3-protection", name), lambda: _read_protection(actx, region, name)))


def _read_protection(actx: AccountContext, region: str, name: str) -> dict[str, Any]:
    client = actx.client("s3", region)
    where = f"{actx.account_id}/{region}/{name}"
    fact: dict[str, Any] = {"name": name}
    ver = attempt(client, "get_bucket_versioning", "s3:GetBucketVersioning", where, Bucket=name)
    if ver.gap is not None:
        fact.update(versioning=ver.gap, mfa_delete=ver.gap)
    else:
        data = ver.data or {}
        fact.update(versioning=data.get("Status"), mfa_delete=data.get("MFADelete") == "Enabled")
    lock = attempt(client, "get_object_lock_configuration", "s3:GetBucketObjectLockConfiguration", where,
                   absent=(NO_LOCK,), Bucket=name)
    if lock.gap is not None:
        fact["object_lock"] = lock.gap
    elif lock.absent:
        fact["object_lock"] = None
    else:
        conf = (lock.data or {}).get("ObjectLockConfiguration") or {}
        retention = (conf.get("Rule") or {}).get("DefaultRetention") or {}
        # moto answers both Days and Years after a Days rule; AWS sends one of them. Zero means absent.
        fact["object_lock"] = {"enabled": conf.get("ObjectLockEnabled") == "Enabled", "mode": retention.get("Mode"),
                               "days": retention.get("Days") or None, "years": retention.get("Years") or None}
    return fact


class BucketProtectionCollector:
    """Reads versioning and Object Lock of every configured bucket that exists and is the account's own (after the
    bucket collector)."""

    name: str = "bucket_protection"
    actions: tuple[str, ...] = ACTIONS

    def collect(self, ctx: RegionContext, facts: dict[str, Any]) -> dict[str, Any]:
        buckets = facts.get("buckets")
        if not isinstance(buckets, list) or not buckets:
            return {self.name: None}
        return {self.name: [read_protection(ctx.account, ctx.region, b["name"]) for b in buckets
                            if isinstance(b, dict) and b.get("name") and b.get("exists") is not False
                            and b.get("owned") is not False]}  # another account's bucket is BIL-020 only
