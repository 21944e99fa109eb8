"""The embedded demo: a moto server on a free loopback port, a seeded organization, and a real --org scan."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from audit_bedrock.errors import UsageError

log = logging.getLogger("audit_bedrock")

DEMO_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
DEMO_SKIPPED_REGION = "me-south-1"  # an opt-in region the demo accounts have not enabled
MEMBER_ROLE = "OrganizationAccountAccessRole"
ALL_TYPES = {"textDataDeliveryEnabled": True, "imageDataDeliveryEnabled": True,
             "embeddingDataDeliveryEnabled": True, "videoDataDeliveryEnabled": True,
             "audioDataDeliveryEnabled": True}
TRUST_BEDROCK = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


@dataclass
class Clients:
    """boto3 clients for one account of the stand-in."""

    endpoint: str
    creds: dict[str, str]
    cache: dict[tuple[str, str], Any] = field(default_factory=dict)

    def __call__(self, service: str, region: str = "us-east-1") -> Any:
        import boto3
        key = (service, region)
        if key not in self.cache:
            self.cache[key] = boto3.client(service, region_name=region, endpoint_url=self.endpoint, **self.creds)
        return self.cache[key]


def put_logging(c: Clients, region: str, config: dict[str, Any]) -> None:
    c("bedrock", region).put_model_invocation_logging_configuration(loggingConfig=config)


def s3_logging(c: Clients, account: str, region: str, bucket: str, types: dict[str, bool] | None = None) -> None:
    """Logging to a bucket in the same account and region."""
    s3 = c("s3", region)
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    put_logging(c, region, {"s3Config": {"bucketName": bucket, "keyPrefix": "bedrock"}, **(types or ALL_TYPES)})


def cloudwatch_logging(c: Clients, account: str, region: str, group: str, role: str,
                       types: dict[str, bool] | None = None, large_bucket: str | None = None) -> None:
    """Logging to a CloudWatch log group through a delivery role, optionally with a large-data bucket."""
    c("logs", region).create_log_group(logGroupName=group)
    cw: dict[str, Any] = {"logGroupName": group, "roleArn": f"arn:aws:iam::{account}:role/{role}"}
    if large_bucket:
        s3 = c("s3", region)
        kwargs: dict[str, Any] = {"Bucket": large_bucket}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**kwargs)
        cw["largeDataDeliveryS3Config"] = {"bucketName": large_bucket, "keyPrefix": "large"}
    put_logging(c, region, {"cloudWatchConfig": cw, **(types or ALL_TYPES)})


def seed(endpoint: str) -> dict[str, str]:
    """Seed the demo organization; return account name -> id."""
    mgmt = Clients(endpoint, {"aws_access_key_id": "demo", "aws_secret_access_key": "demo"})
    org = mgmt("organizations")
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]

    def ou(name: str, parent: str) -> str:
        return str(org.create_organizational_unit(ParentId=parent, Name=name)["OrganizationalUnit"]["Id"])

    prod = ou("Prod", root)
    payments = ou("Payments", prod)
    dev = ou("Dev", root)
    sandbox = ou("Sandbox", root)
    ids: dict[str, str] = {"management": mgmt("sts").get_caller_identity()["Account"]}
    placement = {"security-tooling": prod, "payments-prod": payments, "data-science": dev,
                 "ml-platform": dev, "sandbox": sandbox, "legacy-closed": sandbox}
    for name, parent in placement.items():
        status = org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        ids[name] = status["AccountId"]
        org.move_account(AccountId=ids[name], SourceParentId=root, DestinationParentId=parent)
    org.close_account(AccountId=ids["legacy-closed"])

    def member(name: str) -> Clients:
        creds = mgmt("sts").assume_role(RoleArn=f"arn:aws:iam::{ids[name]}:role/{MEMBER_ROLE}",
                                        RoleSessionName="demo-seed")["Credentials"]
        # moto, like Organizations, creates OrganizationAccountAccessRole in every new account.
        return Clients(endpoint, {"aws_access_key_id": creds["AccessKeyId"],
                                  "aws_secret_access_key": creds["SecretAccessKey"],
                                  "aws_session_token": creds["SessionToken"]})

    # security-tooling: the compliant account, S3 delivery of every data type in every region.
    c = member("security-tooling")
    for region in DEMO_REGIONS:
        s3_logging(c, ids["security-tooling"], region, f"sec-bedrock-logs-{ids['security-tooling']}-{region}")

    # payments-prod: CloudWatch only with image delivery (BIL-004 high); eu-west-1 disabled (BIL-001).
    c = member("payments-prod")
    acct = ids["payments-prod"]
    c("iam").create_role(RoleName="BedrockLogsRole", AssumeRolePolicyDocument=json.dumps(TRUST_BEDROCK))
    cloudwatch_logging(c, acct, "us-east-1", "/bedrock/invocations", "BedrockLogsRole")
    cloudwatch_logging(c, acct, "us-west-2", "/bedrock/invocations", "BedrockLogsRole",
                       large_bucket=f"payments-bedrock-large-{acct}")

    # data-science: S3 logging without video and audio (BIL-003).
    c = member("data-science")
    partial = {**ALL_TYPES, "videoDataDeliveryEnabled": False, "audioDataDeliveryEnabled": False}
    for region in DEMO_REGIONS:
        s3_logging(c, ids["data-science"], region, f"ds-bedrock-logs-{ids['data-science']}-{region}", partial)

    # ml-platform: CloudWatch text-only with no large-data bucket (BIL-004 medium) in one region.
    c = member("ml-platform")
    acct = ids["ml-platform"]
    c("iam").create_role(RoleName="BedrockLogsRole", AssumeRolePolicyDocument=json.dumps(TRUST_BEDROCK))
    text_only = {**{k: False for k in ALL_TYPES}, "textDataDeliveryEnabled": True,
                 "embeddingDataDeliveryEnabled": True}
    cloudwatch_logging(c, acct, "us-east-1", "/ml/bedrock", "BedrockLogsRole", types=text_only)

    # sandbox: nothing configured anywhere (BIL-001 in every region); the management account likewise.
    member("sandbox")
    return ids


@contextlib.contextmanager
def _demo_environment(endpoint: str) -> Iterator[None]:
    """Point botocore at the stand-in with throwaway credentials, then restore the environment."""
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
            "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
    saved = {k: os.environ.get(k) for k in keys}
    for k in keys:
        os.environ.pop(k, None)
    os.environ.update({"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
                       "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on a free 127.0.0.1 port, stopped on exit."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise UsageError("--demo needs the demo extra: pip install 'audit-bedrock[demo]'") from None
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def run_demo(ns: argparse.Namespace) -> int:
    """Seed the demo organization and scan it through the --org code path."""
    from audit_bedrock.cli import execute

    if ns.from_facts:
        raise UsageError("--demo and --from-facts cannot be combined")
    with moto_server() as endpoint, _demo_environment(endpoint):
        ids = seed(endpoint)
        print(f"audit-bedrock demo: seeded {len(ids)} accounts on a local AWS stand-in at {endpoint}",
              file=sys.stderr)
        ns.org = True
        if not ns.regions:
            ns.regions = ",".join((*DEMO_REGIONS, DEMO_SKIPPED_REGION))
        return execute(ns)
