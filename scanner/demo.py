"""The embedded demo: a moto server on a free loopback port, a seeded organization, and a real --org scan."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
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
# moto lets any account read another's bucket unless told to refuse, as S3 does (403 AccessDenied).
MOTO_CROSS_ACCOUNT = "MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS"


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


ALL_TYPES = {"textDataDeliveryEnabled": True, "imageDataDeliveryEnabled": True,
             "embeddingDataDeliveryEnabled": True, "videoDataDeliveryEnabled": True,
             "audioDataDeliveryEnabled": True}
BEDROCK = "bedrock.amazonaws.com"


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def source_conditions(account: str, region: str = "*") -> dict[str, Any]:
    """The documented confused-deputy conditions for Bedrock's service principal."""
    return {"StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {"aws:SourceArn": f"arn:aws:bedrock:{region}:{account}:*"}}


def trust(account: str | None, service: str = BEDROCK) -> str:
    """A trust policy for `service`; with the confused-deputy conditions when `account` is given."""
    stmt: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if account:
        stmt["Condition"] = source_conditions(account)
    return policy(stmt)


def log_write_policy(account: str, region: str, group: str) -> str:
    """The documented delivery-role permissions on one log group's Bedrock stream."""
    return policy({"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                   "Resource": f"arn:aws:logs:{region}:{account}:log-group:{group}:log-stream:"
                               "aws/bedrock/modelinvocations"})


def put_logging(c: Clients, region: str, config: dict[str, Any]) -> None:
    c("bedrock", region).put_model_invocation_logging_configuration(loggingConfig=config)


def kms_key(c: Clients, account: str, region: str, *, bedrock: bool = True, deny_describe: bool = False,
            state: str = "Enabled", source_region: str | None = None) -> str:
    """A customer-managed key: its policy may grant Bedrock GenerateDataKey (from `source_region`'s Bedrock,
    default `region`), or deny DescribeKey to all but a key-admin role (so the audit role cannot read its
    state); `state` Disabled or PendingDeletion."""
    statements: list[dict[str, Any]] = [{"Sid": "AccountAdmin", "Effect": "Allow",
                                         "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                                         "Action": "kms:*", "Resource": "*"}]
    if bedrock:
        statements.append({"Sid": "BedrockLogDelivery", "Effect": "Allow", "Principal": {"Service": BEDROCK},
                           "Action": "kms:GenerateDataKey", "Resource": "*",
                           "Condition": source_conditions(account, source_region or region)})
    if deny_describe:
        statements.append({"Sid": "OnlyKeyAdminsDescribe", "Effect": "Deny", "Principal": "*",
                           "Action": "kms:DescribeKey", "Resource": "*",
                           "Condition": {"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{account}:role/KeyAdmin"}}})
    kms = c("kms", region)
    key = kms.create_key(Policy=policy(*statements), Description="bedrock logs")["KeyMetadata"]
    if state == "Disabled":
        kms.disable_key(KeyId=key["KeyId"])
    elif state == "PendingDeletion":
        kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=30)
    return str(key["Arn"])


def log_bucket(c: Clients, account: str, region: str, name: str, prefix: str, *, bedrock: bool = True,
               public_read: bool = False, enforced: bool = True, kms: str | None = None,
               lifecycle: bool = True, block_public: bool = True, source_region: str | None = None) -> None:
    """A log bucket; by default configured exactly as the Bedrock and S3 guides recommend (Bedrock of
    `source_region`, default `region`, may write)."""
    s3 = c("s3", region)
    kwargs: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    statements: list[dict[str, Any]] = [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]
    if bedrock:
        statements.append({"Sid": "AmazonBedrockLogsWrite", "Effect": "Allow", "Principal": {"Service": BEDROCK},
                           "Action": "s3:PutObject",
                           "Resource": f"arn:aws:s3:::{name}/{prefix}/AWSLogs/{account}/BedrockModelInvocationLogs/*",
                           "Condition": source_conditions(account, source_region or region)})
    if public_read:
        statements.append({"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                           "Resource": f"arn:aws:s3:::{name}/*"})
    if bedrock or public_read:
        s3.put_bucket_policy(Bucket=name, Policy=policy(*statements))
    if enforced:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={
            "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    if kms:
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms},
            "BucketKeyEnabled": True}]})
    if lifecycle:
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [{
            "ID": "expire-invocation-logs", "Status": "Enabled", "Filter": {"Prefix": f"{prefix}/"},
            "Transitions": [{"Days": 30, "StorageClass": "GLACIER_IR"}], "Expiration": {"Days": 400}}]})
    if block_public:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True})


def log_group(c: Clients, region: str, name: str, *, retention: int | None = None, kms: str | None = None) -> None:
    logs = c("logs", region)
    kwargs: dict[str, Any] = {"logGroupName": name}
    if kms:
        kwargs["kmsKeyId"] = kms
    logs.create_log_group(**kwargs)
    if retention:
        logs.put_retention_policy(logGroupName=name, retentionInDays=retention)


def delivery_role(c: Clients, name: str, trust_policy: str, *, inline: str | None = None,
                  managed: str | None = None) -> str:
    """A role with an inline and/or a customer-managed policy attached; returns its ARN."""
    iam = c("iam")
    arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust_policy)["Role"]["Arn"])
    if inline:
        iam.put_role_policy(RoleName=name, PolicyName="bedrock-log-delivery", PolicyDocument=inline)
    if managed:
        pol = iam.create_policy(PolicyName=f"{name}-logs", PolicyDocument=managed)["Policy"]["Arn"]
        iam.attach_role_policy(RoleName=name, PolicyArn=pol)
    return arn


def cloudwatch_config(group: str, role_arn: str, large: tuple[str, str] | None = None) -> dict[str, Any]:
    cw: dict[str, Any] = {"logGroupName": group, "roleArn": role_arn}
    if large:
        cw["largeDataDeliveryS3Config"] = {"bucketName": large[0], "keyPrefix": large[1]}
    return cw


def put_invocations(c: Clients, region: str, counts: dict[str, float]) -> None:
    """AWS/Bedrock Invocations datapoints, one series per model, as Bedrock publishes them."""
    when = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    c("cloudwatch", region).put_metric_data(Namespace="AWS/Bedrock", MetricData=[
        {"MetricName": "Invocations", "Dimensions": [{"Name": "ModelId", "Value": model}], "Value": value,
         "Timestamp": when, "Unit": "Count"} for model, value in counts.items()])


def seed(endpoint: str) -> dict[str, str]:
    """Seed the demo organization; return account name -> id.

    Every catalog rule except SCAN-001/SCAN-002 fires somewhere (BIL-017 with the demo config's
    approved_destinations); security-tooling is configured as the guides recommend and gives no finding.
    """
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

    # management: nothing configured anywhere, no use seen (BIL-001 in every region).

    # security-tooling: the compliant account. S3 delivery of every data type in every region to a bucket
    # with the documented policy, BucketOwnerEnforced, SSE-KMS with a key Bedrock may use, lifecycle and
    # public access block; us-east-1 also delivers to CloudWatch through a guarded, least-privilege role.
    c, acct = member("security-tooling"), ids["security-tooling"]
    role = delivery_role(c, "BedrockInvocationLogging", trust(acct),
                         managed=log_write_policy(acct, "us-east-1", "/bedrock/invocations"))
    for region in DEMO_REGIONS:
        bucket = f"sec-bedrock-logs-{acct}-{region}"
        log_bucket(c, acct, region, bucket, "bedrock", kms=kms_key(c, acct, region))
        config: dict[str, Any] = {"s3Config": {"bucketName": bucket, "keyPrefix": "bedrock"}, **ALL_TYPES}
        if region == "us-east-1":
            log_group(c, region, "/bedrock/invocations", retention=400, kms=kms_key(c, acct, region, bedrock=False))
            config["cloudWatchConfig"] = cloudwatch_config("/bedrock/invocations", role)
        put_logging(c, region, config)

    # payments-prod: CloudWatch delivery through a role whose trust has no confused-deputy conditions
    # (BIL-008) and whose policy names an old log group (BIL-009).
    c, acct = member("payments-prod"), ids["payments-prod"]
    role = delivery_role(c, "BedrockLogsRole", trust(None),
                         inline=log_write_policy(acct, "us-east-1", "/bedrock/invocations-old"))
    # us-east-1: CloudWatch only with image delivery (BIL-004 high), a log group that never expires
    # (BIL-014 low) and has no KMS key (BIL-016).
    log_group(c, "us-east-1", "/bedrock/invocations")
    put_logging(c, "us-east-1", {"cloudWatchConfig": cloudwatch_config("/bedrock/invocations", role), **ALL_TYPES})
    # us-west-2: the configured log group does not exist; only '/bedrock/invocations-archive' does, which a
    # prefix match would wrongly accept (BIL-005). Its large-data bucket has no policy (BIL-012), ACLs
    # enabled (BIL-018), no lifecycle (BIL-015) and no SSE-KMS (BIL-016).
    log_group(c, "us-west-2", "/bedrock/invocations-archive", retention=400)
    large = f"payments-bedrock-large-{acct}"
    log_bucket(c, acct, "us-west-2", large, "large", bedrock=False, enforced=False, lifecycle=False)
    put_logging(c, "us-west-2", {"cloudWatchConfig": cloudwatch_config("/bedrock/invocations", role,
                                                                        (large, "large")), **ALL_TYPES})
    # eu-west-1: S3 delivery to a well-configured bucket that was created in us-east-1 (BIL-021): Bedrock
    # delivers only within the region, though every read of the bucket succeeds. And a role left behind by a
    # failed console save: trusted by Bedrock, allowed to write to a log group that no longer exists, used by
    # nothing (BIL-010).
    archive = f"payments-bedrock-logs-{acct}"
    log_bucket(c, acct, "us-east-1", archive, "bedrock", source_region="eu-west-1",
               kms=kms_key(c, acct, "us-east-1", source_region="eu-west-1"))
    put_logging(c, "eu-west-1", {"s3Config": {"bucketName": archive, "keyPrefix": "bedrock"}, **ALL_TYPES})
    delivery_role(c, "BedrockLogsRole-2023", trust(acct),
                  inline=log_write_policy(acct, "us-east-1", "/bedrock/legacy"))

    # data-science: S3 logging without video and audio in every region (BIL-003).
    c, acct = member("data-science"), ids["data-science"]
    partial = {**ALL_TYPES, "videoDataDeliveryEnabled": False, "audioDataDeliveryEnabled": False}
    keys = {"us-east-1": kms_key(c, acct, "us-east-1"),
            # us-west-2: the bucket key's policy does not let Bedrock generate data keys (BIL-019).
            "us-west-2": kms_key(c, acct, "us-west-2", bedrock=False),
            # eu-west-1: only a key-admin role may describe the key, so its state cannot be read (SCAN-003).
            "eu-west-1": kms_key(c, acct, "eu-west-1", deny_describe=True)}
    for region in DEMO_REGIONS:
        bucket = f"ds-bedrock-logs-{acct}-{region}"
        # us-east-1: a "temporary" public-read statement and no public access block (BIL-013).
        public = region == "us-east-1"
        log_bucket(c, acct, region, bucket, "bedrock", kms=keys[region], public_read=public, block_public=not public)
        put_logging(c, region, {"s3Config": {"bucketName": bucket, "keyPrefix": "bedrock"}, **partial})

    # ml-platform.
    c, acct = member("ml-platform"), ids["ml-platform"]
    text_only = {**{k: False for k in ALL_TYPES}, "textDataDeliveryEnabled": True,
                 "embeddingDataDeliveryEnabled": True}
    # us-east-1: CloudWatch text-only with no large-data bucket (BIL-004 medium); the delivery role was
    # never created (BIL-006); 30-day retention (BIL-014 medium); the group's KMS key is disabled (BIL-019).
    log_group(c, "us-east-1", "/ml/bedrock", retention=30, kms=kms_key(c, acct, "us-east-1", bedrock=False,
                                                                        state="Disabled"))
    put_logging(c, "us-east-1", {"cloudWatchConfig": cloudwatch_config(
        "/ml/bedrock", f"arn:aws:iam::{acct}:role/BedrockLogsRole"), **text_only})
    # us-west-2: the delivery role trusts EC2 instead of Bedrock (BIL-007); the large-data bucket is a
    # well-configured scratch bucket outside the approved destinations (BIL-017).
    role = delivery_role(c, "MlBedrockLogging", trust(None, "ec2.amazonaws.com"),
                         inline=log_write_policy(acct, "us-west-2", "/ml/bedrock"))
    log_group(c, "us-west-2", "/ml/bedrock", retention=400, kms=kms_key(c, acct, "us-west-2", bedrock=False))
    scratch = f"ml-scratch-{acct}"
    log_bucket(c, acct, "us-west-2", scratch, "large", kms=kms_key(c, acct, "us-west-2"))
    put_logging(c, "us-west-2", {"cloudWatchConfig": cloudwatch_config("/ml/bedrock", role, (scratch, "large")),
                                 **text_only})
    # eu-west-1: S3 logging to a bucket that was deleted (BIL-011).
    put_logging(c, "eu-west-1", {"s3Config": {"bucketName": f"ml-bedrock-logs-{acct}-eu-west-1",
                                              "keyPrefix": "bedrock"}, **ALL_TYPES})

    # sandbox: logging never configured in us-east-1, where Bedrock is in use (BIL-002), nor in eu-west-1
    # (BIL-001). us-west-2 delivers to a bucket name the sandbox deleted long ago and a stranger outside the
    # organization has since registered (BIL-020: it exists, S3 refuses every read, ListBuckets omits it).
    c, acct = member("sandbox"), ids["sandbox"]
    put_invocations(c, "us-east-1", {"anthropic.claude-3-haiku-20240307-v1:0": 37, "amazon.titan-embed-text-v2:0": 5})
    taken = f"sandbox-bedrock-logs-{acct}"
    log_bucket(stranger(mgmt), STRANGER_ACCOUNT, "us-west-2", taken, "bedrock")
    put_logging(c, "us-west-2", {"s3Config": {"bucketName": taken, "keyPrefix": "bedrock"}, **ALL_TYPES})
    return ids


STRANGER_ACCOUNT = "999999999999"  # outside the demo organization


def stranger(mgmt: Clients) -> Clients:
    """Clients of an account outside the organization (moto lets STS enter any account id)."""
    creds = mgmt("sts").assume_role(RoleArn=f"arn:aws:iam::{STRANGER_ACCOUNT}:role/squatter",
                                    RoleSessionName="demo-seed")["Credentials"]
    return Clients(mgmt.endpoint, {"aws_access_key_id": creds["AccessKeyId"],
                                   "aws_secret_access_key": creds["SecretAccessKey"],
                                   "aws_session_token": creds["SessionToken"]})


@contextlib.contextmanager
def _demo_environment(endpoint: str) -> Iterator[None]:
    """Point botocore at the stand-in with throwaway credentials, then restore the environment."""
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
            "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
            MOTO_CROSS_ACCOUNT)
    saved = {k: os.environ.get(k) for k in keys}
    for k in keys:
        os.environ.pop(k, None)
    os.environ.update({"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
                       "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                       MOTO_CROSS_ACCOUNT: "false"})
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


def demo_config_path() -> str:
    """The packaged config the demo scans with (approved_destinations, so BIL-017 shows)."""
    from importlib import resources
    return str(resources.files("audit_bedrock") / "demo-config.yaml")


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
        if not ns.config:
            ns.config = demo_config_path()
        if not ns.regions:
            ns.regions = ",".join((*DEMO_REGIONS, DEMO_SKIPPED_REGION))
        return execute(ns)
