"""Seed an N-account organization x 3 regions with mixed Bedrock logging setups into a moto server, in parallel.

Run standalone:  python bench/seed.py --endpoint http://127.0.0.1:5000 --accounts 200 [--workers 8]
It prints one JSON line: {"organization_id", "management", "accounts": {name: id}, "profiles": {...}, "seconds"}.
Account i gets profile PROFILES[i % len(PROFILES)], so every estate of the same size has the same mix. The
helpers mirror scanner/demo.py's but are kept here, so the benchmark does not move when the demo estate does.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import botocore.session

REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
MGMT_CREDS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
OUS = ("Prod", "Dev", "Sandbox", "Shared")
_local = threading.local()
_LOADER = botocore.session.Session().get_component("data_loader")


class FastClients:
    """Like demo.Clients, but cheap: one client per (thread, service, region) acts for `account`.

    moto honours an `x-moto-account-id` header, so the seeder needs neither AssumeRole nor a client per
    account; the scanner, which is what the benchmark measures, still assumes a role into every account.
    """

    def __init__(self, endpoint: str, account: str | None) -> None:
        self.endpoint = endpoint
        self.account = account

    def __call__(self, service: str, region: str = "us-east-1") -> Any:
        _local.account = self.account
        cache: dict[tuple[str, str], Any] | None = getattr(_local, "clients", None)
        if cache is None:
            cache = _local.clients = {}
        key = (service, region)
        if key not in cache:
            session = getattr(_local, "session", None)
            if session is None:
                session = _local.session = botocore.session.Session()
                session.register_component("data_loader", _LOADER)  # parse each service model once
            client = session.create_client(service, region_name=region, endpoint_url=self.endpoint, **MGMT_CREDS)
            client.meta.events.register("before-sign", _act_as)
            cache[key] = client
        return cache[key]


def _act_as(request: Any, **_: Any) -> None:
    account = getattr(_local, "account", None)
    if account:
        request.headers["x-moto-account-id"] = account
    elif "x-moto-account-id" in request.headers:
        del request.headers["x-moto-account-id"]


ALL_TYPES = {"textDataDeliveryEnabled": True, "imageDataDeliveryEnabled": True,
             "embeddingDataDeliveryEnabled": True, "videoDataDeliveryEnabled": True,
             "audioDataDeliveryEnabled": True}
TRUST_BEDROCK = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
Clients = Callable[..., Any]


def put_logging(c: Clients, region: str, config: dict[str, Any]) -> None:
    c("bedrock", region).put_model_invocation_logging_configuration(loggingConfig=config)


def make_bucket(c: Clients, region: str, bucket: str) -> None:
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    c("s3", region).create_bucket(**kwargs)


def s3_logging(c: Clients, account: str, region: str, bucket: str, types: dict[str, bool] | None = None) -> None:
    """Logging to a bucket in the same account and region (the bucket is created, nothing else)."""
    make_bucket(c, region, bucket)
    put_logging(c, region, {"s3Config": {"bucketName": bucket, "keyPrefix": "bedrock"}, **(types or ALL_TYPES)})


def cloudwatch_logging(c: Clients, account: str, region: str, group: str, role: str,
                       types: dict[str, bool] | None = None, large_bucket: str | None = None) -> None:
    """Logging to a CloudWatch log group through a delivery role, optionally with a large-data bucket."""
    c("logs", region).create_log_group(logGroupName=group)
    cw: dict[str, Any] = {"logGroupName": group, "roleArn": f"arn:aws:iam::{account}:role/{role}"}
    if large_bucket:
        make_bucket(c, region, large_bucket)
        cw["largeDataDeliveryS3Config"] = {"bucketName": large_bucket, "keyPrefix": "large"}
    put_logging(c, region, {"cloudWatchConfig": cw, **(types or ALL_TYPES)})


def _bucket_policy(bucket: str, account: str, region: str, prefix: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "BedrockLogs", "Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{bucket}/{prefix}/AWSLogs/{account}/BedrockModelInvocationLogs/*",
        "Condition": {"StringEquals": {"aws:SourceAccount": account},
                      "ArnLike": {"aws:SourceArn": f"arn:aws:bedrock:{region}:{account}:*"}}}]})


def _key(c: Clients, account: str, region: str) -> str:
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*",
         "Resource": "*"},
        {"Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"}, "Action": "kms:GenerateDataKey",
         "Resource": "*", "Condition": {"StringEquals": {"aws:SourceAccount": account}}}]}
    return str(c("kms", region).create_key(Policy=json.dumps(doc))["KeyMetadata"]["Arn"])


def _role(c: Clients, account: str, name: str, group: str | None) -> None:
    c("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST_BEDROCK))
    if group:
        c("iam").put_role_policy(RoleName=name, PolicyName="deliver", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"arn:aws:logs:*:{account}:log-group:{group}:log-stream:*"}]}))


def p_compliant(c: Clients, account: str) -> None:
    """S3 delivery of every data type in every region: documented policy, SSE-KMS, no ACLs, lifecycle."""
    for region in REGIONS:
        bucket = f"bench-logs-{account}-{region}"
        s3_logging(c, account, region, bucket)
        s3 = c("s3", region)
        s3.put_bucket_policy(Bucket=bucket, Policy=_bucket_policy(bucket, account, region, "bedrock"))
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
            "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                   "KMSMasterKeyID": _key(c, account, region)}}]})
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [{
            "ID": "expire", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 365}}]})


def p_cloudwatch_images(c: Clients, account: str) -> None:
    """CloudWatch with image delivery and no large-data bucket in two regions; third region disabled."""
    _role(c, account, "BedrockLogsRole", "/bedrock/invocations")
    for region in REGIONS[:2]:
        cloudwatch_logging(c, account, region, "/bedrock/invocations", "BedrockLogsRole")


def p_cloudwatch_large(c: Clients, account: str) -> None:
    """CloudWatch plus a large-data bucket in every region."""
    _role(c, account, "BedrockLogsRole", "/bedrock/invocations")
    for region in REGIONS:
        cloudwatch_logging(c, account, region, "/bedrock/invocations", "BedrockLogsRole",
                           large_bucket=f"bench-large-{account}-{region}")


def p_disabled(c: Clients, account: str) -> None:
    """Nothing configured anywhere."""


def p_partial_types(c: Clients, account: str) -> None:
    """S3 delivery without video and audio in one region, text only in another."""
    partial = {**ALL_TYPES, "videoDataDeliveryEnabled": False, "audioDataDeliveryEnabled": False}
    s3_logging(c, account, REGIONS[0], f"bench-partial-{account}", partial)
    text = {**dict.fromkeys(ALL_TYPES, False), "textDataDeliveryEnabled": True}
    s3_logging(c, account, REGIONS[1], f"bench-text-{account}", text)


def p_dangling(c: Clients, account: str) -> None:
    """Logging that goes nowhere: a missing log group and role; a missing bucket; an orphaned role."""
    put_logging(c, REGIONS[0], {"cloudWatchConfig": {
        "logGroupName": "/bedrock/gone", "roleArn": f"arn:aws:iam::{account}:role/GoneRole"}, **ALL_TYPES})
    put_logging(c, REGIONS[1], {"s3Config": {"bucketName": f"bench-missing-{account}", "keyPrefix": "x"},
                                **ALL_TYPES})
    _role(c, account, "OrphanedBedrockRole", "/bedrock/old")


def p_mixed(c: Clients, account: str) -> None:
    """One region to S3, one to CloudWatch with a role lacking permissions, one disabled."""
    s3_logging(c, account, REGIONS[0], f"bench-mixed-{account}")
    _role(c, account, "WeakRole", None)
    cloudwatch_logging(c, account, REGIONS[2], "/bedrock/mixed", "WeakRole")


PROFILES: tuple[Callable[[Clients, str], None], ...] = (
    p_compliant, p_cloudwatch_images, p_cloudwatch_large, p_disabled, p_partial_types, p_dangling, p_mixed)


def seed(endpoint: str, n: int, workers: int = 8, warm_ec2: bool = True) -> dict[str, Any]:
    """Create an organization of n accounts (the management account counts as one) and configure each."""
    t0 = time.monotonic()
    mgmt = FastClients(endpoint, None)
    org = mgmt("organizations")
    org_id = org.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    root = org.list_roots()["Roots"][0]["Id"]
    ous = [org.create_organizational_unit(ParentId=root, Name=name)["OrganizationalUnit"]["Id"] for name in OUS]
    management = mgmt("sts").get_caller_identity()["Account"]
    mgmt("ec2", "us-east-1").describe_regions(AllRegions=True)

    def one(i: int) -> tuple[str, str]:
        name = f"bench-{i:05d}"
        o = FastClients(endpoint, None)("organizations")
        acct = o.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]["AccountId"]
        o.move_account(AccountId=acct, SourceParentId=root, DestinationParentId=ous[i % len(ous)])
        c = FastClients(endpoint, acct)
        PROFILES[i % len(PROFILES)](c, acct)
        # moto builds an account's EC2 backend (default VPCs, AMIs...) on its first EC2 call, ~45 ms of its
        # CPU; real AWS has no such cost, so the seeder pays it instead of the first timed scan.
        if warm_ec2:
            c("ec2", "us-east-1").describe_regions(AllRegions=True)
        return name, acct

    accounts: dict[str, str] = {"management": management}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for name, acct in pool.map(one, range(1, n)):
            accounts[name] = acct
    mix = Counter(PROFILES[i % len(PROFILES)].__name__[2:] for i in range(1, n))
    mix["disabled"] += 1  # the management account has nothing configured
    return {"organization_id": org_id, "management": management, "accounts": accounts,
            "profiles": dict(sorted(mix.items())), "seconds": round(time.monotonic() - t0, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", required=True)
    p.add_argument("--accounts", type=int, default=200, help="accounts including the management account")
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--no-warm-ec2", action="store_true", help="leave moto's EC2 backends to the first scan")
    ns = p.parse_args(argv)
    if ns.accounts < 1:
        p.error("--accounts must be at least 1")
    print(json.dumps(seed(ns.endpoint, ns.accounts, ns.workers, warm_ec2=not ns.no_warm_ec2)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
