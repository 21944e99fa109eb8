"""Collector: every S3 bucket a region's logging configuration delivers to, each read once per account."""

from __future__ import annotations

import copy
import json
from typing import Any

from audit_bedrock.aws.errors import DENIED_CODES
from audit_bedrock.collectors.base import AccountContext, RegionContext, Reply, attempt, attempt_pages
from audit_bedrock.facts import is_gap

NO_BUCKET = "NoSuchBucket"
NO_ACCOUNT_PAB = "NoSuchPublicAccessBlockConfiguration"
# Codes by which S3 says a bucket exists but belongs to someone else (or withholds it from us): every read
# of another account's bucket is refused, and GetBucketPolicy answers 405 to an allowed non-owner.
NOT_OURS_CODES = DENIED_CODES | {"MethodNotAllowed", "405"}
LIST_PAGE_SIZE = 1000  # a paginated ListBuckets returns each bucket's BucketRegion; moto has no token
ACTIONS = (
    "s3:ListAllMyBuckets", "s3:GetAccountPublicAccessBlock",
    "s3:GetBucketLocation", "s3:GetBucketPolicy", "s3:GetBucketPublicAccessBlock", "s3:GetBucketAcl",
    "s3:GetBucketOwnershipControls", "s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration",
)
REGION_OF_CONSTRAINT = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}
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


def block_settings(data: dict[str, Any]) -> dict[str, Any]:
    """A PublicAccessBlockConfiguration, keys sorted (saved facts sort keys: reports must not depend on it)."""
    return dict(sorted((data.get("PublicAccessBlockConfiguration") or {}).items()))


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
        return block_settings(data)
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


def owned_buckets(actx: AccountContext) -> dict[str, str | None] | dict[str, Any]:
    """The account's own buckets as {name: BucketRegion or None}, or a gap; one paginated ListBuckets per account.

    ListBuckets returns exactly the buckets the caller's account owns; with a page size it also returns each
    bucket's region (BucketRegion), which moto omits.
    """
    def read() -> dict[str, Any]:
        client = actx.client("s3", actx.home_region)
        items, missing = attempt_pages(client, "list_buckets", "s3:ListAllMyBuckets", actx.account_id, "Buckets",
                                       PaginationConfig={"PageSize": LIST_PAGE_SIZE})
        return missing if missing is not None else {
            str(b["Name"]): b.get("BucketRegion") for b in items or [] if b.get("Name")}

    found: dict[str, Any] = actx.once(("s3", "ListBuckets"), read)
    return found


def account_public_access_block(actx: AccountContext) -> dict[str, Any] | None:
    """The account's S3 Block Public Access (s3control, once per account); None when none is set, or a gap."""
    def read() -> dict[str, Any] | None:
        client = actx.client("s3control", actx.home_region)
        reply = attempt(client, "get_public_access_block", "s3:GetAccountPublicAccessBlock", actx.account_id,
                        absent=(NO_ACCOUNT_PAB,), AccountId=actx.account_id)
        return reply.gap if reply.gap is not None else (None if reply.absent else block_settings(reply.data or {}))

    value: dict[str, Any] | None = actx.once(("s3control", "GetPublicAccessBlock"), read)
    return value


# The reads that tell a stranger's bucket from a free name: two different permissions, so that our own
# policy denying one of them cannot pass for another account's bucket.
_PROBES: tuple[tuple[str, str, str], ...] = (
    ("get_bucket_location", "s3:GetBucketLocation", ""),
    ("get_bucket_policy", "s3:GetBucketPolicy", "NoSuchBucketPolicy"),
)


def _not_ours(actx: AccountContext, client: Any, where: str, fact: dict[str, Any]) -> dict[str, Any]:
    """A bucket the account's ListBuckets does not list: at most two reads tell a stranger's bucket from a free name.

    NoSuchBucket means nobody owns the name (BIL-011). With ExpectedBucketOwner S3 refuses (403) every read
    of another account's bucket, even one its policy would allow, and GetBucketPolicy answers 405 to an
    allowed non-owner: both reads refused means the bucket exists and is not ours (BIL-020). A success (a
    stand-in that ignores ExpectedBucketOwner) also proves existence. Nothing else of a stranger's bucket
    is read.
    """
    name = fact["name"]
    fact.update(exists=True, region=None, owned=False)
    for operation, action, no_config in _PROBES:
        reply = attempt(client, operation, action, where, absent=tuple(c for c in (NO_BUCKET, no_config) if c),
                        Bucket=name, ExpectedBucketOwner=actx.account_id)
        if reply.code == NO_BUCKET:
            fact.update(exists=False, owned=None)
            return fact
        if reply.gap is None:
            return fact  # it answered: it exists, and ListBuckets says it is not ours
        if reply.code not in NOT_OURS_CODES:
            fact.update(exists=reply.gap, region=reply.gap, owned=reply.gap)
            return fact
    return fact


def read_bucket(actx: AccountContext, region: str, name: str) -> dict[str, Any]:
    """Ownership, existence, region, policy, public access block, ownership controls, ACL, encryption, lifecycle.

    Ownership comes from the account's ListBuckets: a bucket it does not list is another account's (BIL-020)
    when S3 says it exists, and is then not read further. NoSuchBucket means the bucket is missing (a fact);
    AccessDenied is a gap in that field's place. Every read carries ExpectedBucketOwner, so a stranger's
    bucket can never answer for ours. The ACL is not read when Object Ownership is BucketOwnerEnforced:
    ACLs are then disabled and grant nothing.
    """
    return copy.deepcopy(actx.once(("s3", name), lambda: _read_bucket(actx, region, name)))


def _read_bucket(actx: AccountContext, region: str, name: str) -> dict[str, Any]:
    client = actx.client("s3", region)
    where = f"{actx.account_id}/{region}/{name}"
    fact: dict[str, Any] = {"name": name, "arn": f"arn:aws:s3:::{name}"}
    owned = owned_buckets(actx)
    if not is_gap(owned) and name not in owned:
        return _not_ours(actx, client, where, fact)
    listed = not is_gap(owned)  # and therefore it exists and is ours
    fact.update(owned=True if listed else owned, exists=True if listed else owned)
    listed_region = owned.get(name) if listed else None
    if listed_region:
        fact["region"] = listed_region
    else:
        loc = attempt(client, "get_bucket_location", "s3:GetBucketLocation", where, absent=(NO_BUCKET,),
                      Bucket=name, ExpectedBucketOwner=actx.account_id)
        if loc.absent:
            fact.update(exists=False, region=None, owned=None)
            return fact
        if loc.gap is not None:
            fact["region"] = loc.gap
            if not listed:
                fact["exists"] = loc.gap
        else:
            constraint = (loc.data or {}).get("LocationConstraint")
            fact.update(exists=True, owned=True, region=REGION_OF_CONSTRAINT.get(constraint, constraint))
    for fkey, operation, action, absent_code in _READS:
        if fkey == "acl" and fact.get("object_ownership") == "BucketOwnerEnforced":
            fact["acl"] = None
            continue
        reply = attempt(client, operation, action, where, absent=(absent_code, NO_BUCKET), Bucket=name,
                        ExpectedBucketOwner=actx.account_id)
        if reply.code == NO_BUCKET:
            # The location read was denied, but this read proves the bucket does not exist.
            fact = {"name": name, "arn": fact["arn"], "exists": False, "region": None, "owned": None}
            break
        if reply.gap is not None:
            fact[fkey] = reply.gap
            continue
        if fact["exists"] is not True:  # any successful read proves existence (and, with the owner pinned, ours)
            fact.update(exists=True, owned=True)
        fact[fkey] = _value(fkey, reply)
    if fact["exists"] is not False:
        fact["account_public_access_block"] = account_public_access_block(actx)
    return fact


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
