"""The AWS stand-in toolkit itself: proxy classification and modes, the moto launcher, the estate builders."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.config
import botocore.exceptions
import botocore.retries.standard
import botocore.session
import pytest

from audit_bedrock import policy
from audit_bedrock.standin import estate, server
from audit_bedrock.standin.evidence import LOG_STREAMS_TARGET, EvidenceAnswers
from audit_bedrock.standin.proxy import DENY, THROTTLE, Proxy, Rule, deny_reply, match, parse
from tests.conftest import moto_process

CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
NO_RETRY = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                                  read_timeout=5)
DEAD_UPSTREAM = "http://127.0.0.1:9"  # nothing is forwarded in the tests that use it


def client(endpoint: str, service: str, region: str = "us-east-1", **creds: str) -> Any:
    return botocore.session.Session().create_client(service, region_name=region, endpoint_url=endpoint,
                                                    config=NO_RETRY, **(creds or CREDS))


# Each protocol's requests, as botocore sends them (the service's botocore model names the protocol), and
# the IAM action audit_bedrock.policy.iam_action gives them. Error shapes: botocore/parsers.py reads the
# query (QueryParser), ec2 (EC2QueryParser), json (BaseJSONParser), rest-json, rest-xml and
# smithy-rpc-v2-cbor (RpcV2CBORParser) error bodies the proxy writes.
CALLS = [
    pytest.param("sts", "get_caller_identity", {}, "sts", "query", "GetCallerIdentity", None, id="query-no-permission"),
    pytest.param("iam", "list_roles", {}, "iam", "query", "ListRoles", "iam:ListRoles", id="query"),
    pytest.param("ec2", "describe_regions", {}, "ec2", "ec2", "DescribeRegions", "ec2:DescribeRegions", id="ec2"),
    pytest.param("logs", "describe_log_groups", {}, "logs", "json", "DescribeLogGroups", "logs:DescribeLogGroups",
                 id="json"),
    pytest.param("kms", "describe_key", {"KeyId": "k"}, "kms", "json", "DescribeKey", "kms:DescribeKey",
                 id="json-kms"),
    pytest.param("cloudwatch", "list_metrics", {}, "monitoring", "json", "ListMetrics",
                 "cloudwatch:ListMetrics", id="json-signing-name-differs"),
    pytest.param("bedrock", "get_model_invocation_logging_configuration", {}, "bedrock", "rest-json",
                 "GetModelInvocationLoggingConfiguration", "bedrock:GetModelInvocationLoggingConfiguration",
                 id="rest-json"),
    pytest.param("s3", "get_object_lock_configuration", {"Bucket": "b"}, "s3", "rest-xml",
                 "GetObjectLockConfiguration", "s3:GetBucketObjectLockConfiguration", id="rest-xml-object-lock"),
    pytest.param("s3", "get_bucket_logging", {"Bucket": "b"}, "s3", "rest-xml", "GetBucketLogging",
                 "s3:GetBucketLogging", id="rest-xml-logging"),
    pytest.param("s3", "get_bucket_lifecycle_configuration", {"Bucket": "b"}, "s3", "rest-xml",
                 "GetBucketLifecycleConfiguration", "s3:GetLifecycleConfiguration", id="rest-xml-not-deprecated"),
    pytest.param("s3", "get_public_access_block", {"Bucket": "b"}, "s3", "rest-xml", "GetPublicAccessBlock",
                 "s3:GetBucketPublicAccessBlock", id="rest-xml-subresource"),
    pytest.param("s3", "list_objects_v2", {"Bucket": "b"}, "s3", "rest-xml", "ListObjectsV2", "s3:ListBucket",
                 id="rest-xml-list"),
    pytest.param("s3", "get_object", {"Bucket": "b", "Key": "a/b.json"}, "s3", "rest-xml", "GetObject",
                 "s3:GetObject", id="rest-xml-object"),
]


@pytest.mark.parametrize(("service", "method", "kwargs", "signing", "protocol", "operation", "action"), CALLS)
def test_proxy_names_and_denies_each_protocol(service: str, method: str, kwargs: dict[str, Any], signing: str,
                                              protocol: str, operation: str, action: str | None) -> None:
    """The proxy names the operation and its IAM action (the policy generator's table), and its deny is
    parsed by botocore as that protocol's access-denied code."""
    with Proxy(DEAD_UPSTREAM) as proxy:
        proxy.add(Rule(match(action=action), "deny"))
        with pytest.raises(botocore.exceptions.ClientError) as err:
            getattr(client(proxy.url, service), method)(**kwargs)
        [seen] = proxy.seen()
    assert (seen.service, seen.protocol, seen.operation, seen.action) == (signing, protocol, operation, action)
    assert seen.action == policy.iam_action(service, operation)
    assert (seen.outcome, seen.status) == ("denied", DENY[protocol][1])
    assert err.value.response["Error"]["Code"] == DENY[protocol][0]


def test_cbor_request_is_named_from_its_path() -> None:
    """smithy-rpc-v2-cbor puts the operation in the path: POST /service/{service}/operation/{operation}
    (the Smithy RPC v2 CBOR protocol specification); botocore here speaks json to CloudWatch, so built by hand."""
    req = parse("POST", "/service/GraniteServiceVersion20100801/operation/GetMetricData",
                {"smithy-protocol": "rpc-v2-cbor", "content-type": "application/cbor",
                 "authorization": "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/monitoring/aws4_request, x"},
                b"\xa0")
    assert (req.service, req.api, req.region, req.access_key) == ("monitoring", "cloudwatch", "eu-west-1", "AKID")
    assert (req.protocol, req.operation, req.action) == ("rpc-v2-cbor", "GetMetricData", "cloudwatch:GetMetricData")
    assert deny_reply(req).headers["smithy-protocol"] == "rpc-v2-cbor"


@pytest.mark.parametrize("protocol", sorted(THROTTLE))
def test_throttle_codes_are_botocores(protocol: str) -> None:
    """Every throttle code the proxy sends is one botocore's standard retry mode retries as throttling."""
    assert THROTTLE[protocol][0] in botocore.retries.standard.ThrottledRetryableChecker._THROTTLED_ERROR_CODES


@pytest.mark.parametrize(("service", "method", "kwargs", "code"), [
    pytest.param("sts", "get_caller_identity", {}, "Throttling", id="query"),
    pytest.param("logs", "describe_log_groups", {}, "ThrottlingException", id="json"),
    pytest.param("cloudwatch", "list_metrics", {}, "ThrottlingException", id="json-cloudwatch"),
    pytest.param("bedrock", "get_model_invocation_logging_configuration", {}, "ThrottlingException", id="rest-json"),
    pytest.param("s3", "get_bucket_policy", {"Bucket": "b"}, "SlowDown", id="rest-xml"),
    pytest.param("ec2", "describe_regions", {}, "RequestLimitExceeded", id="ec2"),
])
def test_throttle_reply_parses_as_throttling(service: str, method: str, kwargs: dict[str, Any], code: str) -> None:
    with Proxy(DEAD_UPSTREAM) as proxy:
        proxy.add(Rule(match(), "throttle"))
        with pytest.raises(botocore.exceptions.ClientError) as err:
            getattr(client(proxy.url, service), method)(**kwargs)
    assert err.value.response["Error"]["Code"] == code
    assert [s.outcome for s in proxy.seen()] == ["throttled"]


def test_every_table_entry_is_a_botocore_operation() -> None:
    """The one operation -> action table names real operations (not e.g. GetBucketObjectLockConfiguration)."""
    session = botocore.session.get_session()
    for service, operation in policy.OPERATION_ACTIONS:
        assert operation in session.get_service_model(service).operation_names, (service, operation)


def test_unknown_fault_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        Rule(match(), "explode")


# --- modes that forward: one moto subprocess with a small organization built by the estate builders ---

@pytest.fixture(scope="module")
def org() -> Iterator[tuple[str, estate.Organization, str]]:
    """(moto URL, an organization with nested OUs, one member account in Payments)."""
    with moto_process() as url:
        made = estate.organization(estate.AccountClients(url, CREDS), estate.DEMO_OUS)
        yield url, made, made.add_account("member", "Payments")


def _parents(org: estate.Organization, child: str) -> list[str]:
    return [p["Id"] for p in org.mgmt("organizations").list_parents(ChildId=child)["Parents"]]


def test_organization_builder_nests_ous_and_places_accounts(org: tuple[str, estate.Organization, str]) -> None:
    _, made, member = org
    assert set(made.ous) == set(estate.DEMO_OUS)
    assert _parents(made, made.ous["Payments"]) == [made.ous["Prod"]]
    assert _parents(made, made.ous["Dev"]) == [made.root]
    assert _parents(made, member) == [made.ous["Payments"]]
    accounts = made.mgmt("organizations").list_accounts()["Accounts"]
    assert {a["Id"] for a in accounts} == {made.management, member}


def test_proxy_learns_accounts_and_counts(org: tuple[str, estate.Organization, str]) -> None:
    """Keys minted by an AssumeRole are attributed to the role's account; AssumeRole is counted for it too;
    the caller is learned from GetCallerIdentity; a request sent twice is one repeat."""
    url, made, member = org
    with Proxy(url) as proxy:
        caller = estate.AccountClients(proxy.url, CREDS)
        caller("sts").get_caller_identity()
        inside = estate.assume(caller, member)
        assert inside("sts").get_caller_identity()["Account"] == member
        inside("bedrock", "eu-west-1").get_model_invocation_logging_configuration()
        inside("bedrock", "eu-west-1").get_model_invocation_logging_configuration()
        stats = proxy.counts.snapshot()
        seen = proxy.seen()
    assert [(s.operation, s.account) for s in seen] == [
        ("GetCallerIdentity", None), ("AssumeRole", None), ("GetCallerIdentity", member),
        ("GetModelInvocationLoggingConfiguration", member), ("GetModelInvocationLoggingConfiguration", member)]
    assert proxy.key_accounts and set(proxy.key_accounts.values()) == {member}
    assert len(proxy.assumed_secrets) == 2  # the secret key and the session token
    assert stats["requests"] == 5 and stats["status"] == {"200": 5}
    assert stats["by_account"] == {made.management: 1, member: 4}
    assert stats["by_operation"] == {"bedrock:GetModelInvocationLoggingConfiguration": 2, "sts:AssumeRole": 1,
                                     "sts:GetCallerIdentity": 2}
    assert stats["by_account_region_calls"] == [2] and stats["account_regions"] == 1
    assert stats["repeated_requests"] == 1


def test_proxy_answers_what_moto_cannot(org: tuple[str, estate.Organization, str]) -> None:
    """LookupEvents is answered in its wire shape and never reaches moto (whose HTTP 500 botocore would retry);
    DescribeLogGroups gains deletionProtectionEnabled for the groups named; the caller's keys are its account."""
    import datetime as dt

    from audit_bedrock.standin.evidence import EvidenceAnswers

    url, made, member = org
    when = dt.datetime(2026, 11, 20, 14, 3, 11, tzinfo=dt.UTC)
    answers = EvidenceAnswers(caller=made.management, protected_log_groups={(member, "us-east-1", "/kept")})
    answers.add_deletion(member, "eu-west-1", when, role="Admin", session="jane")
    with Proxy(url, answers=answers) as proxy:
        caller = estate.AccountClients(proxy.url, CREDS)
        caller("sts").get_caller_identity()
        inside = estate.assume(caller, member)
        trail = inside("cloudtrail", "eu-west-1")
        found = trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName",
                                                       "AttributeValue": "DeleteModelInvocationLoggingConfiguration"}],
                                    StartTime=when - dt.timedelta(days=1), EndTime=when + dt.timedelta(days=1))
        none = caller("cloudtrail", "eu-west-1").lookup_events(StartTime=when - dt.timedelta(days=1),
                                                                 EndTime=when + dt.timedelta(days=1))
        logs = inside("logs", "us-east-1")
        for name in ("/kept", "/other"):
            logs.create_log_group(logGroupName=name)
        groups = logs.describe_log_groups()["logGroups"]
        seen = proxy.seen()
    assert [(e["EventTime"], e["Username"]) for e in found["Events"]] == [(when, "jane")]
    assert found["ResponseMetadata"]["RetryAttempts"] == 0 and none["Events"] == []  # the caller's account: none
    assert {g["logGroupName"]: g.get("deletionProtectionEnabled") for g in groups} == {"/kept": True, "/other": None}
    assert [s.outcome for s in seen if s.operation == "LookupEvents"] == ["answered", "answered"]
    assert {s.outcome for s in seen if s.operation != "LookupEvents"} == {"forwarded"}


def test_latency_transient_faults_and_control_paths(org: tuple[str, estate.Organization, str]) -> None:
    url, _, _ = org
    with Proxy(url, latency_s=0.2) as proxy:
        proxy.add(Rule(match(operation="GetCallerIdentity"), "deny", first_attempts=1))
        sts = client(proxy.url, "sts")
        t0 = time.monotonic()
        with pytest.raises(botocore.exceptions.ClientError):
            sts.get_caller_identity()
        sts.get_caller_identity()  # the same logical request: its second attempt passes
        assert time.monotonic() - t0 >= 0.4
        assert [s.outcome for s in proxy.seen()] == ["denied", "forwarded"]
        stats = json.loads(urllib.request.urlopen(proxy.url + "/__proxy__/stats", timeout=5).read())
        assert stats["requests"] == 2 and stats["status"] == {"200": 1, "403": 1}
        reset = urllib.request.Request(proxy.url + "/__proxy__/reset", method="POST", data=b"")
        urllib.request.urlopen(reset, timeout=5).read()
        assert proxy.counts.snapshot()["requests"] == 0


@pytest.mark.parametrize(("fault", "error"), [
    pytest.param("drop", botocore.exceptions.ConnectionClosedError, id="drop"),
    pytest.param("stall", botocore.exceptions.ReadTimeoutError, id="stall"),
])
def test_broken_connections(fault: str, error: type[Exception]) -> None:
    with Proxy(DEAD_UPSTREAM) as proxy:
        proxy.add(Rule(match(region="eu-west-1"), fault, seconds=3.0))
        quick = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=1)
        sts = botocore.session.Session().create_client("sts", region_name="eu-west-1", endpoint_url=proxy.url,
                                                       config=quick, **CREDS)
        with pytest.raises(error):
            sts.get_caller_identity()
        assert [s.outcome for s in proxy.seen()] == ["dropped" if fault == "drop" else "stalled"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the self-signed certificate")
def test_tls_mode(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    with Proxy(DEAD_UPSTREAM, tls=(str(cert), str(key))) as proxy:
        assert proxy.url.startswith("https://127.0.0.1:")
        ctx = ssl.create_default_context(cafile=str(cert))
        stats = json.loads(urllib.request.urlopen(proxy.url + "/__proxy__/stats", timeout=5, context=ctx).read())
    assert stats["requests"] == 0


# --- the moto launcher ---

def test_key_indexed_process_resolves_minted_keys() -> None:
    """With the access-key index a minted key still maps to its account, and the server is on loopback."""
    with server.process(key_index=True) as moto:
        assert moto.url.startswith("http://127.0.0.1:")
        mgmt = estate.AccountClients(moto.url, CREDS)
        made = estate.organization(mgmt)
        member = made.add_account("indexed")
        assert estate.assume(mgmt, member)("sts").get_caller_identity()["Account"] == member
    with pytest.raises(OSError):
        urllib.request.urlopen(moto.url + "/moto-api/", timeout=2)


# --- the benchmark's estate: each profile builds what it claims ---

def _logging(c: estate.Clients, region: str) -> dict[str, Any]:
    return dict(c("bedrock", region).get_model_invocation_logging_configuration().get("loggingConfig") or {})


def test_bench_profiles_build_what_they_claim() -> None:
    with moto_process() as url:
        seeded = estate.seed_bench(url, 8, workers=2, warm_ec2=False)
        acct = {estate.bench_profile(i): seeded["accounts"][f"bench-{i:05d}"] for i in range(1, 8)}
        assert seeded["profiles"] == {**dict.fromkeys(estate.BENCH_PROFILES, 1), "disabled": 2}
        c = {name: estate.ActAs(url, a) for name, a in acct.items()}
        regions = estate.BENCH_REGIONS

        compliant = [_logging(c["compliant"], r) for r in regions]
        assert all(cfg["s3Config"]["bucketName"] == f"bench-logs-{acct['compliant']}-{r}"
                   for cfg, r in zip(compliant, regions, strict=True))
        enc = c["compliant"]("s3", regions[1]).get_bucket_encryption(Bucket=compliant[1]["s3Config"]["bucketName"])
        assert enc["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"][
            "SSEAlgorithm"] == "aws:kms"

        images = [_logging(c["cloudwatch_images"], r) for r in regions]
        assert [bool(cfg) for cfg in images] == [True, True, False]
        assert "largeDataDeliveryS3Config" not in images[0]["cloudWatchConfig"]

        large = _logging(c["cloudwatch_large"], regions[2])["cloudWatchConfig"]["largeDataDeliveryS3Config"]
        c["cloudwatch_large"]("s3", regions[2]).head_bucket(Bucket=large["bucketName"])

        assert not any(_logging(c["disabled"], r) for r in regions)

        partial = _logging(c["partial_types"], regions[0])
        assert partial["textDataDeliveryEnabled"] and not partial["videoDataDeliveryEnabled"]

        gone = _logging(c["dangling"], regions[0])["cloudWatchConfig"]["logGroupName"]
        groups = c["dangling"]("logs", regions[0]).describe_log_groups(logGroupNamePrefix=gone)["logGroups"]
        assert gone == "/bedrock/gone" and not groups
        roles = {r["RoleName"] for r in c["dangling"]("iam").list_roles()["Roles"]}
        assert "OrphanedBedrockRole" in roles and "GoneRole" not in roles

        mixed = [_logging(c["mixed"], r) for r in regions]
        assert "s3Config" in mixed[0] and not mixed[1] and "cloudWatchConfig" in mixed[2]
        weak = c["mixed"]("iam").list_role_policies(RoleName="WeakRole")["PolicyNames"]
        assert weak == []


def _newest_delivery(c: estate.Clients, region: str, bucket: str, account: str) -> list[str]:
    # ListObjectsV2Output.Contents[].Key (botocore s3 model); Bedrock's key layout (estate.delivered_logs)
    prefix = f"bedrock/AWSLogs/{account}/BedrockModelInvocationLogs/{region}/"
    return [o["Key"] for o in c("s3", region).list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents") or []]


def _stream(c: estate.Clients, region: str, group: str) -> list[str]:
    # DescribeLogStreamsResponse.logStreams[].logStreamName (botocore logs model)
    return [s["logStreamName"] for s in c("logs", region).describe_log_streams(
        logGroupName=group, logStreamNamePrefix=estate.BEDROCK_STREAM)["logStreams"]]


def _invoked(c: estate.Clients, region: str, used: Any) -> float:
    # GetMetricStatisticsOutput.Datapoints[].Sum (botocore cloudwatch model)
    points = c("cloudwatch", region).get_metric_statistics(
        Namespace="AWS/Bedrock", MetricName="Invocations", Dimensions=[
            {"Name": "ModelId", "Value": estate.BENCH_MODEL}], StartTime=used - estate.dt.timedelta(hours=1),
        EndTime=used + estate.dt.timedelta(hours=1), Period=7200, Statistics=["Sum"])["Datapoints"]
    return float(sum(p["Sum"] for p in points))


def test_bench_evidence_is_where_bench_use_says() -> None:
    """Invocations where BENCH_USE names a region, delivered logs (objects or the Bedrock stream) only where it
    says True; the SCPs of BENCH_SCPS on their OUs, nothing on an account."""
    with moto_process() as url:
        used = estate.bench_used_at()
        seeded = estate.seed_bench(url, 8, workers=2, warm_ec2=False, used=used)
        acct = {estate.bench_profile(i): seeded["accounts"][f"bench-{i:05d}"] for i in range(1, 8)}
        c = {name: estate.ActAs(url, a) for name, a in acct.items()}
        cases = [  # (profile, region index, kind of destination, its name, invoked, delivered)
            *[("compliant", r, "s3", f"bench-logs-{acct['compliant']}-{region}", True, True)
              for r, region in enumerate(estate.BENCH_REGIONS)],
            ("cloudwatch_images", 0, "cloudwatch", "/bedrock/invocations", True, True),
            ("cloudwatch_images", 1, "cloudwatch", "/bedrock/invocations", False, False),
            ("cloudwatch_large", 0, "cloudwatch", "/bedrock/invocations", True, True),
            ("cloudwatch_large", 1, "cloudwatch", "/bedrock/invocations", False, False),
            ("partial_types", 0, "s3", f"bench-partial-{acct['partial_types']}", False, False),
            ("mixed", 0, "s3", f"bench-mixed-{acct['mixed']}", False, False),
            ("mixed", 2, "cloudwatch", "/bedrock/mixed", True, False),
        ]
        for profile, r, kind, name, invoked, delivered in cases:
            region = estate.BENCH_REGIONS[r]
            label = f"{profile} {region} {name}"
            assert (_invoked(c[profile], region, used) > 0) == invoked, label
            assert (r in estate.BENCH_USE.get(profile, {})) == invoked, label
            assert estate.BENCH_USE.get(profile, {}).get(r, False) == delivered, label
            found = (_newest_delivery(c[profile], region, name, acct[profile]) if kind == "s3"
                     else _stream(c[profile], region, name))
            assert bool(found) == delivered, label
        versioning = c["compliant"]("s3", "us-east-1").get_bucket_versioning(
            Bucket=f"bench-logs-{acct['compliant']}-us-east-1")  # GetBucketVersioningOutput.Status
        assert versioning["Status"] == "Enabled"

        org = estate.ActAs(url, None)("organizations")
        ous = {o["Id"]: o["Name"] for o in org.list_organizational_units_for_parent(
            ParentId=org.list_roots()["Roots"][0]["Id"])["OrganizationalUnits"]}
        # ListPoliciesResponse.Policies[] / ListTargetsForPolicyResponse.Targets[] (botocore organizations model)
        attached = {}
        for p in org.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]:
            targets = org.list_targets_for_policy(PolicyId=p["Id"])["Targets"]
            if p["Name"] != "FullAWSAccess":
                attached[p["Name"]] = sorted((t["Type"], ous.get(t["TargetId"])) for t in targets)
        assert attached == {name: [("ORGANIZATIONAL_UNIT", ou)] for ou, (name, _) in estate.BENCH_SCPS.items()}
        assert seeded["ous"] == {"Dev": 2, "Prod": 1, "Sandbox": 2, "Shared": 2, "root": 1}


@pytest.mark.parametrize(("name", "backdate", "stream", "ingested"), [
    ("the bench's proxy backdates ingestion to the last event", True,
     {"logStreamName": "s", "lastEventTimestamp": 1000, "lastIngestionTime": 9000}, 1000),
    ("other proxies keep moto's stamp", False,
     {"logStreamName": "s", "lastEventTimestamp": 1000, "lastIngestionTime": 9000}, 9000),
    ("a stream without events stays without an ingestion time", True, {"logStreamName": "s"}, None),
])
def test_describe_log_streams_ingestion_time(name: str, backdate: bool, stream: dict[str, Any],
                                             ingested: int | None) -> None:
    # DescribeLogStreamsResponse.logStreams[]: LogStream.lastEventTimestamp, lastIngestionTime (botocore logs model)
    body = json.dumps({"logStreams": [stream]}).encode()
    out = EvidenceAnswers(backdate_ingestion=backdate).amend(LOG_STREAMS_TARGET, "111111111111", "us-east-1",
                                                             200, body)
    assert json.loads(out)["logStreams"][0].get("lastIngestionTime") == ingested, name
