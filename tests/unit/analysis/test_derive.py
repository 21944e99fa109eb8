"""Derived facts without AWS: bucket, key, delivery-role and orphan-role answers, and gap propagation."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from audit_bedrock.derive import (
    delivery_role,
    derive,
    derive_bucket,
    derive_key,
    grants_put_log_events,
    log_object_arn,
)
from audit_bedrock.facts import gap, is_gap

ACCT = "111111111111"
REGION = "us-east-1"
BEDROCK = "bedrock.amazonaws.com"
DENIED = gap("s3:GetBucketPolicy", "AccessDenied", "denied")


def stmt(**kw: Any) -> dict[str, Any]:
    return {"Effect": "Allow", **kw}


def pol(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


GUARD = {"StringEquals": {"aws:SourceAccount": ACCT},
         "ArnLike": {"aws:SourceArn": f"arn:aws:bedrock:{REGION}:{ACCT}:*"}}
DOCUMENTED = stmt(Principal={"Service": BEDROCK}, Action="s3:PutObject",
                  Resource=f"arn:aws:s3:::b/logs/AWSLogs/{ACCT}/BedrockModelInvocationLogs/*", Condition=GUARD)


def bucket(**overrides: Any) -> dict[str, Any]:
    base = {"name": "b", "arn": "arn:aws:s3:::b", "exists": True, "uses": [{"destination": "s3", "prefix": "logs"}],
            "policy": pol(DOCUMENTED), "public_access_block": None, "object_ownership": "BucketOwnerEnforced",
            "acl": None, "encryption": {"algorithm": "aws:kms", "kms_key_id": "k"},
            "lifecycle_rules": [{"Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 30}}]}
    return {**base, **overrides}


def derived(b: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(b)
    derive_bucket(b, ACCT, REGION)
    return b


PUT_CASES = [
    pytest.param({}, True, False, id="documented-statement"),
    pytest.param({"policy": None}, False, False, id="no-policy"),
    pytest.param({"policy": pol(stmt(Principal={"Service": BEDROCK}, Action="s3:*", Resource="arn:aws:s3:::b/*"))},
                 True, False, id="broader-grant"),
    pytest.param({"policy": pol(stmt(Principal={"Service": BEDROCK}, Action="s3:PutObject",
                                     Resource="arn:aws:s3:::b/other/*"))}, False, False, id="other-prefix"),
    pytest.param({"policy": pol(DOCUMENTED, {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                                             "Resource": "arn:aws:s3:::b/*"})}, False, True, id="explicit-deny"),
    pytest.param({"policy": pol(DOCUMENTED, {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                                             "Resource": "arn:aws:s3:::b/*",
                                             "Condition": {"Bool": {"aws:SecureTransport": "false"}}})},
                 True, False, id="deny-insecure-transport-does-not-apply"),
    pytest.param({"policy": pol(stmt(Principal={"Service": BEDROCK}, Action="s3:PutObject",
                                     Resource="arn:aws:s3:::b/*",
                                     Condition={"StringEquals": {"aws:SourceAccount": "222222222222"}}))},
                 False, False, id="wrong-source-account"),
    pytest.param({"uses": [{"destination": "s3", "prefix": "logs"}, {"destination": "large_data", "prefix": "big"}]},
                 False, False, id="every-prefix-must-be-allowed"),
    pytest.param({"uses": [{"destination": "s3", "prefix": "/logs/"}]}, True, False, id="slashes-trimmed"),
]


@pytest.mark.parametrize(("overrides", "can_put", "deny"), PUT_CASES)
def test_bedrock_can_put(overrides: dict[str, Any], can_put: bool, deny: bool) -> None:
    b = derived(bucket(**overrides))
    assert (b["bedrock_can_put"], b["explicit_deny"]) == (can_put, deny)


def test_log_object_arn_is_the_documented_path() -> None:
    assert log_object_arn("b", "logs/", ACCT, REGION) == \
        f"arn:aws:s3:::b/logs/AWSLogs/{ACCT}/BedrockModelInvocationLogs/{REGION}/invocation.json.gz"
    assert log_object_arn("b", "", ACCT, REGION).startswith(f"arn:aws:s3:::b/AWSLogs/{ACCT}/")


PUBLIC = stmt(Principal="*", Action="s3:GetObject", Resource="arn:aws:s3:::b/*")
BLOCK = {"BlockPublicPolicy": True, "RestrictPublicBuckets": True, "BlockPublicAcls": True, "IgnorePublicAcls": True}
ALL_USERS = {"type": "Group", "uri": "http://acs.amazonaws.com/groups/global/AllUsers", "permission": "READ"}
PUBLIC_CASES = [
    pytest.param({}, False, id="private"),
    pytest.param({"policy": pol(DOCUMENTED, PUBLIC)}, True, id="public-policy-no-pab"),
    pytest.param({"policy": pol(DOCUMENTED, PUBLIC), "public_access_block": BLOCK}, False, id="pab-blocks-policy"),
    pytest.param({"policy": pol(DOCUMENTED, PUBLIC), "public_access_block": {"BlockPublicPolicy": True}}, True,
                 id="block-policy-alone-is-not-enough"),
    pytest.param({"policy": pol(DOCUMENTED, {**PUBLIC, "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}})},
                 False, id="org-conditioned-grant"),
    pytest.param({"object_ownership": None, "acl": [ALL_USERS]}, True, id="public-acl"),
    pytest.param({"object_ownership": None, "acl": [ALL_USERS], "public_access_block": BLOCK}, False,
                 id="public-acl-ignored"),
    pytest.param({"policy": DENIED}, DENIED, id="policy-unreadable-is-a-gap"),
    pytest.param({"policy": pol(DOCUMENTED, PUBLIC), "public_access_block": DENIED}, DENIED,
                 id="pab-unreadable-matters-only-when-public"),
    pytest.param({"public_access_block": DENIED}, False, id="pab-unreadable-irrelevant-when-private"),
    pytest.param({"policy": DENIED, "object_ownership": None, "acl": [ALL_USERS]}, True,
                 id="public-acl-decides-despite-policy-gap"),
]


@pytest.mark.parametrize(("overrides", "public"), PUBLIC_CASES)
def test_public(overrides: dict[str, Any], public: Any) -> None:
    assert derived(bucket(**overrides))["public"] == public


LIFECYCLE_CASES = [
    pytest.param([{"Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 30}}], True, id="expires"),
    pytest.param([{"Status": "Enabled", "Filter": {"Prefix": "logs/"},
                   "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}], True, id="transitions-log-prefix"),
    pytest.param([{"Status": "Disabled", "Filter": {}, "Expiration": {"Days": 30}}], False, id="disabled-rule"),
    pytest.param([{"Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}}], False,
                 id="other-prefix"),
    pytest.param([{"Status": "Enabled", "Filter": {"Tag": {"Key": "k", "Value": "v"}}, "Expiration": {"Days": 1}}],
                 False, id="tag-filter-never-matches-logs"),
    pytest.param([{"Status": "Enabled", "Filter": {}, "Expiration": {"ExpiredObjectDeleteMarker": True}}], False,
                 id="delete-markers-only"),
    pytest.param([{"Status": "Enabled", "Prefix": "logs/", "Expiration": {"Date": "2030-01-01T00:00:00Z"}}], True,
                 id="legacy-prefix"),
    pytest.param(None, False, id="no-configuration"),
    pytest.param(gap("s3:GetLifecycleConfiguration", "AccessDenied"), "gap", id="unreadable"),
]


@pytest.mark.parametrize(("rules", "expected"), LIFECYCLE_CASES)
def test_has_expiring_lifecycle(rules: Any, expected: Any) -> None:
    value = derived(bucket(lifecycle_rules=rules))["has_expiring_lifecycle"]
    assert is_gap(value) if expected == "gap" else value is expected


@pytest.mark.parametrize(
    ("overrides", "acls", "sse", "ref"),
    [pytest.param({}, False, True, "k", id="enforced-kms"),
     pytest.param({"object_ownership": "ObjectWriter", "encryption": {"algorithm": "AES256"}}, True, False, None,
                  id="acls-sse-s3"),
     pytest.param({"object_ownership": None, "encryption": None}, True, False, None, id="nothing-set"),
     pytest.param({"encryption": {"algorithm": "aws:kms:dsse", "kms_key_id": None}}, False, True, "alias/aws/s3",
                  id="dsse-default-key")],
)
def test_acls_and_encryption(overrides: dict[str, Any], acls: bool, sse: bool, ref: str | None) -> None:
    b = derived(bucket(**overrides))
    assert (b["acls_enabled"], b["sse_kms"], b["kms_key_ref"]) == (acls, sse, ref)


def test_missing_and_unreadable_buckets() -> None:
    missing = derived(bucket(exists=False))
    assert missing["bedrock_can_put"] is None and missing["public"] is None
    unknown = derived(bucket(exists=DENIED))
    assert all(is_gap(unknown[k]) for k in ("bedrock_can_put", "public", "acls_enabled", "sse_kms",
                                            "has_expiring_lifecycle"))


KEY_POLICY = pol(stmt(Principal={"AWS": f"arn:aws:iam::{ACCT}:root"}, Action="kms:*", Resource="*"),
                 stmt(Principal={"Service": BEDROCK}, Action="kms:GenerateDataKey", Resource="*", Condition=GUARD))
KEY_CASES = [
    pytest.param("Enabled", KEY_POLICY, "bucket", (True, False, True), id="usable-bucket-key"),
    pytest.param("Enabled", pol(KEY_POLICY["Statement"][0]), "bucket", (True, False, False), id="root-only-policy"),
    pytest.param("PendingDeletion", KEY_POLICY, "bucket", (False, True, True), id="pending-deletion"),
    pytest.param("Disabled", KEY_POLICY, "log_group", (False, False, None), id="disabled-log-group-key"),
    pytest.param("Enabled", DENIED, "log_group", (True, False, None), id="policy-irrelevant-for-log-group"),
    pytest.param("Enabled", DENIED, "bucket", (True, False, "gap"), id="policy-unreadable-bucket-key"),
]


@pytest.mark.parametrize(("state", "policy", "kind", "expected"), KEY_CASES)
def test_keys(state: str, policy: Any, kind: str, expected: tuple[Any, ...]) -> None:
    key = {"ref": "k", "arn": f"arn:aws:kms:{REGION}:{ACCT}:key/k", "exists": True, "state": state,
           "policy": policy, "used_by": [{"kind": kind, "name": "x"}]}
    derive_key(key, ACCT, REGION)
    got = (key["enabled"], key["pending_deletion"], key["bedrock_can_generate_data_key"])
    assert got[:2] == expected[:2]
    assert is_gap(got[2]) if expected[2] == "gap" else got[2] is expected[2]


def region(role_arn: str = f"arn:aws:iam::{ACCT}:role/r", group: str = "/g") -> dict[str, Any]:
    return {"account_id": ACCT, "region": REGION, "status": "scanned",
            "logging": {"enabled": True, "cloudwatch": {"log_group": group, "role_arn": role_arn}}}


def role(**overrides: Any) -> dict[str, Any]:
    trust = pol(stmt(Principal={"Service": BEDROCK}, Action="sts:AssumeRole", Condition=GUARD))
    write = pol(stmt(Action=["logs:CreateLogStream", "logs:PutLogEvents"],
                     Resource=f"arn:aws:logs:{REGION}:{ACCT}:log-group:/g:*"))
    base = {"arn": f"arn:aws:iam::{ACCT}:role/r", "name": "r", "exists": True, "trust_policy": trust,
            "inline_policies": [{"name": "p", "document": write}], "attached_policies": [],
            "permissions_boundary": None}
    return {**base, **overrides}


ROLE_CASES = [
    pytest.param({}, (True, True, True), id="good"),
    pytest.param({"trust_policy": pol(stmt(Principal={"Service": BEDROCK}, Action="sts:AssumeRole"))},
                 (True, False, True), id="unguarded"),
    pytest.param({"inline_policies": [{"name": "p", "document": pol(stmt(Action="logs:PutLogEvents",
                                                                         Resource="*"))}]},
                 (True, True, False), id="missing-create-log-stream"),
    pytest.param({"inline_policies": [], "attached_policies": [{"arn": "arn:aws:iam::aws:policy/X", "document": None,
                                                                "missing": True}]},
                 (True, True, False), id="unresolvable-managed-policy-grants-nothing"),
    pytest.param({"permissions_boundary": {"arn": "b", "document": pol(stmt(Action="logs:*", Resource="*"))}},
                 (True, True, True), id="boundary-allows"),
    pytest.param({"inline_policies": gap("iam:ListRolePolicies", "AccessDenied")}, (True, True, "gap"),
                 id="policies-unreadable"),
    pytest.param({"permissions_boundary": {"arn": "b", "document": gap("iam:GetPolicyVersion", "AccessDenied")}},
                 (True, True, "gap"), id="boundary-unreadable"),
    pytest.param({"trust_policy": "{not json"}, ("gap", "gap", True), id="malformed-trust"),
]


@pytest.mark.parametrize(("overrides", "expected"), ROLE_CASES)
def test_delivery_role(overrides: dict[str, Any], expected: tuple[Any, ...]) -> None:
    r = role(**overrides)
    dr = delivery_role({"roles": {r["arn"]: r}}, region())
    assert dr is not None
    got = (dr["trusts_bedrock"], dr["confused_deputy_guarded"], dr["can_write_log_group"])
    for g, e in zip(got, expected, strict=True):
        assert is_gap(g) if e == "gap" else g is e


def test_delivery_role_when_iam_could_not_be_collected() -> None:
    dr = delivery_role(gap("iam:ListRoles", "InternalError"), region())
    assert dr is not None and is_gap(dr["exists"]) and is_gap(dr["can_write_log_group"])
    assert delivery_role({"roles": {}}, {**region(), "logging": {"enabled": False}}) is None


@pytest.mark.parametrize(
    ("docs", "expected"),
    [pytest.param([pol(stmt(Action="logs:*", Resource="*"))], True, id="wildcards"),
     pytest.param([pol(stmt(Action="logs:PutLogEvents", Resource=f"arn:aws:logs:eu-west-1:{ACCT}:log-group:/x:*"))],
                  True, id="one-group-elsewhere"),
     pytest.param([pol(stmt(Action="logs:PutLogEvents", Resource="*")),
                   pol({"Effect": "Deny", "Action": "logs:*", "Resource": "*"})], False, id="denied"),
     pytest.param([pol(stmt(Action="s3:*", Resource="*"))], False, id="no-logs"),
     pytest.param([gap("iam:GetRolePolicy", "AccessDenied")], "gap", id="unreadable")],
)
def test_grants_put_log_events(docs: list[Any], expected: Any) -> None:
    value = grants_put_log_events(docs, ACCT)
    assert is_gap(value) if expected == "gap" else value is expected


def test_unknown_encryption_adds_a_placeholder_key_for_bil_019() -> None:
    enc_gap = gap("s3:GetEncryptionConfiguration", "AccessDenied")
    account = {"account_id": ACCT, "iam": {"roles": {}, "unreferenced_bedrock_roles": []},
               "regions": [{"account_id": ACCT, "region": REGION, "status": "scanned",
                            "logging": {"enabled": True}, "log_group": None,
                            "buckets": [bucket(encryption=enc_gap)], "kms_keys": []}]}
    account = derive(account)
    keys = account["regions"][0]["kms_keys"]
    assert len(keys) == 1 and keys[0]["unknown"] and keys[0]["enabled"] == enc_gap
    assert keys[0]["arn"] == "arn:aws:s3:::b"
    assert account["regions"][0]["destinations"][0]["encrypted_kms"] == enc_gap


# ---------------------------------------------------------------------------------------------- purity

def account_with(**region: Any) -> dict[str, Any]:
    """A raw account document (as the collectors leave it) with one scanned region carrying `region`."""
    role_arn = f"arn:aws:iam::{ACCT}:role/logs"
    trust = pol(stmt(Principal={"Service": BEDROCK}, Action="sts:AssumeRole", Condition=GUARD))
    write = pol(stmt(Action=["logs:CreateLogStream", "logs:PutLogEvents"], Resource="*"))
    iam = {"roles": {role_arn: {"arn": role_arn, "name": "logs", "exists": True, "trust_policy": trust,
                                "inline_policies": [{"name": "w", "document": write}], "attached_policies": [],
                                "permissions_boundary": None}},
           "unreferenced_bedrock_roles": [{"arn": f"arn:aws:iam::{ACCT}:role/old", "name": "old",
                                           "trust_policy": trust, "inline_policies": [{"name": "w",
                                                                                       "document": write}],
                                           "attached_policies": [],
                                           "target_log_groups": [{"name": "/gone", "exists": False}]}]}
    rdoc = {"account_id": ACCT, "region": REGION, "status": "scanned",
            "logging": {"enabled": True, "cloudwatch": {"log_group": "/bedrock/inv", "role_arn": role_arn}},
            "log_group": {"name": "/bedrock/inv", "arn": "arn:aws:logs:us-east-1:111111111111:log-group:/bedrock/inv",
                          "exists": True, "kms_key_id": None},
            "buckets": [bucket()], "kms_keys": [], **region}
    skipped = {"account_id": ACCT, "region": "eu-west-1", "status": "skipped", "reason": "not enabled"}
    return {"account_id": ACCT, "status": "scanned", "iam": iam, "regions": [rdoc, skipped]}


KEY = {"ref": "k", "arn": f"arn:aws:kms:{REGION}:{ACCT}:key/k", "exists": True, "state": "Enabled",
       "policy": pol(stmt(Principal={"Service": BEDROCK}, Action="kms:GenerateDataKey", Resource="*")),
       "used_by": [{"kind": "bucket", "name": "b"}]}
PURITY_CASES = [
    pytest.param(account_with(), id="bucket-role-unreferenced-role"),
    pytest.param(account_with(kms_keys=[KEY]), id="bucket-key"),
    pytest.param(account_with(kms_keys=[{**KEY, "exists": False, "state": None}]), id="missing-key"),
    pytest.param(account_with(buckets=[bucket(encryption=gap("s3:GetEncryptionConfiguration", "AccessDenied"))]),
                 id="unknown-encryption-placeholder"),
    pytest.param(account_with(buckets=[bucket(exists=False)]), id="deleted-bucket"),
    pytest.param({**account_with(), "iam": gap("iam:GetRole", "AccessDenied")}, id="iam-gap"),
]


@pytest.mark.parametrize("raw", PURITY_CASES)
def test_derive_is_pure_and_idempotent(raw: dict[str, Any]) -> None:
    before = copy.deepcopy(raw)
    once = derive(raw)
    assert raw == before, "derive() changed its input"
    assert once != raw and "destinations" in once["regions"][0]  # it did derive something
    assert derive(once) == once, "derive() on its own output changed it"
    assert derive(copy.deepcopy(raw)) == once  # and it depends on the input only


def test_a_derived_document_keeps_one_placeholder_per_unknown_key() -> None:
    raw = account_with(buckets=[bucket(encryption=gap("s3:GetEncryptionConfiguration", "AccessDenied"))])
    twice = derive(derive(raw))
    assert [k["unknown"] for k in twice["regions"][0]["kms_keys"]] == [True]
