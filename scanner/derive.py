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
    public_grants,
    trusts_service,
)
from audit_bedrock.evidence import derive_evidence
from audit_bedrock.facts import gap, is_gap

Value = Any  # bool | None | gap dict
BEDROCK = "bedrock.amazonaws.com"
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
LOG_STREAM = "aws/bedrock/modelinvocations"
PUBLIC_GRANTEES = ("http://acs.amazonaws.com/groups/global/AllUsers",
                   "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")
PENDING_STATES = ("PendingDeletion", "PendingReplicaDeletion")
PAB_FLAGS = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")  # sorted
# Lifecycle filter fields that leave some log objects out: Bedrock's objects carry no tags, and a size
# bound leaves every object outside the range untouched.
NARROWING_FILTERS = ("Tag", "Tags", "ObjectSizeGreaterThan", "ObjectSizeLessThan")


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


def bedrock_context(account_id: str, region: str) -> dict[str, str | list[str]]:
    """The request context of Bedrock's service principal acting for this account and region: the confused-deputy
    keys and the service-principal keys (IAM UG "AWS global condition context keys": aws:PrincipalIsAWSService
    true, aws:PrincipalServiceName and the multivalued aws:PrincipalServiceNamesList). kms:CallerAccount is not
    documented for service principals and is left out, so a policy that requires it does not admit Bedrock."""
    return {**source_context(account_id, region), "aws:PrincipalIsAWSService": "true",
            "aws:PrincipalServiceName": BEDROCK, "aws:PrincipalServiceNamesList": [BEDROCK]}


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
    boundary_doc = boundary_document(role.get("permissions_boundary"))
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
    """The rule's filter selects every log object under `key_prefix` (S3 LifecycleRuleFilter / And operator)."""
    flt = rule.get("Filter") or {}
    both = flt.get("And") or {}
    if any(k in flt or k in both for k in NARROWING_FILTERS):
        return False
    prefix = flt.get("Prefix", both.get("Prefix", rule.get("Prefix", ""))) or ""
    return key_prefix.startswith(prefix)


def _bounds_objects(rule: dict[str, Any]) -> bool:
    """An enabled rule that expires (Days or Date) or transitions current objects; delete-marker, noncurrent
    version and incomplete-upload actions never touch a current log object."""
    exp = rule.get("Expiration") or {}
    return rule.get("Status") == "Enabled" and bool(
        exp.get("Days") or exp.get("Date") or rule.get("Transitions") or rule.get("Transition"))


def effective_public_access_block(bucket_pab: Any, account_pab: Any) -> Value:
    """S3's Block Public Access in effect: per flag, the bucket's OR the account's (the most restrictive wins).

    None (not set) counts as all four off. A flag is a gap only when it is off (or unknown) on the readable
    side and the other side could not be read.
    """
    out: dict[str, Any] = {}
    for flag in PAB_FLAGS:
        sides = [side if is_gap(side) else (side or {}).get(flag) is True for side in (bucket_pab, account_pab)]
        out[flag] = any3(sides)
    return out


def public_policy(statements: Value, effective: dict[str, Any]) -> Value:
    """A public policy is in force unless RestrictPublicBuckets is on (BlockPublicPolicy only refuses new ones)."""
    if is_gap(statements):
        return statements
    if not statements:
        return False
    restrict = effective["RestrictPublicBuckets"]
    return restrict if is_gap(restrict) else not restrict


def public_acl(acl: Any, effective: dict[str, Any]) -> Value:
    """An ACL grant to AllUsers/AuthenticatedUsers is in force unless IgnorePublicAcls is on."""
    if is_gap(acl):
        return acl
    if not acl or not any(g.get("uri") in PUBLIC_GRANTEES for g in acl):
        return False  # no grants, or ACLs disabled by BucketOwnerEnforced
    ignore = effective["IgnorePublicAcls"]
    return ignore if is_gap(ignore) else not ignore


BUCKET_DERIVED = ("log_prefixes", "bedrock_can_put", "explicit_deny", "public", "public_write",
                  "public_policy_statements", "effective_public_access_block", "acls_enabled", "sse_kms",
                  "kms_key_ref", "has_expiring_lifecycle", "region_matches")


def derive_bucket(bucket: dict[str, Any], account_id: str, region: str) -> None:
    """bedrock_can_put, explicit_deny, public (+ public_write, the effective public access block), acls_enabled,
    sse_kms, kms_key_ref, has_expiring_lifecycle, region_matches.

    A bucket that does not exist, or that another account owns (BIL-020 replaces every other verdict about
    it), gets None everywhere; an unreadable existence gets the gap everywhere.
    """
    exists = bucket.get("exists")
    if exists is not True or bucket.get("owned") is False:
        bucket.update(dict.fromkeys(BUCKET_DERIVED, exists if is_gap(exists) else None))
        return
    name, policy = bucket["name"], bucket.get("policy")
    uses = bucket.get("uses") or [{"destination": "s3", "prefix": ""}]
    prefixes = sorted({log_key_prefix(u.get("prefix") or "", account_id) for u in uses})
    bucket["log_prefixes"] = prefixes
    where = bucket.get("region")
    bucket["region_matches"] = where if is_gap(where) else (where == region if where else None)
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

    effective = effective_public_access_block(bucket.get("public_access_block"),
                                              bucket.get("account_public_access_block"))
    bucket["effective_public_access_block"] = effective
    grants = guarded("s3:GetBucketPolicy", lambda: public_grants(policy), policy)
    bucket["public_policy_statements"] = grants if is_gap(grants) else [g.statement for g in grants]
    policy_public = public_policy(bucket["public_policy_statements"], effective)
    bucket["public"] = any3([policy_public, public_acl(bucket.get("acl"), effective)])
    bucket["public_write"] = grants if is_gap(grants) else policy_public is True and any(g.writes for g in grants)

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

def key_requests(key: dict[str, Any], buckets: list[dict[str, Any]], account_id: str,
                 region: str) -> list[Request]:
    """Bedrock's kms:GenerateDataKey through S3 for each bucket (and log prefix) using the key, with the context
    S3 sends (S3 UG "Using SSE-KMS", encryption context): kms:EncryptionContext:aws:s3:arn is the bucket ARN
    with an S3 Bucket Key, the object ARN without; kms:ViaService s3.REGION.amazonaws.com."""
    users = sorted({str(u.get("name")) for u in key.get("used_by") or [] if u.get("kind") == "bucket"})
    records = {b.get("name"): b for b in buckets}
    base = {**bedrock_context(account_id, region), "kms:ViaService": f"s3.{region}.amazonaws.com"}
    out = []
    for name in users:
        record = records.get(name) or {}
        enc = record.get("encryption")
        bucket_key = isinstance(enc, dict) and enc.get("bucket_key_enabled") is True
        for use in record.get("uses") or [{"prefix": ""}]:
            s3_arn = (f"arn:aws:s3:::{name}" if bucket_key
                      else log_object_arn(name, use.get("prefix") or "", account_id, region))
            out.append(Request("kms:GenerateDataKey", key.get("arn") or key["ref"], {"Service": BEDROCK},
                               {**base, "kms:EncryptionContext:aws:s3:arn": s3_arn}))
    return out


def derive_key(key: dict[str, Any], account_id: str, region: str,
               buckets: list[dict[str, Any]] | None = None) -> None:
    """enabled, pending_deletion, and (for bucket keys) bedrock_can_generate_data_key.

    An AWS managed key (aws/s3) is never disabled nor deleted by anyone but AWS, and its fixed key policy
    admits only principals of its account calling through S3: Bedrock's service principal never."""
    exists, state, managed = key.get("exists"), key.get("state"), key.get("aws_managed")
    if is_gap(exists) or is_gap(state):
        missing = first_gap(exists, state)
        key.update(enabled=missing, pending_deletion=missing)
    elif exists is False:
        key.update(enabled=False, pending_deletion=False, state="NotFound")
    elif managed is True and state is None:
        key.update(enabled=True, pending_deletion=False)
    else:
        key.update(enabled=state == "Enabled", pending_deletion=state in PENDING_STATES)
    used_by_bucket = any(u.get("kind") == "bucket" for u in key.get("used_by") or [])
    key["used_by_bucket"] = used_by_bucket
    if not used_by_bucket or exists is False:
        key["bedrock_can_generate_data_key"] = None
        return
    if managed is True:
        key["bedrock_can_generate_data_key"] = False
        return
    policy = key.get("policy")
    requests = key_requests(key, buckets or [], account_id, region)
    key["bedrock_can_generate_data_key"] = guarded(
        "kms:GetKeyPolicy", lambda: bool(requests) and all(decide([policy], r) == "allow" for r in requests),
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
                    "account": rdoc["account_id"], "owned": True, "exists": group.get("exists"),
                    "encrypted_kms": encrypted,
                    "encryption": kms if isinstance(kms, str) else None})
    buckets = rdoc.get("buckets")
    for b in buckets if isinstance(buckets, list) else []:
        enc = b.get("encryption")
        # A destination's account is its owner's: the scanned account when its ListBuckets lists the bucket
        # (Bedrock delivers only within the account); another account's bucket is BIL-020, whose owner we
        # cannot name, and an unknown owner is left unjudged (the gap shows on the bucket's own rules).
        owned = b.get("owned")
        out.append({"kind": "bucket", "name": b.get("name"), "arn": b.get("arn"),
                    "account": None if owned is False or is_gap(owned) else rdoc["account_id"], "owned": owned,
                    "exists": b.get("exists"), "encrypted_kms": b.get("sse_kms"),
                    "encryption": enc.get("algorithm") if isinstance(enc, dict) and not is_gap(enc) else None})
    return out


# ---------------------------------------------------------------------------------------------- orphaned roles

def _sample(pattern: str) -> str:
    return pattern.replace("*", "x").replace("?", "x")


def boundary_document(boundary: Any) -> Any:
    """The policy document of a permissions-boundary record, a gap, or None when the role has no boundary."""
    return boundary.get("document") if isinstance(boundary, dict) and not is_gap(boundary) else boundary


def grants_put_log_events(docs: list[Any], account_id: str, boundary: Any = None) -> Value:
    """Some identity policy allows logs:PutLogEvents on some log stream (wildcards and Deny honoured), and the
    permissions boundary, when there is one (a record with its `document`), allows it on that stream too."""
    bound = boundary_document(boundary)

    def evaluate() -> bool:
        samples = {f"arn:aws:logs:us-east-1:{account_id}:log-group:x:log-stream:x"}
        for doc in [*docs, *([bound] if boundary is not None else [])]:
            for stmt in parse(doc):
                samples.update(_sample(r) for r in stmt.get("Resource") or [] if r.startswith(("arn:", "*")))

        def works(sample: str) -> bool:
            req = Request("logs:PutLogEvents", sample)
            return decide(docs, req) == "allow" and (boundary is None or decide([bound], req) == "allow")

        return any(works(s) for s in sorted(samples))

    return guarded("iam:GetRolePolicy", evaluate, *docs, bound)


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
        # The collector reads the boundary (GetRole) only for a role whose own policies grant the write.
        role["grants_put_log_events"] = grants_put_log_events(docs, account_id, role.get("permissions_boundary"))
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
                derive_key(key, acct, region, buckets if isinstance(buckets, list) else [])
            keys.extend(unknown_keys(rdoc))
        rdoc["destinations"] = destinations(rdoc)
    derive_evidence(account)  # BIL-022..025: delivery proof, the last deletion, SCP protection, erasable stores
    return account


def is_placeholder(key: Any) -> bool:
    """A key record unknown_keys() added, not one the key collector read."""
    return isinstance(key, dict) and key.get("unknown") is True
