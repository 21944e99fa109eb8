"""Collector: state and key policy of every KMS key a configured log group or destination bucket uses."""

from __future__ import annotations

import copy
import json
from typing import Any

from audit_bedrock.collectors.base import AccountContext, RegionContext, attempt
from audit_bedrock.derive import KMS_ALGORITHMS
from audit_bedrock.facts import is_gap

AWS_MANAGED_S3_KEY = "alias/aws/s3"  # what S3 uses for aws:kms without a KMSMasterKeyID
ACTIONS = ("kms:DescribeKey", "kms:GetKeyPolicy")


def key_region(ref: str, default: str) -> str:
    """The region of a key or alias ARN; `default` for a bare key id or alias name."""
    parts = ref.split(":")
    return parts[3] if ref.startswith("arn:") and len(parts) > 5 and parts[3] else default


def key_refs(facts: dict[str, Any]) -> list[dict[str, Any]]:
    """Every key reference the region's log group and buckets use: [{ref, used_by: [{kind, name}]}]."""
    found: dict[str, list[dict[str, str]]] = {}
    group = facts.get("log_group")
    if isinstance(group, dict) and group.get("exists") is True and isinstance(group.get("kms_key_id"), str):
        found.setdefault(group["kms_key_id"], []).append({"kind": "log_group", "name": group["name"]})
    for bucket in facts.get("buckets") or []:
        enc = bucket.get("encryption")
        if bucket.get("exists") is not True or not isinstance(enc, dict) or is_gap(enc):
            continue
        if enc.get("algorithm") in KMS_ALGORITHMS:
            ref = enc.get("kms_key_id") or AWS_MANAGED_S3_KEY
            found.setdefault(ref, []).append({"kind": "bucket", "name": bucket["name"]})
    return [{"ref": ref, "used_by": used} for ref, used in sorted(found.items())]


def read_key(actx: AccountContext, region: str, ref: str) -> dict[str, Any]:
    """DescribeKey (state, manager) and GetKeyPolicy for one key reference; cached per account."""
    cache_key = ("kms", region, ref)
    if cache_key in actx.cache:
        return copy.deepcopy(actx.cache[cache_key])
    where = f"{actx.account_id}/{region}"
    client = actx.client("kms", key_region(ref, region))
    fact: dict[str, Any] = {"ref": ref}
    desc = attempt(client, "describe_key", "kms:DescribeKey", where, absent=("NotFoundException",), KeyId=ref)
    key_id: str | None = None
    if desc.absent:
        fact.update(exists=False, arn=_fallback_arn(ref, region, actx.account_id), state=None, manager=None,
                    policy=None)
        actx.cache[cache_key] = fact
        return copy.deepcopy(fact)
    if desc.gap is not None:
        fact.update(exists=desc.gap, arn=_fallback_arn(ref, region, actx.account_id), state=desc.gap,
                    manager=desc.gap)
        key_id = None if "alias/" in ref else ref
    else:
        meta = (desc.data or {}).get("KeyMetadata") or {}
        key_id = meta.get("Arn") or meta.get("KeyId")
        fact.update(exists=True, arn=meta.get("Arn") or _fallback_arn(ref, region, actx.account_id),
                    state=meta.get("KeyState"), manager=meta.get("KeyManager"))
    if key_id is None:
        # GetKeyPolicy does not take an alias; without DescribeKey the key id is unknown.
        fact["policy"] = desc.gap
    else:
        pol = attempt(client, "get_key_policy", "kms:GetKeyPolicy", where, KeyId=key_id, PolicyName="default")
        if pol.gap is not None:
            fact["policy"] = pol.gap
        else:
            text = (pol.data or {}).get("Policy") or ""
            try:
                fact["policy"] = json.loads(text)
            except json.JSONDecodeError:
                fact["policy"] = text
    actx.cache[cache_key] = fact
    return copy.deepcopy(fact)


def _fallback_arn(ref: str, region: str, account_id: str) -> str:
    if ref.startswith("arn:"):
        return ref
    if ref.startswith("alias/"):
        return f"arn:aws:kms:{region}:{account_id}:{ref}"
    return f"arn:aws:kms:{region}:{account_id}:key/{ref}"


class KeyCollector:
    """Reads every key used by the region's log group and buckets (runs after those collectors)."""

    name: str = "kms_keys"
    actions: tuple[str, ...] = ACTIONS

    def collect(self, ctx: RegionContext, facts: dict[str, Any]) -> dict[str, Any]:
        out = []
        for item in key_refs(facts):
            fact = read_key(ctx.account, ctx.region, item["ref"])
            fact["used_by"] = item["used_by"]
            out.append(fact)
        return {self.name: out}
