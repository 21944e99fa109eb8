"""Collector: state and key policy of every KMS key a configured log group or destination bucket uses."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from audit_bedrock.collectors.base import AccountContext, RegionContext, attempt, attempt_pages
from audit_bedrock.derive import KMS_ALGORITHMS
from audit_bedrock.facts import gap, is_gap

AWS_MANAGED_S3_KEY = "alias/aws/s3"  # what S3 uses for aws:kms without a KMSMasterKeyID
ACTIONS = ("kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListAliases")


@dataclass(frozen=True)
class KeyRef:
    """A key reference as a bucket or log group gives it: key id, key ARN, alias name or alias ARN."""

    ref: str
    account: str  # the key's account: the ARN's, else the account that uses it
    region: str
    alias: str | None  # "alias/NAME" for an alias reference

    @classmethod
    def parse(cls, ref: str, account: str, region: str) -> KeyRef:
        parts = ref.split(":", 5)
        if ref.startswith("arn:") and len(parts) == 6:
            resource = parts[5]
            return cls(ref, parts[4] or account, parts[3] or region,
                       resource if resource.startswith("alias/") else None)
        return cls(ref, account, region, ref if ref.startswith("alias/") else None)

    @property
    def aws_managed_s3(self) -> bool:
        return self.alias == AWS_MANAGED_S3_KEY

    def arn(self, key_id: str | None = None) -> str:
        if key_id and key_id.startswith("arn:"):
            return key_id
        if key_id:
            return f"arn:aws:kms:{self.region}:{self.account}:key/{key_id}"
        if self.ref.startswith("arn:"):
            return self.ref
        return f"arn:aws:kms:{self.region}:{self.account}:{self.alias or 'key/' + self.ref}"


def key_region(ref: str, default: str) -> str:
    """The region of a key or alias ARN; `default` for a bare key id or alias name."""
    return KeyRef.parse(ref, "", default).region


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


def aws_managed_s3_fact(key: KeyRef) -> dict[str, Any]:
    """aws/s3 without a read: its key policy is AWS's own and cannot be changed; it admits principals of its
    account calling through S3 (kms:CallerAccount), never a service principal. It is never disabled or deleted
    (AWS manages it), and DescribeKey on the alias would create it where S3 has not yet."""
    return {"ref": key.ref, "arn": key.arn(), "account": key.account, "exists": True, "state": None,
            "manager": "AWS", "aws_managed": True, "policy": None}


def list_aliases(actx: AccountContext, region: str) -> dict[str, str | None] | dict[str, Any]:
    """AliasName -> TargetKeyId of the account and region (once per account and region), or a gap."""
    def read() -> dict[str, Any]:
        items, failed = attempt_pages(actx.client("kms", region), "list_aliases", "kms:ListAliases",
                                      f"{actx.account_id}/{region}", "Aliases")
        return failed if failed is not None else {
            a["AliasName"]: a.get("TargetKeyId") for a in items or [] if a.get("AliasName")}

    result: dict[str, Any] = actx.once(("kms-aliases", region), read)
    return result


def read_key(actx: AccountContext, region: str, ref: str) -> dict[str, Any]:
    """The key's state, manager and key policy, read where AWS allows: cached per account.

    Never DescribeKey with an alias (it can create an AWS managed key): aliases are resolved with ListAliases.
    GetKeyPolicy never works across accounts: a key of another account of the organization is read in that
    account through its audit role; outside the organization its policy is a gap that says so.
    """
    key = KeyRef.parse(ref, actx.account_id, region)

    def read() -> dict[str, Any]:
        if key.aws_managed_s3:
            return aws_managed_s3_fact(key)
        if key.account == actx.account_id:
            return _read_here(actx, key)
        return _read_elsewhere(actx, key)

    return copy.deepcopy(actx.once(("kms", key.region, ref), read))


def _read_elsewhere(actx: AccountContext, key: KeyRef) -> dict[str, Any]:
    with actx.peer(key.account) as peer:
        if isinstance(peer, AccountContext):
            fact = read_key(peer, key.region, key.ref)
            fact["read_in"] = key.account
            return fact
    if is_gap(peer):
        missing: dict[str, Any] = peer
    else:
        missing = gap("kms:GetKeyPolicy", "KeyOutsideOrganization",
                      f"the key is in account {key.account}, not an ACTIVE account of the scanned organization: "
                      "kms:GetKeyPolicy does not "
                      "work across accounts, so no permission of the audit role can read its key policy")
    return {"ref": key.ref, "arn": key.arn(), "account": key.account, "exists": missing, "state": missing,
            "manager": missing, "aws_managed": missing, "policy": missing}


def _read_here(actx: AccountContext, key: KeyRef) -> dict[str, Any]:
    """DescribeKey (by key id or ARN only) and, for a customer managed key, GetKeyPolicy."""
    fact: dict[str, Any] = {"ref": key.ref, "arn": key.arn(), "account": key.account}
    key_id: str | None = key.ref
    if key.alias is not None:
        aliases = list_aliases(actx, key.region)
        if is_gap(aliases):
            fact.update(exists=aliases, state=aliases, manager=aliases, aws_managed=aliases, policy=aliases)
            return fact
        if key.alias not in aliases:
            fact.update(exists=False, state=None, manager=None, aws_managed=None, policy=None)
            return fact
        key_id = aliases[key.alias]
        if key_id is None:  # a predefined AWS alias with no key yet: the key is AWS managed
            fact.update(exists=True, state=None, manager="AWS", aws_managed=True, policy=None)
            return fact
    where = f"{actx.account_id}/{key.region}"
    client = actx.client("kms", key.region)
    desc = attempt(client, "describe_key", "kms:DescribeKey", where, absent=("NotFoundException",), KeyId=key_id)
    if desc.absent:
        fact.update(exists=False, state=None, manager=None, aws_managed=None, policy=None)
        return fact
    if desc.gap is not None:
        fact.update(exists=desc.gap, state=desc.gap, manager=desc.gap, aws_managed=desc.gap)
    else:
        meta = (desc.data or {}).get("KeyMetadata") or {}
        key_id = meta.get("Arn") or key_id
        fact.update(exists=True, arn=meta.get("Arn") or key.arn(key_id), state=meta.get("KeyState"),
                    manager=meta.get("KeyManager"), aws_managed=meta.get("KeyManager") == "AWS")
        if fact["aws_managed"]:
            fact["policy"] = None  # fixed by AWS: it cannot admit Bedrock, and reading it changes nothing
            return fact
    pol = attempt(client, "get_key_policy", "kms:GetKeyPolicy", where, KeyId=key_id, PolicyName="default")
    if pol.gap is not None:
        fact["policy"] = pol.gap
    else:
        text = (pol.data or {}).get("Policy") or ""
        try:
            fact["policy"] = json.loads(text)
        except json.JSONDecodeError:
            fact["policy"] = text
    return fact


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
