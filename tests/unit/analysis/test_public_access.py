"""BIL-013's "public" as S3 defines it, the Block Public Access in effect, and BIL-015's lifecycle rules.

Sources:
- S3 user guide, "Blocking public access to your Amazon S3 storage" -> "The meaning of 'public'" and "How
  Amazon S3 evaluates ..." (https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html):
  a policy is public unless every grant is pinned to fixed values (no wildcard, no policy variable) of the listed
  keys; the most restrictive of bucket and account settings applies; BlockPublicPolicy "doesn't affect existing
  bucket policies", RestrictPublicBuckets limits a public policy's bucket to AWS services and the owner account.
- botocore s3 model: LifecycleRule, LifecycleRuleFilter, LifecycleRuleAndOperator, LifecycleExpiration
  (GetBucketLifecycleConfigurationOutput); every lifecycle case below is fed through a Stubber, which validates it.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from audit_bedrock.analyzer import PublicGrant, public_grants
from audit_bedrock.derive import derive_bucket, effective_public_access_block
from audit_bedrock.facts import gap, is_gap

ACCT = "111111111111"
BUCKET = "logs"
OBJECTS = f"arn:aws:s3:::{BUCKET}/*"


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def grant(action: Any = "s3:GetObject", principal: Any = "*", condition: dict[str, Any] | None = None,
          sid: str = "S") -> dict[str, Any]:
    stmt: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Principal": principal, "Action": action,
                            "Resource": OBJECTS}
    if condition:
        stmt["Condition"] = condition
    return stmt


def pinned(key: str, value: Any, op: str = "StringEquals") -> dict[str, Any]:
    return grant(condition={op: {key: value}})


READ = [PublicGrant("S", writes=False, reads=True)]
WRITE = [PublicGrant("S", writes=True, reads=False)]
BOTH = [PublicGrant("S", writes=True, reads=True)]
NONE: list[PublicGrant] = []

# (policy, the public grants S3's definition finds)
PUBLIC_CASES = [
    # The guide's own examples.
    pytest.param(doc(grant("s3:PutObject", {"Federated": "graph.facebook.com"})), WRITE,
                 id="doc-federated-principal-put-is-public"),
    pytest.param(doc(grant("s3:PutObject")), WRITE, id="doc-star-put-is-public"),
    pytest.param(doc(grant("s3:PutObject", condition={"StringLike": {"aws:SourceVpc": "vpc-*"}})), WRITE,
                 id="doc-wildcard-vpc-is-public"),
    pytest.param(doc(grant("s3:PutObject", condition={"StringEquals": {"aws:SourceVpc": "vpc-91237329"}})), NONE,
                 id="doc-fixed-vpc-is-not-public"),
    # Any action counts: reads, writes, deletes, everything.
    pytest.param(doc(grant("s3:*")), BOTH, id="s3-star"),
    pytest.param(doc(grant("*")), BOTH, id="star"),
    pytest.param(doc(grant("s3:DeleteObject")), WRITE, id="delete"),
    pytest.param(doc(grant("s3:Put*")), WRITE, id="put-star"),
    pytest.param(doc(grant(["s3:GetObject", "s3:AbortMultipartUpload"])), BOTH, id="read-and-abort"),
    pytest.param(doc(grant("s3:PutBucketPolicy")), WRITE, id="anyone-may-replace-the-policy"),
    pytest.param(doc({**{k: v for k, v in grant().items() if k != "Action"}, "NotAction": "s3:Get*"}),
                 [PublicGrant("S", writes=True, reads=True)], id="notaction-get-still-grants-writes-and-lists"),
    pytest.param(doc({**{k: v for k, v in grant().items() if k != "Action"}, "NotAction": "s3:*"}), NONE,
                 id="notaction-everything-grants-nothing"),
    # Principals.
    pytest.param(doc(grant(principal={"AWS": "*"})), READ, id="aws-star"),
    pytest.param(doc(grant(principal={"AWS": "arn:aws:iam::*:root"})), READ, id="wildcard-account-principal"),
    pytest.param(doc(grant(principal={"AWS": f"arn:aws:iam::{ACCT}:root"})), NONE, id="fixed-account"),
    pytest.param(doc(grant(principal={"Service": "bedrock.amazonaws.com"})), NONE, id="service-principal"),
    pytest.param(doc({**{k: v for k, v in grant().items() if k != "Principal"},
                      "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCT}:root"}}), READ, id="notprincipal"),
    pytest.param(doc({**grant(), "Effect": "Deny"}), NONE, id="deny-grants-nothing"),
    # Each listed key, fixed (pins) and with a wildcard or a policy variable (does not).
    *[pytest.param(doc(pinned(key, fixed, op)), NONE, id=f"fixed-{key}")
      for key, fixed, op in (
          ("aws:PrincipalOrgID", "o-abc123", "StringEquals"),
          ("aws:PrincipalAccount", ACCT, "StringEquals"),
          ("aws:PrincipalArn", f"arn:aws:iam::{ACCT}:role/Reader", "ArnEquals"),
          ("aws:PrincipalOrgPaths", "o-abc123/r-ab12/ou-ab12-11111111/", "StringEquals"),
          ("aws:PrincipalServiceName", "cloudtrail.amazonaws.com", "StringEquals"),
          ("aws:SourceArn", f"arn:aws:cloudfront::{ACCT}:distribution/E1", "ArnEquals"),
          ("aws:SourceVpce", "vpce-1a2b3c4d", "StringEquals"),
          ("aws:SourceOwner", ACCT, "StringEquals"),
          ("aws:SourceAccount", ACCT, "StringEquals"),
          ("aws:userid", "AROAEXAMPLEID:*", "StringLike"),
          ("s3:x-amz-server-side-encryption-aws-kms-key-id",
           f"arn:aws:kms:us-east-1:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab", "StringEquals"),
          ("s3:DataAccessPointArn", f"arn:aws:s3:us-west-2:{ACCT}:accesspoint/*", "StringLike"),
          ("s3:DataAccessPointAccount", ACCT, "StringEquals"))],
    *[pytest.param(doc(pinned(key, loose, op)), READ, id=f"not-fixed-{key}-{loose}")
      for key, loose, op in (
          ("aws:PrincipalOrgID", "o-*", "StringLike"),
          ("aws:PrincipalOrgID", "*", "StringEquals"),  # a wildcard value is not fixed, whatever the operator
          ("aws:PrincipalArn", "arn:aws:iam::*:role/Reader", "ArnLike"),
          ("aws:PrincipalOrgPaths", "o-abc123/*", "StringLike"),  # the guide is silent: conservative
          ("aws:PrincipalServiceName", "*.amazonaws.com", "StringLike"),
          ("aws:SourceVpce", "vpce-?a2b3c4d", "StringLike"),
          ("aws:PrincipalAccount", "${aws:PrincipalTag/account}", "StringEquals"),
          ("aws:userid", "AROA*", "StringLike"),
          ("s3:DataAccessPointArn", "arn:aws:s3:us-west-2:*:accesspoint/*", "StringLike"))],
    pytest.param(doc(pinned("aws:SourceOrgID", "o-abc123")), READ, id="unlisted-key-does-not-pin"),
    pytest.param(doc(pinned("aws:PrincipalOrgID", "o-abc123", "StringNotEquals")), READ, id="negated-does-not-pin"),
    pytest.param(doc(pinned("aws:PrincipalOrgID", "o-abc123", "StringEqualsIfExists")), READ,
                 id="if-exists-does-not-pin"),
    pytest.param(doc(pinned("aws:SourceIp", "203.0.113.0/24", "IpAddress")), NONE, id="ipv4-narrow"),
    pytest.param(doc(pinned("aws:SourceIp", "12.0.0.0/8", "IpAddress")), NONE, id="ipv4-slash-8"),
    pytest.param(doc(pinned("aws:SourceIp", "12.0.0.0/7", "IpAddress")), READ, id="ipv4-broader-than-8"),
    pytest.param(doc(pinned("aws:SourceIp", "2001:db8::/32", "IpAddress")), NONE, id="ipv6-slash-32"),
    pytest.param(doc(pinned("aws:SourceIp", "2001:db8::/31", "IpAddress")), READ, id="ipv6-broader-than-32"),
    pytest.param(doc(pinned("aws:SourceIp", "0.0.0.0/0", "IpAddress")), READ, id="everywhere"),
    pytest.param(doc(pinned("aws:SourceIp", "203.0.113.0/24", "NotIpAddress")), READ, id="not-ip-does-not-pin"),
    pytest.param(doc(pinned("aws:SecureTransport", "true", "Bool")), READ, id="transport-does-not-pin"),
    pytest.param(None, NONE, id="no-policy"),
]


@pytest.mark.parametrize(("policy", "expected"), PUBLIC_CASES)
def test_public_grants_follow_s3s_definition(policy: Any, expected: list[PublicGrant]) -> None:
    assert public_grants(policy) == expected


ON = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
OFF = dict.fromkeys(ON, False)
DENIED = gap("s3:GetAccountPublicAccessBlock", "AccessDenied", "denied")


@pytest.mark.parametrize(("bucket_pab", "account_pab", "expected"), [
    pytest.param(None, None, OFF, id="none-set"),
    pytest.param(ON, None, ON, id="bucket-only"),
    pytest.param(None, ON, ON, id="account-only"),
    pytest.param({**OFF, "RestrictPublicBuckets": True}, {**OFF, "BlockPublicAcls": True},
                 {**OFF, "RestrictPublicBuckets": True, "BlockPublicAcls": True}, id="per-flag-or"),
    pytest.param(ON, DENIED, ON, id="bucket-on-wins-over-an-unreadable-account"),
    pytest.param(OFF, DENIED, dict.fromkeys(ON, "gap"), id="off-and-unreadable-is-a-gap"),
])
def test_effective_public_access_block(bucket_pab: Any, account_pab: Any, expected: dict[str, Any]) -> None:
    got = effective_public_access_block(bucket_pab, account_pab)
    assert {k: "gap" if is_gap(v) else v for k, v in got.items()} == expected


def bucket(policy: Any = None, acl: Any = None, pab: Any = None, account_pab: Any = None,
           ownership: str = "BucketOwnerEnforced", lifecycle: Any = None) -> dict[str, Any]:
    return {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}", "exists": True, "owned": True, "region": "us-east-1",
            "uses": [{"destination": "s3", "prefix": "bedrock"}], "policy": policy, "public_access_block": pab,
            "account_public_access_block": account_pab, "object_ownership": ownership, "acl": acl,
            "encryption": None, "lifecycle_rules": lifecycle or []}


def derived(b: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(b)
    derive_bucket(b, ACCT, "us-east-1")
    return b


ALL_USERS = [{"type": "Group", "uri": "http://acs.amazonaws.com/groups/global/AllUsers", "permission": "READ"}]


@pytest.mark.parametrize(("b", "public", "public_write"), [
    pytest.param(bucket(doc(grant())), True, False, id="public-read"),
    pytest.param(bucket(doc(grant("s3:PutObject"))), True, True, id="public-write"),
    pytest.param(bucket(doc(grant("s3:PutObject")), pab={**OFF, "BlockPublicPolicy": True}), True, True,
                 id="block-public-policy-leaves-an-existing-policy"),
    pytest.param(bucket(doc(grant("s3:PutObject")), account_pab={**OFF, "RestrictPublicBuckets": True}), False,
                 False, id="account-restrict-public-buckets-neutralises-it"),
    pytest.param(bucket(acl=ALL_USERS, ownership="ObjectWriter"), True, False, id="public-acl"),
    pytest.param(bucket(acl=ALL_USERS, ownership="ObjectWriter", account_pab={**OFF, "IgnorePublicAcls": True}),
                 False, False, id="account-ignores-public-acls"),
    pytest.param(bucket(doc(grant()), account_pab=DENIED), "gap", "gap", id="account-unreadable-is-a-gap"),
])
def test_bucket_public(b: dict[str, Any], public: Any, public_write: Any) -> None:
    out = derived(b)
    assert ("gap" if is_gap(out["public"]) else out["public"]) == public
    if public_write != "gap":
        assert out["public_write"] is public_write


def test_another_accounts_bucket_gets_no_verdict() -> None:
    """BIL-020 replaces every other verdict: a stranger's bucket is not judged public, encrypted, ..."""
    out = derived({**bucket(doc(grant("s3:PutObject"))), "owned": False})
    assert all(out[k] is None for k in ("public", "public_write", "bedrock_can_put", "has_expiring_lifecycle",
                                        "region_matches", "sse_kms", "acls_enabled"))


T = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def lifecycle_reply(rule: dict[str, Any]) -> list[Any]:
    """The Rules a GetBucketLifecycleConfiguration with this one rule returns, after the Stubber validated it."""
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(client) as st:
        st.add_response("get_bucket_lifecycle_configuration",
                        {"Rules": [rule], "TransitionDefaultMinimumObjectSize": "all_storage_classes_128K"})
        rules: list[Any] = client.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    return rules


# Log objects live under bedrock/AWSLogs/111111111111/BedrockModelInvocationLogs/.
@pytest.mark.parametrize(("rule", "bounds"), [
    pytest.param({"ID": "all", "Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 365}}, True,
                 id="empty-prefix-expires"),
    pytest.param({"ID": "log", "Filter": {"Prefix": "bedrock/"}, "Status": "Enabled",
                  "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}, True, id="log-prefix-transitions"),
    pytest.param({"ID": "legacy", "Prefix": "bedrock/", "Status": "Enabled", "Expiration": {"Date": T}}, True,
                 id="legacy-top-level-prefix-with-date"),
    pytest.param({"ID": "big", "Filter": {"ObjectSizeGreaterThan": 1048576}, "Status": "Enabled",
                  "Expiration": {"Days": 30}}, False, id="size-greater-than"),
    pytest.param({"ID": "small", "Filter": {"ObjectSizeLessThan": 1048576}, "Status": "Enabled",
                  "Expiration": {"Days": 30}}, False, id="size-less-than"),
    pytest.param({"ID": "and-size", "Filter": {"And": {"Prefix": "bedrock/", "ObjectSizeGreaterThan": 0}},
                  "Status": "Enabled", "Expiration": {"Days": 30}}, False, id="size-inside-and"),
    pytest.param({"ID": "tag", "Filter": {"Tag": {"Key": "tier", "Value": "cold"}}, "Status": "Enabled",
                  "Expiration": {"Days": 30}}, False, id="tag"),
    pytest.param({"ID": "and", "Filter": {"And": {"Prefix": "AWSLogs/", "Tags": [{"Key": "k", "Value": "v"}],
                                                   "ObjectSizeGreaterThan": 0, "ObjectSizeLessThan": 10485760}},
                  "Status": "Enabled", "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}, False,
                 id="and-with-tags-size-other-prefix"),
    pytest.param({"ID": "other", "Filter": {"Prefix": "bedrock/AWSLogs/222222222222/"}, "Status": "Enabled",
                  "Expiration": {"Days": 30}}, False, id="prefix-narrower-than-the-logs"),
    pytest.param({"ID": "markers", "Filter": {}, "Status": "Enabled", "Expiration": {"ExpiredObjectDeleteMarker": True},
                  "NoncurrentVersionExpiration": {"NoncurrentDays": 30, "NewerNoncurrentVersions": 3},
                  "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}, False,
                 id="only-markers-noncurrent-and-uploads"),
    pytest.param({"ID": "off", "Filter": {}, "Status": "Disabled", "Expiration": {"Days": 30}}, False, id="disabled"),
])
def test_lifecycle_rule_bounds_the_logs(rule: dict[str, Any], bounds: bool) -> None:
    assert derived(bucket(lifecycle=lifecycle_reply(rule)))["has_expiring_lifecycle"] is bounds
