"""S3 as real AWS answers it, fed through the real collectors with botocore Stubbers (which validate every
response against the operation's output shape): ownership (BIL-020), region (BIL-021), account-level Block
Public Access (BIL-013) and the s3control endpoint on loopback.

Sources of the shapes and codes:
- botocore s3 model: ListBucketsOutput / Bucket (BucketRegion is returned for paginated calls), GetBucketLocation
  (BucketLocationConstraint: null is us-east-1, "EU" is eu-west-1), GetBucketPolicy (405 MethodNotAllowed for an
  allowed non-owner), `ExpectedBucketOwner` on every bucket read ("the request fails with the HTTP status code
  403 Forbidden (access denied)" when the owner differs).
- botocore s3control model: GetPublicAccessBlockOutput; error NoSuchPublicAccessBlockConfiguration (404).
- S3 error responses: https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html (AccessDenied 403,
  NoSuchBucket 404).
- Bedrock: "Only destinations from the same account and Region are supported."
  https://docs.aws.amazon.com/bedrock/latest/userguide/model-invocation-logging.html
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from audit_bedrock.aws.clients import keep_account_label_off_loopback
from audit_bedrock.collectors import PRIMARY
from audit_bedrock.collectors.base import AccountContext, RegionContext
from audit_bedrock.collectors.s3 import BucketCollector, read_bucket
from audit_bedrock.config import Config
from audit_bedrock.derive import derive
from audit_bedrock.engine import Evaluator, load_rules

ACCOUNT = "111111111111"
REGION = "us-east-1"
BUCKET = "bedrock-logs-111111111111"
T = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
CANONICAL = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
BEDROCK_WRITE = {"Sid": "AmazonBedrockLogsWrite", "Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"},
                 "Action": "s3:PutObject",
                 "Resource": f"arn:aws:s3:::{BUCKET}/bedrock/AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/*",
                 "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                               "ArnLike": {"aws:SourceArn": f"arn:aws:bedrock:*:{ACCOUNT}:*"}}}
PUBLIC_READ = {"Sid": "LegacyPublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
               "Resource": f"arn:aws:s3:::{BUCKET}/*"}
ALL_ON = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
BLOCK_ONLY = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
              "RestrictPublicBuckets": False}


def listed(*buckets: tuple[str, str]) -> dict[str, Any]:
    """ListBucketsOutput of a paginated call (MaxBuckets given): each Bucket carries BucketRegion."""
    return {"Buckets": [{"Name": n, "CreationDate": T, "BucketRegion": r, "BucketArn": f"arn:aws:s3:::{n}"}
                        for n, r in buckets], "Owner": {"ID": CANONICAL}, "Prefix": ""}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Policy": json.dumps({"Version": "2012-10-17", "Statement": list(statements)})}


def own_bucket_reads(pol: dict[str, Any], bucket_pab: dict[str, Any] | None = None) -> list[Any]:
    """The six reads of a bucket the account owns, after its location is known (ListBuckets gave it)."""
    pab: Any = ("error", "NoSuchPublicAccessBlockConfiguration", 404, "The public access block configuration "
                "was not found") if bucket_pab is None else {"PublicAccessBlockConfiguration": bucket_pab}
    return [
        ("get_bucket_policy", pol),
        ("get_public_access_block", pab),
        ("get_bucket_ownership_controls",
         {"OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}}),
        ("get_bucket_encryption", {"ServerSideEncryptionConfiguration": {"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID":
             f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"}, "BucketKeyEnabled": True}]}}),
        ("get_bucket_lifecycle_configuration", {"Rules": [
            {"ID": "all", "Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 365}}]}),
    ]


DENIED = ("error", "AccessDenied", 403, "Access Denied")
NO_BUCKET = ("error", "NoSuchBucket", 404, "The specified bucket does not exist")
NOT_OWNER = ("error", "MethodNotAllowed", 405, "The specified method is not allowed against this resource.")
ACCOUNT_PAB_NONE = ("error", "NoSuchPublicAccessBlockConfiguration", 404,
                    "The public access block configuration was not found")


def expected_params(service: str, operation: str) -> dict[str, Any]:
    """What the collector must send: a page size (so BucketRegion is returned), the owner pinned on every
    bucket read, the account id to s3control."""
    if service == "bedrock":
        return {}
    if service == "s3control":
        return {"AccountId": ACCOUNT}
    if operation == "list_buckets":
        return {"MaxBuckets": 1000}
    return {"Bucket": BUCKET, "ExpectedBucketOwner": ACCOUNT}


@dataclass
class Stubs:
    """One stubbed client per (service, region), each with its queue of responses."""

    replies: dict[tuple[str, str], list[Any]]
    clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    stubbers: list[Stubber] = field(default_factory=list)

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self.clients:
            c = boto3.client(service, region_name=region, aws_access_key_id="a", aws_secret_access_key="b")
            st = Stubber(c)
            for op, reply in self.replies.get(key, []):
                params = expected_params(service, op)
                if isinstance(reply, tuple):
                    _, code, status, message = reply
                    st.add_client_error(op, service_error_code=code, service_message=message,
                                        http_status_code=status, expected_params=params)
                else:
                    st.add_response(op, reply, params)
            st.activate()
            self.stubbers.append(st)
            self.clients[key] = c
        return self.clients[key]

    def assert_all_used(self) -> None:
        for st in self.stubbers:
            st.assert_no_pending_responses()


def scan(s3: list[Any], s3control: list[Any] | None = None, region: str = REGION,
         home_s3: list[Any] | None = None) -> tuple[dict[str, Any], set[str]]:
    """Run the logging and bucket collectors on stubbed clients, derive, evaluate; (bucket fact, rule ids)."""
    logging_reply = {"loggingConfig": {"s3Config": {"bucketName": BUCKET, "keyPrefix": "bedrock"},
                                       "textDataDeliveryEnabled": True, "imageDataDeliveryEnabled": True,
                                       "embeddingDataDeliveryEnabled": True, "videoDataDeliveryEnabled": True,
                                       "audioDataDeliveryEnabled": True}}
    replies: dict[tuple[str, str], list[Any]] = {
        ("bedrock", region): [("get_model_invocation_logging_configuration", logging_reply)],
        ("s3control", REGION): s3control or [],
    }
    if region == REGION:
        replies[("s3", REGION)] = (home_s3 or []) + s3
    else:
        replies[("s3", REGION)] = home_s3 or []
        replies[("s3", region)] = s3
    stubs = Stubs(replies)
    actx = AccountContext(ACCOUNT, "prod", stubs.client, REGION)
    rctx = RegionContext(actx, region)
    rdoc: dict[str, Any] = {"account_id": ACCOUNT, "region": region, "status": "scanned"}
    rdoc.update(PRIMARY.collect(rctx, rdoc))
    rdoc.update(BucketCollector().collect(rctx, rdoc))
    stubs.assert_all_used()
    account = {"account_id": ACCOUNT, "account_name": "prod", "ou_path": "", "status": "scanned", "reason": "",
               "regions": [rdoc]}
    account = derive(account)
    rdoc = account["regions"][0]
    rules = {r.rule.id if r.rule.id != "SCAN-003" else f"SCAN-003:{r.discriminator}"
             for r in Evaluator(load_rules(), Config().rule_params()).evaluate_account(account)}
    return rdoc["buckets"][0], rules


LIST_OTHERS = ("list_buckets", listed(("some-other-bucket", REGION)))
LIST_OURS = ("list_buckets", listed((BUCKET, REGION)))


def test_foreign_bucket_is_bil_020_and_nothing_else() -> None:
    """Not listed, and both probes refused 403: another account's bucket; nothing else of it is read."""
    bucket, rules = scan([("get_bucket_location", DENIED), ("get_bucket_policy", DENIED)], home_s3=[LIST_OTHERS])
    assert (bucket["exists"], bucket["owned"]) == (True, False)
    assert rules == {"BIL-020"}  # no BIL-011..019, no SCAN-003 about this bucket


def test_foreign_bucket_whose_policy_lets_us_read_still_answers_405() -> None:
    """GetBucketPolicy by an allowed non-owner is 405 MethodNotAllowed: still BIL-020."""
    _, rules = scan([("get_bucket_location", DENIED), ("get_bucket_policy", NOT_OWNER)], home_s3=[LIST_OTHERS])
    assert rules == {"BIL-020"}


@pytest.mark.parametrize("probes", [
    pytest.param([("get_bucket_location", NO_BUCKET)], id="nobody-owns-the-name"),
    pytest.param([("get_bucket_location", DENIED), ("get_bucket_policy", NO_BUCKET)],
                 id="our-policy-denies-GetBucketLocation-but-the-name-is-free"),
])
def test_free_name_is_bil_011(probes: list[Any]) -> None:
    bucket, rules = scan(probes, home_s3=[LIST_OTHERS])
    assert (bucket["exists"], bucket["owned"]) == (False, None)
    assert rules == {"BIL-011"}


def test_other_region_bucket_is_bil_021_without_a_location_read() -> None:
    """ListBuckets' BucketRegion names the region (no GetBucketLocation); botocore's redirects would make every
    read succeed, so only the data shows it."""
    bucket, rules = scan(own_bucket_reads(policy(BEDROCK_WRITE), ALL_ON), [("get_public_access_block", {
        "PublicAccessBlockConfiguration": ALL_ON})], home_s3=[("list_buckets", listed((BUCKET, "eu-west-1")))])
    assert (bucket["owned"], bucket["region"], bucket["region_matches"]) == (True, "eu-west-1", False)
    assert rules == {"BIL-021"}


@pytest.mark.parametrize(("constraint", "region"), [
    pytest.param({}, "us-east-1", id="null-is-us-east-1"),  # stubbed as {}: the parser gives None
    pytest.param({"LocationConstraint": ""}, "us-east-1", id="empty-is-us-east-1"),
    pytest.param({"LocationConstraint": "EU"}, "eu-west-1", id="EU-is-eu-west-1"),
    pytest.param({"LocationConstraint": "eu-central-1"}, "eu-central-1", id="named-region"),
])
def test_location_constraint_when_list_buckets_has_no_region(constraint: dict[str, Any], region: str) -> None:
    no_region = listed((BUCKET, REGION))
    del no_region["Buckets"][0]["BucketRegion"]  # a stand-in (moto) or an unpaginated call omits it
    bucket, rules = scan([("get_bucket_location", constraint), *own_bucket_reads(policy(BEDROCK_WRITE), ALL_ON)],
                         [("get_public_access_block", ACCOUNT_PAB_NONE)], home_s3=[("list_buckets", no_region)])
    assert bucket["region"] == region
    assert ("BIL-021" in rules) is (region != REGION)


def test_list_buckets_denied_reads_pin_the_owner() -> None:
    """Without ListBuckets, ExpectedBucketOwner makes any successful read prove the account owns the bucket."""
    bucket, rules = scan([("get_bucket_location", {}), *own_bucket_reads(policy(BEDROCK_WRITE), ALL_ON)],
                         [("get_public_access_block", ACCOUNT_PAB_NONE)], home_s3=[("list_buckets", DENIED)])
    assert bucket["owned"] is True and rules == set()


def test_list_buckets_denied_and_every_read_refused_is_a_gap_not_bil_020() -> None:
    reads = [("get_bucket_location", DENIED), ("get_bucket_policy", DENIED), ("get_public_access_block", DENIED),
             ("get_bucket_ownership_controls", DENIED), ("get_bucket_acl", DENIED), ("get_bucket_encryption", DENIED),
             ("get_bucket_lifecycle_configuration", DENIED)]
    bucket, rules = scan(reads, [("get_public_access_block", ACCOUNT_PAB_NONE)], home_s3=[("list_buckets", DENIED)])
    assert bucket["owned"]["action"] == "s3:ListAllMyBuckets"
    assert "BIL-020" not in rules and "SCAN-003:BIL-020" in rules


# BIL-013 with the account's Block Public Access (s3control GetPublicAccessBlock), per S3's semantics: the most
# restrictive of bucket and account applies, and an existing public policy is neutralised only by
# RestrictPublicBuckets ("Enabling this setting doesn't affect existing bucket policies" for BlockPublicPolicy).
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html
@pytest.mark.parametrize(("bucket_pab", "account_reply", "public"), [
    pytest.param(None, ACCOUNT_PAB_NONE, True, id="none-anywhere-public"),
    pytest.param(None, {"PublicAccessBlockConfiguration": ALL_ON}, False, id="account-restricts-public-buckets"),
    pytest.param(None, {"PublicAccessBlockConfiguration": BLOCK_ONLY}, True,
                 id="account-block-public-policy-alone-leaves-the-existing-policy"),
    pytest.param(BLOCK_ONLY, {"PublicAccessBlockConfiguration": {**BLOCK_ONLY, "RestrictPublicBuckets": True}},
                 False, id="bucket-blocks-account-restricts-either-wins"),
    pytest.param(ALL_ON, DENIED, False, id="bucket-restricts-account-unreadable-irrelevant"),
    pytest.param(BLOCK_ONLY, DENIED, "gap", id="account-unreadable-and-decisive-is-a-gap"),
])
def test_account_block_public_access_combines_with_the_bucket(bucket_pab: dict[str, Any] | None,
                                                                account_reply: Any, public: Any) -> None:
    bucket, rules = scan(own_bucket_reads(policy(BEDROCK_WRITE, PUBLIC_READ), bucket_pab),
                         [("get_public_access_block", account_reply)], home_s3=[LIST_OURS])
    if public == "gap":
        assert bucket["public"]["action"] == "s3:GetAccountPublicAccessBlock"
        assert "SCAN-003:BIL-013" in rules and "BIL-013" not in rules
    else:
        assert bucket["public"] is public
        assert ("BIL-013" in rules) is public


def test_account_block_public_access_is_read_once_per_account() -> None:
    """Two regions naming the same bucket and another bucket: one ListBuckets and one s3control call."""
    stubs = Stubs({("s3", REGION): [("list_buckets", listed((BUCKET, REGION), ("second", REGION))),
                                    *own_bucket_reads(policy(BEDROCK_WRITE), ALL_ON)],
                   ("s3control", REGION): [("get_public_access_block", ACCOUNT_PAB_NONE)]})
    actx = AccountContext(ACCOUNT, "prod", stubs.client, REGION)
    first = read_bucket(actx, REGION, BUCKET)
    again = read_bucket(actx, "eu-west-1", BUCKET)  # cached: no new call (the eu-west-1 client has no stubs)
    assert first == again and first["account_public_access_block"] is None
    stubs.assert_all_used()


# s3control's endpoint rules put the account id in front of the host, a loopback override included.
# botocore s3control model: GetPublicAccessBlock "endpoint": {"hostPrefix": "{AccountId}."}; ruleset url
# "{url#scheme}://{AccountId}.{url#authority}{url#path}".
@pytest.mark.parametrize(("endpoint", "expected"), [
    pytest.param("http://127.0.0.1:5000", "http://127.0.0.1:5000/v20180820/configuration/publicAccessBlock",
                 id="loopback-override-stripped"),
    pytest.param("http://localhost:5000", "http://localhost:5000/v20180820/configuration/publicAccessBlock",
                 id="localhost-override-stripped"),
    pytest.param(None, f"https://{ACCOUNT}.s3-control.eu-west-1.amazonaws.com/v20180820/configuration/"
                 "publicAccessBlock", id="aws-endpoint-unchanged"),
    pytest.param("https://vpce-1.s3-control.eu-west-1.vpce.amazonaws.com",
                 f"https://{ACCOUNT}.vpce-1.s3-control.eu-west-1.vpce.amazonaws.com/v20180820/configuration/"
                 "publicAccessBlock", id="non-loopback-override-unchanged"),
])
def test_s3control_url(endpoint: str | None, expected: str) -> None:
    c = boto3.client("s3control", region_name="eu-west-1", endpoint_url=endpoint, aws_access_key_id="a",
                     aws_secret_access_key="b")
    keep_account_label_off_loopback(c)
    sent: list[tuple[str, str]] = []

    class Sent(Exception):
        pass

    def capture(request: Any, **_: Any) -> None:
        sent.append((request.url, request.headers.get("Authorization", b"").decode()))
        raise Sent

    c.meta.events.register("before-send.s3-control", capture)
    with pytest.raises(Sent):
        c.get_public_access_block(AccountId=ACCOUNT)
    assert sent[0][0] == expected
    assert "SignedHeaders=" in sent[0][1]  # signed after the host was put back


def test_sessions_clients_reach_s3control_on_a_loopback_stand_in(moto_server: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The scanner's own clients (AWS_ENDPOINT_URL, as the demo sets it) reach moto's s3control backend."""
    from audit_bedrock.aws.clients import Sessions

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    sessions = Sessions()
    c = sessions.client("s3control", "us-east-1", sessions.caller_credentials(), "caller")
    account = sessions.client("sts", "us-east-1", sessions.caller_credentials(), "caller").get_caller_identity()[
        "Account"]
    with pytest.raises(c.exceptions.NoSuchPublicAccessBlockConfiguration):  # not EndpointConnectionError
        c.get_public_access_block(AccountId=account)


def test_moto_refusing_cross_account_reads_gives_bil_020_in_two_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto with MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS=false answers another account's bucket 403 AccessDenied, as S3
    does (moto/settings.py s3_allow_crossdomain_access); the collector probes twice and reads nothing else."""
    from moto import mock_aws

    monkeypatch.setenv("MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS", "false")
    with mock_aws():
        kw = {"region_name": REGION, "aws_access_key_id": "a", "aws_secret_access_key": "b"}
        creds = boto3.client("sts", **kw).assume_role(RoleArn="arn:aws:iam::999999999999:role/squatter",
                                                      RoleSessionName="test")["Credentials"]
        boto3.client("s3", region_name=REGION, aws_access_key_id=creds["AccessKeyId"],
                     aws_secret_access_key=creds["SecretAccessKey"],
                     aws_session_token=creds["SessionToken"]).create_bucket(Bucket=BUCKET)
        boto3.client("s3", **kw).create_bucket(Bucket="our-own")
        me = boto3.client("sts", **kw).get_caller_identity()["Account"]
        calls: list[str] = []

        def make(service: str, region: str) -> Any:
            c = boto3.client(service, **{**kw, "region_name": region})
            c.meta.events.register("before-call", lambda model, **_: calls.append(model.name))
            return c

        fact = read_bucket(AccountContext(me, "prod", make, REGION), REGION, BUCKET)
    assert (fact["exists"], fact["owned"]) == (True, False)
    assert calls == ["ListBuckets", "GetBucketLocation", "GetBucketPolicy"]
