"""Derived facts: the policy analyzer's answers about the delivery path, written beside the facts they come from.

The derivation stage runs after collection and before the rules: derive() maps a raw account document to a new,
derived one and never changes its input, so saved raw facts can be re-derived by a newer analyzer
(--from-facts). Running it on its own output gives the same document: derived keys are overwritten, never
accumulated. The helpers below fill in the copy derive() made.

Every derived value is True/False, None (not applicable), or a gap: when an input could not be read (or a
policy could not be parsed) the gap is propagated in the derived value's place, so the rules that need it
yield SCAN-003 instead of passing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from audit_bedrock.analyzer import (
    PolicyError,
    Request,
    confused_deputy_guarded,
    decide,
    parse,
    trusts_service,
    unconditioned_public_grants,
)
from audit_bedrock.facts import gap, is_gap

Value = Any  # bool | None | gap dict
BEDROCK = "bedrock.amazonaws.com"
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
LOG_STREAM = "aws/bedrock/modelinvocations"
PUBLIC_GRANTEES = ("http://acs.amazonaws.com/groups/global/AllUsers",
                   "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")
PENDING_STATES = ("PendingDeletion", "PendingReplicaDeletion")


# ---------------------------------------------------------------------------------------------- gap logic

def first_gap(*values: Any) -> dict[str, Any] | None:
    """The first gap among `values`, or None."""
    return next((v for v in values if is_gap(v)), None)


def any3(values: Iterable[Value]) -> Value:
    """True if any value is True; else the first gap if any; else False."""
    seen = list(values)
    if any(v is True for v in seen):
        return True
    return first_gap(*seen) or False


def guarded(action: str, fn: Callable[[], Value], *inputs: Any) -> Value:
    """fn() unless an input is a gap (then that gap); an unparseable policy becomes a gap for `action`."""
    missing = first_gap(*inputs)
    if missing is not None:
        return missing
    try:
        return fn()
    except PolicyError as exc:
        return gap(action, "MalformedPolicy", f"the policy could not be parsed: {exc}")


def source_context(account_id: str, region: str) -> dict[str, str]:
    """The confused-deputy keys Bedrock's service principal presents for this account and region."""
    return {"aws:SourceAccount": account_id,
            "aws:SourceArn": f"arn:aws:bedrock:{region}:{account_id}:model-invocation-logging"}


# ---------------------------------------------------------------------------------------------- delivery role

def policy_documents(role: dict[str, Any]) -> list[Any]:
    """The identity policy documents of a role record (documents may be gaps)."""
    docs: list[Any] = []
    for key in ("inline_policies", "attached_policies"):
        value = role.get(key)
        if is_gap(value):
            docs.append(value)
        else:
            docs.extend(p.get("document") for p in value or [] if not p.get("missing"))
    return docs


def role_record(iam: Any, arn: str) -> dict[str, Any]:
    """The collected record of a referenced role; a gap everywhere when IAM could not be collected."""
    if isinstance(iam, dict) and not is_gap(iam) and isinstance(iam.get("roles"), dict) and arn in iam["roles"]:
        record: dict[str, Any] = iam["roles"][arn]
        return record
    missing = iam if is_gap(iam) else gap("iam:GetRole", "NotCollected", "IAM facts were not collected")
    return {"arn": arn, "exists": missing, "trust_policy": missing, "inline_policies": missing,
            "attached_policies": missing, "permissions_boundary": missing}


def can_write_log_group(role: dict[str, Any], account_id: str, region: str, log_group: str) -> dict[str, Any]:
    """Whether the role's identity policies (and boundary) allow both log actions on the Bedrock stream."""
    docs = policy_documents(role)
    boundary = role.get("permissions_boundary")
    boundary_doc = boundary.get("document") if isinstance(boundary, dict) and not is_gap(boundary) else boundary
    stream = f"arn:aws:logs:{region}:{account_id}:log-group:{log_group}:log-stream:{LOG_STREAM}"
    context = {"aws:PrincipalArn": role["arn"], "aws:PrincipalAccount": account_id, "aws:RequestedRegion": region,
               "aws:PrincipalType": "AssumedRole"}

    def evaluate() -> Value:
        missing, denied = [], []
        for action in LOG_ACTIONS:
            req = Request(action, stream, None, context)
            verdict = decide(docs, req)
            if verdict == "allow" and boundary_doc is not None:
                verdict = decide([boundary_doc], req)
            if verdict != "allow":
                missing.append(action)
            if verdict == "explicit_deny":
                denied.append(action)
        return {"allowed": not missing, "missing_actions": missing, "denied_actions": denied}

    result = guarded("iam:GetRolePolicy", evaluate, *docs, boundary_doc)
    if is_gap(result):
        return {"can_write_log_group": result, "missing_actions": None, "stream_arn": stream}
    return {"can_write_log_group": result["allowed"], "missing_actions": result["missing_actions"],
            "denied_actions": result["denied_actions"], "stream_arn": stream}


def delivery_role(iam: Any, rdoc: dict[str, Any]) -> dict[str, Any] | None:
    """fact.delivery_role: exists, trusts_bedrock, confused_deputy_guarded, can_write_log_group."""
    cw = (rdoc.get("logging") or {}).get("cloudwatch")
    if not isinstance(cw, dict) or not cw.get("role_arn") or not (rdoc.get("logging") or {}).get("enabled"):
        return None
    role = role_record(iam, cw["role_arn"])
    out: dict[str, Any] = {"arn": role.get("arn") or cw["role_arn"], "name": role.get("name"),
                           "exists": role.get("exists")}
    exists = role.get("exists")
    if exists is not True:
        na = exists if is_gap(exists) else None
        out.update(trusts_bedrock=na, confused_deputy_guarded=na, can_write_log_group=na)
        return out
    trust = role.get("trust_policy")
    out["trusts_bedrock"] = guarded("iam:GetRole", lambda: trusts_service(trust, BEDROCK), trust)
    out["confused_deputy_guarded"] = guarded("iam:GetRole", lambda: confused_deputy_guarded(trust, BEDROCK), trust)
    if cw.get("log_group"):
        out.update(can_write_log_group(role, rdoc["account_id"], rdoc["region"], cw["log_group"]))
    else:
        out["can_write_log_group"] = None
    return out


# ---------------------------------------------------------------------------------------------- buckets

def log_key_prefix(prefix: str, account_id: str) -> str:
    """Where Bedrock writes in a bucket: PREFIX/AWSLogs/ACCOUNT/BedrockModelInvocationLogs/."""
    parts = [p for p in prefix.strip("/").split("/") if p]
    return "/".join([*parts, "AWSLogs", account_id, "BedrockModelInvocationLogs", ""])


def log_object_arn(bucket: str, prefix: str, account_id: str, region: str) -> str:
    """An object Bedrock writes: BUCKET/PREFIX/AWSLogs/ACCOUNT/BedrockModelInvocationLogs/REGION/..."""
    return f"arn:aws:s3:::{bucket}/{log_key_prefix(prefix, account_id)}{region}/invocation.json.gz"


def _lifecycle_applies(rule: dict[str, Any], key_prefix: str) -> bool:
    flt = rule.get("Filter") or {}
    if "Tag" in flt or (flt.get("And") or {}).get("Tags"):
        return False  # Bedrock's log objects carry no tags
    prefix = flt.get("Prefix", (flt.get("And") or {}).get("Prefix", rule.get("Prefix", ""))) or ""
    return key_prefix.startswith(prefix)


def _bounds_objects(rule: dict[str, Any]) -> bool:
    exp = rule.get("Expiration") or {}
    return rule.get("Status") == "Enabled" and bool(
        exp.get("Days") or exp.get("Date") or rule.get("Transitions") or rule.get("Transition"))


def derive_bucket(bucket: dict[str, Any], account_id: str, region: str) -> None:
    """bedrock_can_put, explicit_deny, public, acls_enabled, sse_kms, kms_key_ref, has_expiring_lifecycle."""
    exists = bucket.get("exists")
    keys = ("log_prefixes", "bedrock_can_put", "explicit_deny", "public", "public_policy_statements",
            "acls_enabled", "sse_kms", "kms_key_ref", "has_expiring_lifecycle")
    if exists is not True:
        bucket.update(dict.fromkeys(keys, exists if is_gap(exists) else None))
        return
    name, policy = bucket["name"], bucket.get("policy")
    uses = bucket.get("uses") or [{"destination": "s3", "prefix": ""}]
    prefixes = sorted({log_key_prefix(u.get("prefix") or "", account_id) for u in uses})
    bucket["log_prefixes"] = prefixes
    ctx = source_context(account_id, region)

    def put_verdicts() -> list[str]:
        return [decide([policy], Request("s3:PutObject", log_object_arn(name, u.get("prefix") or "", account_id,
                                                                          region), {"Service": BEDROCK}, ctx))
                for u in uses]

    verdicts = guarded("s3:GetBucketPolicy", put_verdicts, policy)
    if is_gap(verdicts):
        bucket.update(bedrock_can_put=verdicts, explicit_deny=verdicts)
    else:
        bucket.update(bedrock_can_put=all(v == "allow" for v in verdicts),
                      explicit_deny=any(v == "explicit_deny" for v in verdicts))

    pab = bucket.get("public_access_block")
    statements = guarded("s3:GetBucketPolicy", lambda: unconditioned_public_grants(policy), policy)
    bucket["public_policy_statements"] = statements
    if is_gap(statements):
        policy_public: Value = statements
    elif not statements:
        policy_public = False
    elif is_gap(pab):
        policy_public = pab
    else:
        pab = pab or {}
        policy_public = not (pab.get("BlockPublicPolicy") is True and pab.get("RestrictPublicBuckets") is True)
    acl = bucket.get("acl")
    if is_gap(acl):
        acl_public: Value = acl
    elif not acl:
        acl_public = False  # no grants, or ACLs disabled by BucketOwnerEnforced
    elif not any(g.get("uri") in PUBLIC_GRANTEES for g in acl):
        acl_public = False
    elif is_gap(pab):
        acl_public = pab
    else:
        acl_public = (pab or {}).get("IgnorePublicAcls") is not True
    bucket["public"] = any3([policy_public, acl_public])

    ownership = bucket.get("object_ownership")
    bucket["acls_enabled"] = ownership if is_gap(ownership) else ownership != "BucketOwnerEnforced"
    enc = bucket.get("encryption")
    if is_gap(enc):
        bucket.update(sse_kms=enc, kms_key_ref=enc)
    else:
        sse_kms = isinstance(enc, dict) and enc.get("algorithm") in KMS_ALGORITHMS
        bucket["sse_kms"] = sse_kms
        bucket["kms_key_ref"] = ((enc or {}).get("kms_key_id") or "alias/aws/s3") if sse_kms else None
    rules = bucket.get("lifecycle_rules")
    if is_gap(rules):
        bucket["has_expiring_lifecycle"] = rules
    else:
        bucket["has_expiring_lifecycle"] = all(
            any(_bounds_objects(r) and _lifecycle_applies(r, p) for r in rules or []) for p in prefixes)


# ---------------------------------------------------------------------------------------------- keys

def derive_key(key: dict[str, Any], account_id: str, region: str) -> None:
    """enabled, pending_deletion, and (for bucket keys) bedrock_can_generate_data_key."""
    exists, state = key.get("exists"), key.get("state")
    if is_gap(exists) or is_gap(state):
        missing = first_gap(exists, state)
        key.update(enabled=missing, pending_deletion=missing)
    elif exists is False:
        key.update(enabled=False, pending_deletion=False, state="NotFound")
    else:
        key.update(enabled=state == "Enabled", pending_deletion=state in PENDING_STATES)
    used_by_bucket = any(u.get("kind") == "bucket" for u in key.get("used_by") or [])
    key["used_by_bucket"] = used_by_bucket
    if not used_by_bucket or exists is False:
        key["bedrock_can_generate_data_key"] = None
        return
    policy = key.get("policy")
    ctx = {**source_context(account_id, region), "kms:ViaService": f"s3.{region}.amazonaws.com"}
    key["bedrock_can_generate_data_key"] = guarded(
        "kms:GetKeyPolicy",
        lambda: decide([policy], Request("kms:GenerateDataKey", key.get("arn") or key["ref"], {"Service": BEDROCK},
                                         ctx)) == "allow",
        policy)


def unknown_keys(rdoc: dict[str, Any]) -> list[dict[str, Any]]:
    """A placeholder key for each destination whose key setting could not be read, so BIL-019 yields SCAN-003."""
    out = []
    group = rdoc.get("log_group")
    if isinstance(group, dict) and is_gap(group.get("kms_key_id")):
        out.append((group, "log_group", group["kms_key_id"]))
    buckets = rdoc.get("buckets")
    for b in buckets if isinstance(buckets, list) else []:
        if is_gap(b.get("encryption")) and b.get("exists") is not False:
            out.append((b, "bucket", b["encryption"]))
    return [{"ref": None, "arn": res.get("arn"), "exists": missing, "state": missing, "enabled": missing,
             "pending_deletion": missing, "bedrock_can_generate_data_key": missing if kind == "bucket" else None,
             "used_by": [{"kind": kind, "name": res.get("name")}], "used_by_bucket": kind == "bucket",
             "unknown": True} for res, kind, missing in out]


# ---------------------------------------------------------------------------------------------- destinations

def destinations(rdoc: dict[str, Any]) -> list[dict[str, Any]]:
    """One uniform record per destination resource (log group, buckets) for the per-resource rules."""
    out = []
    group = rdoc.get("log_group")
    if isinstance(group, dict):
        kms = group.get("kms_key_id")
        encrypted = kms if is_gap(kms) else (isinstance(kms, str) and bool(kms)) if group.get("exists") else None
        out.append({"kind": "log_group", "name": group.get("name"), "arn": group.get("arn"),
                    "account": rdoc["account_id"], "exists": group.get("exists"), "encrypted_kms": encrypted,
                    "encryption": kms if isinstance(kms, str) else None})
    buckets = rdoc.get("buckets")
    for b in buckets if isinstance(buckets, list) else []:
        enc = b.get("encryption")
        out.append({"kind": "bucket", "name": b.get("name"), "arn": b.get("arn"), "account": rdoc["account_id"],
                    "exists": b.get("exists"), "encrypted_kms": b.get("sse_kms"),
                    "encryption": enc.get("algorithm") if isinstance(enc, dict) and not is_gap(enc) else None})
    return out


# ---------------------------------------------------------------------------------------------- orphaned roles

def _sample(pattern: str) -> str:
    return pattern.replace("*", "x").replace("?", "x")


def grants_put_log_events(docs: list[Any], account_id: str) -> Value:
    """Some identity policy allows logs:PutLogEvents on some log stream (wildcards and Deny honoured)."""
    def evaluate() -> bool:
        samples = {f"arn:aws:logs:us-east-1:{account_id}:log-group:x:log-stream:x"}
        for doc in docs:
            for stmt in parse(doc):
                samples.update(_sample(r) for r in stmt.get("Resource") or [] if r.startswith(("arn:", "*")))
        return any(decide(docs, Request("logs:PutLogEvents", s)) == "allow" for s in sorted(samples))

    return guarded("iam:GetRolePolicy", evaluate, *docs)


def derive_unreferenced(iam: dict[str, Any], account_id: str) -> None:
    """trusts_bedrock, grants_put_log_events and missing target log groups of each unreferenced role."""
    roles = iam.get("unreferenced_bedrock_roles")
    if not isinstance(roles, list):
        return
    for role in roles:
        trust = role.get("trust_policy")

        def trusted(t: Any = trust) -> bool:
            return trusts_service(t, BEDROCK)

        role["trusts_bedrock"] = guarded("iam:ListRoles", trusted, trust)
        docs = policy_documents(role)
        role["grants_put_log_events"] = grants_put_log_events(docs, account_id)
        targets = role.get("target_log_groups") or []
        role["missing_log_groups"] = sorted(t["name"] for t in targets if t.get("exists") is False)
        role["targets_missing_log_group"] = bool(role["missing_log_groups"])


# ---------------------------------------------------------------------------------------------- entry point

def derive(raw: dict[str, Any]) -> dict[str, Any]:
    """A new account document: `raw` (left untouched) with every derived fact added or recomputed."""
    account = copy.deepcopy(raw)
    iam = account.get("iam")
    if isinstance(iam, dict) and not is_gap(iam):
        derive_unreferenced(iam, account["account_id"])
    for rdoc in account.get("regions") or []:
        if rdoc.get("status") != "scanned":
            continue
        region, acct = rdoc["region"], rdoc["account_id"]
        rdoc["delivery_role"] = delivery_role(iam, rdoc)
        buckets, keys = rdoc.get("buckets"), rdoc.get("kms_keys")
        for bucket in buckets if isinstance(buckets, list) else []:
            derive_bucket(bucket, acct, region)
        if isinstance(keys, list):
            keys[:] = [k for k in keys if not is_placeholder(k)]  # a derived document's own placeholders
            for key in keys:
                derive_key(key, acct, region)
            keys.extend(unknown_keys(rdoc))
        rdoc["destinations"] = destinations(rdoc)
    return account


def is_placeholder(key: Any) -> bool:
    """A key record unknown_keys() added, not one the key collector read."""
    return isinstance(key, dict) and key.get("unknown") is True
