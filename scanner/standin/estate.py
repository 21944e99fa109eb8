"""One set of estate builders for the AWS stand-in: an organization with nested OUs, accounts, Bedrock logging setups.

Every builder takes a `Clients` (a callable `(service, region) -> botocore client` acting for one account)
and creates exactly what its docstring says. Two estates are made of them:

- `seed_demo`: the demo organization (`audit-bedrock --demo`, and most end-to-end tests); every catalog
  rule but SCAN-001/SCAN-002 fires in it, and tests/e2e/test_demo_estate.py pins the exact set;
- `seed_bench`: the benchmark's N-account organization, account i with profile BENCH_PROFILES[i % 7] in OU
  BENCH_OUS[i % 4], SCPs on two OUs, Bedrock used where BENCH_USE says: every estate of the same size has the
  same mix.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import boto3
import botocore.session

DEMO_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
DEMO_SKIPPED_REGION = "me-south-1"  # an opt-in region the demo accounts have not enabled
MEMBER_ROLE = "OrganizationAccountAccessRole"  # moto, like Organizations, creates it in every new account
DEMO_CALLER = {"aws_access_key_id": "demo", "aws_secret_access_key": "demo"}
# OU name -> parent OU name (None: the root), parents first.
DEMO_OUS: dict[str, str | None] = {"Prod": None, "Payments": "Prod", "Dev": None, "Sandbox": None}
DEMO_PLACEMENT = {"security-tooling": "Prod", "payments-prod": "Payments", "data-science": "Dev",
                  "ml-platform": "Dev", "sandbox": "Sandbox", "legacy-closed": "Sandbox"}
# moto draws account, OU and key ids from one seedable generator (its /moto-api/seed endpoint): the demo seeds it,
# so every demo run has the same ids and a previous run's findings.json is a baseline that shows no change.
DEMO_SEED = 20261201
BENCH_REGIONS = DEMO_REGIONS
BENCH_CALLER = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
BENCH_OUS: dict[str, str | None] = {"Prod": None, "Dev": None, "Sandbox": None, "Shared": None}


class Clients(Protocol):
    """botocore clients acting for one account of the stand-in."""

    def __call__(self, service: str, region: str = "us-east-1") -> Any: ...


@dataclass
class AccountClients:
    """boto3 clients for one account, signed with that account's credentials; one per (service, region)."""

    endpoint: str
    creds: dict[str, str]
    cache: dict[tuple[str, str], Any] = field(default_factory=dict)

    def __call__(self, service: str, region: str = "us-east-1") -> Any:
        key = (service, region)
        if key not in self.cache:
            self.cache[key] = boto3.client(service, region_name=region, endpoint_url=self.endpoint, **self.creds)
        return self.cache[key]


def assume(caller: AccountClients, account: str, session_name: str = "standin-seed",
           role: str = MEMBER_ROLE) -> AccountClients:
    """Clients for `account` through sts:AssumeRole into its `role`, as a scanner enters it."""
    creds = caller("sts").assume_role(RoleArn=f"arn:aws:iam::{account}:role/{role}",
                                      RoleSessionName=session_name)["Credentials"]
    return AccountClients(caller.endpoint, {"aws_access_key_id": creds["AccessKeyId"],
                                            "aws_secret_access_key": creds["SecretAccessKey"],
                                            "aws_session_token": creds["SessionToken"]})


_local = threading.local()
_loader_lock = threading.Lock()
_loader: list[Any] = []


def _data_loader() -> Any:
    with _loader_lock:
        if not _loader:
            _loader.append(botocore.session.Session().get_component("data_loader"))
        return _loader[0]


class ActAs:
    """Cheap clients for many accounts: one per (thread, service, region), acting for `account` (None: the caller).

    moto honours an `x-moto-account-id` header, so a seeder of many accounts needs neither AssumeRole nor a
    client per account (the scanner, which is what a benchmark measures, still assumes a role into each).
    """

    def __init__(self, endpoint: str, account: str | None, creds: Mapping[str, str] = BENCH_CALLER) -> None:
        self.endpoint = endpoint
        self.account = account
        self.creds = dict(creds)

    def __call__(self, service: str, region: str = "us-east-1") -> Any:
        _local.account = self.account
        cache: dict[tuple[str, str, str], Any] | None = getattr(_local, "clients", None)
        if cache is None:
            cache = _local.clients = {}
        key = (self.endpoint, service, region)
        if key not in cache:
            session = getattr(_local, "session", None)
            if session is None:
                session = _local.session = botocore.session.Session()
                session.register_component("data_loader", _data_loader())  # parse each service model once
            client = session.create_client(service, region_name=region, endpoint_url=self.endpoint, **self.creds)
            client.meta.events.register("before-sign", _act_as)
            cache[key] = client
        return cache[key]


def _act_as(request: Any, **_: Any) -> None:
    account = getattr(_local, "account", None)
    if account:
        request.headers["x-moto-account-id"] = account
    elif "x-moto-account-id" in request.headers:
        del request.headers["x-moto-account-id"]


@dataclass(frozen=True)
class Organization:
    """An organization created in the stand-in: its id, root, management account and OUs by name."""

    mgmt: Clients  # the management account's clients
    id: str
    root: str
    management: str
    ous: dict[str, str]

    def add_account(self, name: str, ou: str | None = None, email: str | None = None) -> str:
        """A new member account `name`, moved into OU `ou` (None: left in the root); its id."""
        org = self.mgmt("organizations")
        status = org.create_account(AccountName=name, Email=email or f"{name}@example.com")["CreateAccountStatus"]
        account = str(status["AccountId"])
        if ou is not None:
            org.move_account(AccountId=account, SourceParentId=self.root, DestinationParentId=self.ous[ou])
        return account


def organization(mgmt: Clients, ous: Mapping[str, str | None] | None = None) -> Organization:
    """An organization with all features, and `ous` (name -> parent name, None for the root, parents first)."""
    org = mgmt("organizations")
    org_id = str(org.create_organization(FeatureSet="ALL")["Organization"]["Id"])
    root = str(org.list_roots()["Roots"][0]["Id"])
    made: dict[str, str] = {}
    for name, parent in (ous or {}).items():
        made[name] = str(org.create_organizational_unit(ParentId=made[parent] if parent else root,
                                                        Name=name)["OrganizationalUnit"]["Id"])
    management = str(mgmt("sts").get_caller_identity()["Account"])
    return Organization(mgmt, org_id, root, management, made)


# --- builders: what one account holds ---

BEDROCK_STREAM = "aws/bedrock/modelinvocations"
# The SCP a logging administrator would write (no AWS-published one exists; the pattern is AWS's own
# Deny-modifications-to-specific-CloudTrail-trails example), and one that forgets the Put.
PROTECT_LOGGING_SCP = {"Version": "2012-10-17", "Statement": [{
    "Sid": "ProtectBedrockInvocationLogging", "Effect": "Deny",
    "Action": ["bedrock:DeleteModelInvocationLoggingConfiguration", "bedrock:PutModelInvocationLoggingConfiguration"],
    "Resource": "*", "Condition": {"ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::*:role/BedrockLoggingAdmin"]}}}]}
DELETE_ONLY_SCP = {"Version": "2012-10-17", "Statement": [{
    "Sid": "NoDeletingBedrockLogging", "Effect": "Deny", "Action": "bedrock:DeleteModelInvocationLoggingConfiguration",
    "Resource": "*"}]}

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
            state: str = "Enabled", alias: str | None = None, source_region: str | None = None) -> str:
    """A customer-managed key: its policy may grant Bedrock GenerateDataKey (from `source_region`'s Bedrock,
    default `region`), or deny DescribeKey to all but a key-admin role (so the audit role cannot read its
    state); `state` Disabled or PendingDeletion. With `alias`, the key is named by `alias/ALIAS` (which the
    scan resolves with ListAliases)."""
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
    if alias:
        kms.create_alias(AliasName=f"alias/{alias}", TargetKeyId=key["KeyId"])
        return f"alias/{alias}"
    return str(key["Arn"])


def bucket(c: Clients, region: str, name: str) -> Any:
    """An empty bucket in `region` (nothing configured); returns that region's S3 client."""
    s3 = c("s3", region)
    kwargs: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    return s3


def log_bucket(c: Clients, account: str, region: str, name: str, prefix: str, *, bedrock: bool = True,
               public_read: bool = False, enforced: bool = True, kms: str | None = None,
               lifecycle: bool = True, block_public: bool = True, source_region: str | None = None) -> None:
    """A log bucket; by default configured exactly as the Bedrock and S3 guides recommend (Bedrock of
    `source_region`, default `region`, may write)."""
    s3 = bucket(c, region, name)
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


def s3_config(bucket_name: str, prefix: str | None = None) -> dict[str, Any]:
    """The s3Config part of a logging configuration."""
    return {"s3Config": {"bucketName": bucket_name, **({"keyPrefix": prefix} if prefix is not None else {})}}


def cloudwatch_config(group: str, role_arn: str, large: tuple[str, str] | None = None) -> dict[str, Any]:
    cw: dict[str, Any] = {"logGroupName": group, "roleArn": role_arn}
    if large:
        cw["largeDataDeliveryS3Config"] = {"bucketName": large[0], "keyPrefix": large[1]}
    return cw


def put_invocations(c: Clients, region: str, counts: dict[str, float]) -> None:
    """AWS/Bedrock Invocations datapoints, one series per model, as Bedrock publishes them (two days ago)."""
    put_invocations_on(c, region, dt.datetime.now(dt.UTC) - dt.timedelta(days=2), counts)


def put_invocations_on(c: Clients, region: str, when: dt.datetime, counts: dict[str, float]) -> None:
    """Invocations datapoints at `when` (put_invocations' for a chosen time)."""
    c("cloudwatch", region).put_metric_data(Namespace="AWS/Bedrock", MetricData=[
        {"MetricName": "Invocations", "Dimensions": [{"Name": "ModelId", "Value": model}], "Value": value,
         "Timestamp": when, "Unit": "Count"} for model, value in counts.items()])


def scp(org: Organization, name: str, content: dict[str, Any], target: str) -> str:
    """A service control policy attached to `target` (an account id, or an OU by name); its id."""
    client = org.mgmt("organizations")
    pid = str(client.create_policy(Name=name, Description=name, Type="SERVICE_CONTROL_POLICY",
                                   Content=json.dumps(content))["Policy"]["PolicySummary"]["Id"])
    client.attach_policy(PolicyId=pid, TargetId=org.ous.get(target, target))
    return pid


def keep_objects(c: Clients, region: str, bucket_name: str, retention_days: int = 400) -> None:
    """Versioning and Object Lock (governance mode, default retention) on an existing bucket."""
    s3 = c("s3", region)
    s3.put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=bucket_name, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": retention_days}}})


def delivered_logs(c: Clients, account: str, region: str, bucket_name: str, prefix: str, when: dt.datetime,
                   hours: tuple[int, ...] = (9, 10)) -> None:
    """Log objects where Bedrock writes them: PREFIX/AWSLogs/ACCOUNT/BedrockModelInvocationLogs/REGION/
    YYYY/MM/DD/HH/<time>_<hex>.json.gz. Only their key names are ever read.

    The bucket policy denies insecure transport, which the stand-in's http endpoint is: it is lifted while
    writing and put back."""
    s3 = c("s3", region)
    saved = s3.get_bucket_policy(Bucket=bucket_name)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket_name)
    for hour in hours:
        stamp = when.replace(hour=hour)
        key = (f"{prefix}/AWSLogs/{account}/BedrockModelInvocationLogs/{region}/{stamp:%Y/%m/%d/%H}/"
               f"{stamp:%Y%m%dT%H%M%S}002Z_{hashlib.sha256(f'{region}/{hour}'.encode()).hexdigest()[:16]}.json.gz")
        s3.put_object(Bucket=bucket_name, Key=key, Body=b"\x1f\x8b")
    s3.put_bucket_policy(Bucket=bucket_name, Policy=saved)


def delivered_events(c: Clients, region: str, group: str, when: dt.datetime) -> None:
    """The aws/bedrock/modelinvocations stream in `group`, with one event (moto ingests it "now")."""
    logs = c("logs", region)
    logs.create_log_stream(logGroupName=group, logStreamName=BEDROCK_STREAM)
    logs.put_log_events(logGroupName=group, logStreamName=BEDROCK_STREAM, logEvents=[
        {"timestamp": int(when.timestamp() * 1000), "message": '{"schemaType": "ModelInvocationLog"}'}])


# --- the demo organization ---

def seed_ids(endpoint: str, seed: int) -> None:
    """Seed the stand-in's id generator (moto's documented `POST /moto-api/seed?a=N`): the same builders then
    create the same account, OU, key and request ids."""
    request = urllib.request.Request(f"{endpoint}/moto-api/seed?a={seed}", method="POST")
    with urllib.request.urlopen(request, timeout=30) as resp:
        resp.read()


def seed_demo(endpoint: str) -> dict[str, str]:
    """Seed the demo organization; return account name -> id.

    Every catalog rule except SCAN-001/SCAN-002 fires somewhere (BIL-017 with the demo config's
    approved_destinations); security-tooling is configured as the guides recommend and gives no finding.
    """
    seed_ids(endpoint, DEMO_SEED)
    mgmt = AccountClients(endpoint, DEMO_CALLER)
    org = organization(mgmt, DEMO_OUS)
    ids: dict[str, str] = {"management": org.management}
    for name, parent in DEMO_PLACEMENT.items():
        ids[name] = org.add_account(name, parent)
    mgmt("organizations").close_account(AccountId=ids["legacy-closed"])

    def member(name: str) -> AccountClients:
        return assume(mgmt, ids[name], "demo-seed")

    # management: nothing configured anywhere, no use seen (BIL-001 in every region).

    # security-tooling: the compliant account. S3 delivery of every data type in every region to a bucket
    # with the documented policy, BucketOwnerEnforced, SSE-KMS with a key Bedrock may use, lifecycle and
    # public access block; us-east-1 also delivers to CloudWatch through a guarded, least-privilege role.
    c, acct = member("security-tooling"), ids["security-tooling"]
    role = delivery_role(c, "BedrockInvocationLogging", trust(acct),
                         managed=log_write_policy(acct, "us-east-1", "/bedrock/invocations"))
    for region in DEMO_REGIONS:
        logs = f"sec-bedrock-logs-{acct}-{region}"
        # eu-west-1 names its key by an alias, as many estates do.
        alias = "bedrock-logs" if region == "eu-west-1" else None
        log_bucket(c, acct, region, logs, "bedrock", kms=kms_key(c, acct, region, alias=alias))
        config: dict[str, Any] = {"s3Config": {"bucketName": logs, "keyPrefix": "bedrock"}, **ALL_TYPES}
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
        logs = f"ds-bedrock-logs-{acct}-{region}"
        # us-east-1: a "temporary" public-read statement and no public access block (BIL-013).
        public = region == "us-east-1"
        log_bucket(c, acct, region, logs, "bedrock", kms=keys[region], public_read=public, block_public=not public)
        put_logging(c, region, {"s3Config": {"bucketName": logs, "keyPrefix": "bedrock"}, **partial})

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
    log_bucket(assume(mgmt, STRANGER_ACCOUNT, "demo-seed", "squatter"), STRANGER_ACCOUNT, "us-west-2", taken,
               "bedrock")
    put_logging(c, "us-west-2", {"s3Config": {"bucketName": taken, "keyPrefix": "bedrock"}, **ALL_TYPES})
    seed_demo_evidence(org, ids, member)
    return ids


STRANGER_ACCOUNT = "999999999999"  # outside the demo organization (moto lets STS enter any account id)


def seed_demo_evidence(org: Organization, ids: dict[str, str], member: Callable[[str], AccountClients]) -> None:
    """The evidence of BIL-022..BIL-025 in the demo organization; the proxy adds evidence.demo_answers(ids).

    security-tooling stays compliant: Bedrock is used in every region and its logs arrive (objects under
    Bedrock's key layout, the CloudWatch stream ingested), an SCP on the account denies both logging changes
    except to BedrockLoggingAdmin, its buckets are versioned with Object Lock, its log group has deletion
    protection (the proxy's answer: moto has none). data-science us-east-1 and ml-platform us-west-2 are used
    and receive nothing (BIL-022); the Payments OU's SCP denies only the deletion (BIL-024 names Put as open);
    sandbox's eu-west-1 logging was deleted (BIL-023, the proxy's LookupEvents answer); every other
    bucket and log group is erasable (BIL-025).
    """
    org.mgmt("organizations").enable_policy_type(RootId=org.root, PolicyType="SERVICE_CONTROL_POLICY")
    scp(org, "protect-bedrock-logging", PROTECT_LOGGING_SCP, ids["security-tooling"])
    scp(org, "no-deleting-bedrock-logging", DELETE_ONLY_SCP, "Payments")
    used = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=2)
    c, acct = member("security-tooling"), ids["security-tooling"]
    for region in DEMO_REGIONS:
        put_invocations_on(c, region, used, {"anthropic.claude-3-haiku-20240307-v1:0": 120,
                                             "amazon.titan-embed-text-v2:0": 30})
        logs = f"sec-bedrock-logs-{acct}-{region}"
        keep_objects(c, region, logs)
        delivered_logs(c, acct, region, logs, "bedrock", used)
    delivered_events(c, "us-east-1", "/bedrock/invocations", used)
    for name, region in (("data-science", "us-east-1"), ("ml-platform", "us-west-2")):
        put_invocations_on(member(name), region, used, {"anthropic.claude-3-5-sonnet-20240620-v1:0": 58})


# --- the benchmark's mix: seven profiles over BENCH_REGIONS, and two SCPs on OUs ---

# The SCPs of seed_bench's organization: OU name -> (policy name, content). Attached to OUs, never to accounts,
# so every bench organization of any size has the same ones (the replay stand-in maps OUs through its layout).
# Prod's denies both logging changes, Dev's only the deletion (BIL-024 names Put as open); Sandbox, Shared and
# the management account (in the root) have none.
BENCH_SCPS: dict[str, tuple[str, dict[str, Any]]] = {
    "Prod": ("protect-bedrock-logging", PROTECT_LOGGING_SCP),
    "Dev": ("no-deleting-bedrock-logging", DELETE_ONLY_SCP),
}
BENCH_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def bench_used_at(now: dt.datetime | None = None) -> dt.datetime:
    """When the bench's Bedrock invocations happened: 12:00 UTC two days before `now` (default: the clock), so
    every estate seeded on one day has the same times (its log objects' keys, its streams' events)."""
    day = (now or dt.datetime.now(dt.UTC)).date() - dt.timedelta(days=2)
    return dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC)


def _delivery(c: Clients, account: str, name: str, group: str | None) -> str:
    """A Bedrock delivery role, with write permissions on `group` in any region (None: no permissions)."""
    return delivery_role(c, name, trust(None), inline=log_write_policy(account, "*", group) if group else None)


def p_compliant(c: Clients, account: str, used: dt.datetime) -> None:
    """S3 delivery of every data type in every region: documented policy, SSE-KMS, no ACLs, lifecycle; the
    bucket versioned with Object Lock; Bedrock used in every region and its logs delivered."""
    for region in BENCH_REGIONS:
        name = f"bench-logs-{account}-{region}"
        log_bucket(c, account, region, name, "bedrock", kms=kms_key(c, account, region))
        keep_objects(c, region, name)
        put_logging(c, region, {**s3_config(name, "bedrock"), **ALL_TYPES})
        put_invocations_on(c, region, used, {BENCH_MODEL: 120})
        delivered_logs(c, account, region, name, "bedrock", used)


def p_cloudwatch_images(c: Clients, account: str, used: dt.datetime) -> None:
    """CloudWatch with image delivery and no large-data bucket in two regions; third region disabled. Bedrock
    used in the first region, whose log group ingests its logs."""
    role = _delivery(c, account, "BedrockLogsRole", "/bedrock/invocations")
    for region in BENCH_REGIONS[:2]:
        log_group(c, region, "/bedrock/invocations")
        put_logging(c, region, {"cloudWatchConfig": cloudwatch_config("/bedrock/invocations", role), **ALL_TYPES})
    put_invocations_on(c, BENCH_REGIONS[0], used, {BENCH_MODEL: 40})
    delivered_events(c, BENCH_REGIONS[0], "/bedrock/invocations", used)


def p_cloudwatch_large(c: Clients, account: str, used: dt.datetime) -> None:
    """CloudWatch plus a large-data bucket in every region. Bedrock used in the first region, whose log group
    ingests its logs (the large-data bucket is never read)."""
    role = _delivery(c, account, "BedrockLogsRole", "/bedrock/invocations")
    for region in BENCH_REGIONS:
        log_group(c, region, "/bedrock/invocations")
        large = f"bench-large-{account}-{region}"
        bucket(c, region, large)
        put_logging(c, region, {"cloudWatchConfig": cloudwatch_config("/bedrock/invocations", role,
                                                                      (large, "large")), **ALL_TYPES})
    put_invocations_on(c, BENCH_REGIONS[0], used, {BENCH_MODEL: 15, "amazon.titan-embed-text-v2:0": 5})
    delivered_events(c, BENCH_REGIONS[0], "/bedrock/invocations", used)


def p_disabled(c: Clients, account: str, used: dt.datetime) -> None:
    """Nothing configured anywhere."""


def p_partial_types(c: Clients, account: str, used: dt.datetime) -> None:
    """S3 delivery without video and audio in one region, text only in another."""
    partial = {**ALL_TYPES, "videoDataDeliveryEnabled": False, "audioDataDeliveryEnabled": False}
    text = {**dict.fromkeys(ALL_TYPES, False), "textDataDeliveryEnabled": True}
    for region, name, types in ((BENCH_REGIONS[0], f"bench-partial-{account}", partial),
                                (BENCH_REGIONS[1], f"bench-text-{account}", text)):
        bucket(c, region, name)
        put_logging(c, region, {**s3_config(name, "bedrock"), **types})


def p_dangling(c: Clients, account: str, used: dt.datetime) -> None:
    """Logging that goes nowhere: a missing log group and role; a missing bucket; an orphaned role."""
    put_logging(c, BENCH_REGIONS[0], {"cloudWatchConfig": cloudwatch_config(
        "/bedrock/gone", f"arn:aws:iam::{account}:role/GoneRole"), **ALL_TYPES})
    put_logging(c, BENCH_REGIONS[1], {**s3_config(f"bench-missing-{account}", "x"), **ALL_TYPES})
    _delivery(c, account, "OrphanedBedrockRole", "/bedrock/old")


def p_mixed(c: Clients, account: str, used: dt.datetime) -> None:
    """One region to S3, one to CloudWatch with a role lacking permissions, one disabled. Bedrock used in the
    CloudWatch region, whose log group never receives anything (BIL-022)."""
    name = f"bench-mixed-{account}"
    bucket(c, BENCH_REGIONS[0], name)
    put_logging(c, BENCH_REGIONS[0], {**s3_config(name, "bedrock"), **ALL_TYPES})
    role = _delivery(c, account, "WeakRole", None)
    log_group(c, BENCH_REGIONS[2], "/bedrock/mixed")
    put_logging(c, BENCH_REGIONS[2], {"cloudWatchConfig": cloudwatch_config("/bedrock/mixed", role), **ALL_TYPES})
    put_invocations_on(c, BENCH_REGIONS[2], used, {BENCH_MODEL: 9})


Profile = Callable[[Clients, str, dt.datetime], None]
BENCH_PROFILES: dict[str, Profile] = {
    "compliant": p_compliant, "cloudwatch_images": p_cloudwatch_images, "cloudwatch_large": p_cloudwatch_large,
    "disabled": p_disabled, "partial_types": p_partial_types, "dangling": p_dangling, "mixed": p_mixed}
# Where each profile's Bedrock was used in the lookback (BENCH_REGIONS indexes) and whether its logs arrived:
# profile -> {region index: delivered}. The scan reads the delivery evidence exactly there (BIL-022 where False).
BENCH_USE: dict[str, dict[int, bool]] = {
    "compliant": {0: True, 1: True, 2: True}, "cloudwatch_images": {0: True}, "cloudwatch_large": {0: True},
    "mixed": {2: False}}


def bench_profile(i: int) -> str:
    """The profile of member account i (1-based; the management account, 0, has nothing configured)."""
    return list(BENCH_PROFILES)[i % len(BENCH_PROFILES)]


def bench_ou(i: int) -> str:
    """The OU of member account i (1-based; the management account stays in the root)."""
    ous = list(BENCH_OUS)
    return ous[i % len(ous)]


def seed_bench(endpoint: str, n: int, workers: int = 8, warm_ec2: bool = True,
               used: dt.datetime | None = None) -> dict[str, Any]:
    """An organization of n accounts (the management account counts as one), account i with bench_profile(i)
    in OU bench_ou(i), SCPs as BENCH_SCPS; invocations at `used` (default bench_used_at()).

    Returns {"organization_id", "management", "accounts": {name: id}, "profiles": {profile: count}, "ous",
    "scps", "seconds"}.
    """
    t0 = time.monotonic()
    mgmt = ActAs(endpoint, None)
    org = organization(mgmt, BENCH_OUS)
    mgmt("organizations").enable_policy_type(RootId=org.root, PolicyType="SERVICE_CONTROL_POLICY")
    for ou, (name, content) in BENCH_SCPS.items():
        scp(org, name, content, ou)
    mgmt("ec2", "us-east-1").describe_regions(AllRegions=True)
    used = used or bench_used_at()

    def one(i: int) -> tuple[str, str]:
        name = f"bench-{i:05d}"
        acct = org.add_account(name, bench_ou(i))  # ActAs: this thread's own client
        c = ActAs(endpoint, acct)
        BENCH_PROFILES[bench_profile(i)](c, acct, used)
        # moto builds an account's EC2 backend (default VPCs, AMIs...) on its first EC2 call, ~45 ms of its
        # CPU; real AWS has no such cost, so the seeder pays it instead of the first timed scan.
        if warm_ec2:
            c("ec2", "us-east-1").describe_regions(AllRegions=True)
        return name, acct

    accounts: dict[str, str] = {"management": org.management}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for name, acct in pool.map(one, range(1, n)):
            accounts[name] = acct
    return {"organization_id": org.id, "management": org.management, "accounts": accounts,
            "profiles": bench_mix(n), "ous": bench_ous(n), "scps": {ou: name for ou, (name, _) in BENCH_SCPS.items()},
            "seconds": round(time.monotonic() - t0, 2)}


def bench_ous(n: int) -> dict[str, int]:
    """How many of seed_bench(n)'s member accounts are in each OU ("root": the management account)."""
    mix = Counter(bench_ou(i) for i in range(1, n))
    mix["root"] += 1
    return dict(sorted(mix.items()))


def bench_mix(n: int) -> dict[str, int]:
    """How many of seed_bench(n)'s accounts have each profile."""
    mix = Counter(bench_profile(i) for i in range(1, n))
    mix["disabled"] += 1  # the management account has nothing configured
    return dict(sorted(mix.items()))
