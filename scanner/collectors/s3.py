"""Collector: every S3 bucket a region's logging configuration delivers to, each read once per account."""

from __future__ import annotations

import copy
import json
from typing import Any

from audit_bedrock.collectors.base import AccountContext, RegionContext, Reply, attempt

NO_BUCKET = "NoSuchBucket"
ACTIONS = (
    "s3:GetBucketLocation", "s3:GetBucketPolicy", "s3:GetBucketPublicAccessBlock", "s3:GetBucketAcl",
    "s3:GetBucketOwnershipControls", "s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration",
)
# (fact key, operation, IAM action, code meaning "not configured")
_READS: tuple[tuple[str, str, str, str], ...] = (
    ("policy", "get_bucket_policy", "s3:GetBucketPolicy", "NoSuchBucketPolicy"),
    ("public_access_block", "get_public_access_block", "s3:GetBucketPublicAccessBlock",
     "NoSuchPublicAccessBlockConfiguration"),
    ("object_ownership", "get_bucket_ownership_controls", "s3:GetBucketOwnershipControls",
     "OwnershipControlsNotFoundError"),
    ("acl", "get_bucket_acl", "s3:GetBucketAcl", ""),
    ("encryption", "get_bucket_encryption", "s3:GetEncryptionConfiguration",
     "ServerSideEncryptionConfigurationNotFoundError"),
    ("lifecycle_rules", "get_bucket_lifecycle_configuration", "s3:GetLifecycleConfiguration",
     "NoSuchLifecycleConfiguration"),
)


def destinations(logging_fact: dict[str, Any]) -> list[dict[str, Any]]:
    """The configured buckets with how each is used: [{name, uses: [{destination, prefix}]}], one per bucket."""
    if not logging_fact.get("enabled"):
        return []
    found: dict[str, list[dict[str, str]]] = {}
    s3 = logging_fact.get("s3")
    if isinstance(s3, dict) and s3.get("bucket"):
        found.setdefault(s3["bucket"], []).append({"destination": "s3", "prefix": s3.get("prefix") or ""})
    large = ((logging_fact.get("cloudwatch") or {}).get("large_data"))
    if isinstance(large, dict) and large.get("bucket"):
        found.setdefault(large["bucket"], []).append({"destination": "large_data", "prefix": large.get("prefix") or ""})
    return [{"name": name, "uses": uses} for name, uses in sorted(found.items())]


def _value(key: str, reply: Reply) -> Any:
    """The fact value of one successful or absent read."""
    if reply.absent:
        return None
    data = reply.data or {}
    if key == "policy":
        text = data.get("Policy") or ""
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text  # kept verbatim; the analyzer reports it as unparseable
    if key == "public_access_block":
        return dict(data.get("PublicAccessBlockConfiguration") or {})
    if key == "object_ownership":
        rules = (data.get("OwnershipControls") or {}).get("Rules") or []
        return rules[0].get("ObjectOwnership") if rules else None
    if key == "acl":
        return [{"type": (g.get("Grantee") or {}).get("Type"), "uri": (g.get("Grantee") or {}).get("URI"),
                 "id": (g.get("Grantee") or {}).get("ID"), "permission": g.get("Permission")}
                for g in data.get("Grants") or []]
    if key == "encryption":
        rules = (data.get("ServerSideEncryptionConfiguration") or {}).get("Rules") or []
        if not rules:
            return None
        default = rules[0].get("ApplyServerSideEncryptionByDefault") or {}
        return {"algorithm": default.get("SSEAlgorithm"), "kms_key_id": default.get("KMSMasterKeyID"),
                "bucket_key_enabled": bool(rules[0].get("BucketKeyEnabled"))}
    if key == "lifecycle_rules":
        return list(data.get("Rules") or [])
    raise KeyError(key)


def read_bucket(actx: AccountContext, region: str, name: str) -> dict[str, Any]:
    """Existence, region, policy, public access block, ownership, ACL, encryption, lifecycle of one bucket.

    NoSuchBucket means the bucket is missing (a fact); AccessDenied is a gap in that field's place.
    When the bucket is missing nothing else is read. The ACL is not read when Object Ownership is
    BucketOwnerEnforced: ACLs are then disabled and grant nothing.
    """
    key = ("s3", name)
    if key in actx.cache:
        return copy.deepcopy(actx.cache[key])
    client = actx.client("s3", region)
    where = f"{actx.account_id}/{region}/{name}"
    fact: dict[str, Any] = {"name": name, "arn": f"arn:aws:s3:::{name}"}
    loc = attempt(client, "get_bucket_location", "s3:GetBucketLocation", where, absent=(NO_BUCKET,), Bucket=name)
    if loc.absent:
        fact.update(exists=False, region=None)
        actx.cache[key] = fact
        return copy.deepcopy(fact)
    if loc.gap is not None:
        fact.update(exists=loc.gap, region=loc.gap)
    else:
        constraint = (loc.data or {}).get("LocationConstraint")
        fact.update(exists=True, region={None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(constraint,
                                                                                                     constraint))
    for fkey, operation, action, absent_code in _READS:
        if fkey == "acl" and fact.get("object_ownership") == "BucketOwnerEnforced":
            fact["acl"] = None
            continue
        reply = attempt(client, operation, action, where, absent=(absent_code, NO_BUCKET), Bucket=name)
        if reply.code == NO_BUCKET:
            # The location read was denied, but this read proves the bucket does not exist.
            fact = {"name": name, "arn": fact["arn"], "exists": False, "region": None}
            break
        if reply.gap is not None:
            fact[fkey] = reply.gap
            continue
        if fact["exists"] is not True:  # any successful read proves existence
            fact["exists"] = True
        fact[fkey] = _value(fkey, reply)
    actx.cache[key] = fact
    return copy.deepcopy(fact)


class BucketCollector:
    """Reads each configured destination bucket once, even when s3Config and the large-data config share it."""

    name: str = "buckets"
    actions: tuple[str, ...] = ACTIONS

    def collect(self, ctx: RegionContext, facts: dict[str, Any]) -> dict[str, Any]:
        out = []
        for dest in destinations(facts.get("logging") or {}):
            fact = read_bucket(ctx.account, ctx.region, dest["name"])
            fact["uses"] = dest["uses"]
            out.append(fact)
        return {self.name: out}
