"""The record-and-replay stand-in: the same bench organization scanned on moto and on replay gives the same report."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from audit_bedrock.standin import replay, server
from audit_bedrock.standin.estate import (
    BENCH_REGIONS,
    BENCH_USE,
    bench_ou,
    bench_profile,
    bench_used_at,
    seed_bench,
)
from audit_bedrock.standin.evidence import EvidenceAnswers
from audit_bedrock.standin.proxy import Proxy, Reply, Request, parse
from tests.conftest import FAKE_ENV, cli_env, run_cli

pytestmark = pytest.mark.slow  # two moto servers, 23 seeded accounts, four scans: ~50 s

N = 15
CALLER_KEYS = (FAKE_ENV["AWS_ACCESS_KEY_ID"],)
FIXED = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Scan:
    doc: dict[str, Any]
    by_operation: dict[str, int]
    requests: int
    listed: tuple[str, ...]  # the Prefix of every s3:ListObjectsV2, sorted


def scan(url: str, out: Path, regions: Sequence[str] = BENCH_REGIONS) -> Scan:
    """One `audit-bedrock --org` process through a counting stand-in proxy in front of `url`."""
    listed: list[str] = []

    def keep(req: Request, reply: Reply) -> None:
        if req.operation == "ListObjectsV2":
            listed.extend(req.query.get("prefix") or ["(none)"])

    with Proxy(url, answers=EvidenceAnswers(backdate_ingestion=True), recorder=keep) as proxy:
        proc = run_cli(["--org", "--regions", ",".join(regions), "--output-dir", str(out), "-q", "-q",
                        "--fail-on", "none"], proxy.url)
        assert proc.returncode == 0, proc.stderr[-2000:]
        counts = proxy.counts.snapshot()
    return Scan(json.loads((out / "findings.json").read_text()), counts["by_operation"], counts["requests"],
                tuple(sorted(listed)))


@dataclass(frozen=True)
class World:
    recording: replay.Recording
    moto: Scan
    replayed: Scan
    again: Scan
    journals: tuple[list[tuple[int, bytes]], list[tuple[int, bytes]]]
    layout: replay.Layout
    stats: dict[str, Any]
    accounts: dict[str, str]  # seed_bench(N)'s account name -> id on moto


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("replay")
    used = bench_used_at()  # one day of use for the template and the organization, even across midnight
    rec = replay.record_bench(lambda url, regions: run_cli(
        ["--org", "--regions", ",".join(regions), "--output-dir", str(tmp / "template"), "-q", "-q",
         "--fail-on", "none"], url).check_returncode(), [BENCH_REGIONS], env=cli_env(None), used=used)
    with server.process(key_index=True, env=cli_env(None)) as moto:
        seeded = seed_bench(moto.url, N, used=used)
        on_moto = scan(moto.url, tmp / "moto")
        org = boto3.client("organizations", region_name="us-east-1", endpoint_url=moto.url,
                           aws_access_key_id="bench", aws_secret_access_key="bench")
        layout = replay.organization_layout(org, rec)
    journals = []
    scans = []
    now = dt.datetime.now(dt.UTC)  # one clock for both replays: their AssumeRole answers expire alike
    stats: dict[str, Any] = {}
    for i in range(2):
        r = replay.Replay(rec, layout, caller_keys=CALLER_KEYS, clock=lambda: now, journal=True)
        with replay.ReplayServer(r) as srv:
            scans.append(scan(srv.url, tmp / f"replay{i}"))
            with urllib.request.urlopen(srv.url + replay.CONTROL_PREFIX + "stats", timeout=10) as resp:
                stats[str(i)] = json.loads(resp.read())
        assert r.journal is not None
        journals.append(r.journal)
    yield World(rec, on_moto, scans[0], scans[1], (journals[0], journals[1]), layout, stats, seeded["accounts"])


def _findings(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted((f["id"], f["rule_id"], f["account_id"], f["region"], f["resource"], f["severity"], f["message"])
                  for f in doc["findings"])


def _coverage(doc: dict[str, Any]) -> list[str]:
    return sorted(json.dumps(c, sort_keys=True) for c in doc["coverage"])


def test_replay_and_moto_give_the_same_findings(world: World) -> None:
    assert world.moto.doc["findings"], "the bench organization has findings"
    assert _findings(world.replayed.doc) == _findings(world.moto.doc)


def test_replay_and_moto_give_the_same_coverage_and_accounts(world: World) -> None:
    assert _coverage(world.replayed.doc) == _coverage(world.moto.doc)
    accounts = [sorted(json.dumps(a, sort_keys=True) for a in s.doc["scan"]["accounts"])
                for s in (world.moto, world.replayed)]
    assert accounts[0] == accounts[1]
    assert len(world.moto.doc["scan"]["accounts"]) == N


def test_replay_and_moto_take_the_same_calls(world: World) -> None:
    assert world.replayed.doc["scan"]["api_calls"] == world.moto.doc["scan"]["api_calls"]
    assert world.replayed.by_operation == world.moto.by_operation
    assert world.replayed.requests == world.moto.requests
    assert world.replayed.listed == world.moto.listed


def test_replay_answers_every_request_from_the_recording(world: World) -> None:
    for stats in world.stats.values():
        assert stats["misses"] == [] and "missed" not in stats["stats"], stats
        assert stats["stats"]["replayed"] > N


def test_two_replays_answer_byte_for_byte_the_same(world: World) -> None:
    first, second = (Counter(j) for j in world.journals)
    assert first == second
    assert _findings(world.again.doc) == _findings(world.replayed.doc)


# --- the delivery evidence of BIL-022..BIL-025 is part of the bench organization ---

# Members 1..14 of seed_bench(15): each profile twice (profile i % 7), OUs i % 4 (Prod 3, Dev 4, Sandbox 4, Shared 3).
@pytest.mark.parametrize(("name", "operation", "calls"), [
    # each log group of a region where Bedrock was used: cloudwatch_images, cloudwatch_large, mixed (x2)
    ("the Bedrock stream of each used log group", "logs:DescribeLogStreams", 6),
    # compliant's 3 regions (x2), each delivered on the day of use: one listing each
    ("the newest delivered object of each used bucket", "s3:ListObjectsV2", 6),
    # one Metrics Insights query per logging-on region (as before; only its answers now hold use): compliant 3,
    # cloudwatch_images 2, cloudwatch_large 3, partial_types 2, dangling 2, mixed 2 (x2)
    ("Invocations per day where logging is on", "monitoring:GetMetricData", 2 * 14),
    ("the organization's SCPs, once per scan", "organizations:ListPolicies", 1),
    ("each SCP but FullAWSAccess", "organizations:DescribePolicy", 2),
    ("the targets of each SCP that may deny the logging actions", "organizations:ListTargetsForPolicy", 2),
    # logging-off regions: the management account's 3, and cloudwatch_images 1, disabled 3, partial_types 1,
    # dangling 1, mixed 1 (x2)
    ("who deleted logging, once per logging-off region", "cloudtrail:LookupEvents", 3 + 2 * 7),
])
def test_the_bench_scan_reads_the_delivery_evidence(world: World, name: str, operation: str, calls: int) -> None:
    assert world.moto.by_operation.get(operation, 0) == calls, name
    assert world.replayed.by_operation.get(operation, 0) == calls, name


def test_the_bench_lists_bedrocks_key_layout_of_each_used_bucket(world: World) -> None:
    compliant = sorted(a for n, a in world.accounts.items() if n != "management" and bench_profile(int(n[6:])) ==
                       "compliant")
    # ListObjectsV2 Prefix: PREFIX/AWSLogs/ACCOUNT/BedrockModelInvocationLogs/REGION/ (Bedrock's S3 layout)
    want = sorted(f"bedrock/AWSLogs/{a}/BedrockModelInvocationLogs/{r}/" for a in compliant for r in BENCH_REGIONS)
    assert list(world.moto.listed) == want


def _rule_cells(doc: dict[str, Any], rule: str, names: dict[str, str]) -> list[tuple[str, str | None, str, str]]:
    return sorted((names[f["account_id"]], f["region"], f["severity"], f["message"]) for f in doc["findings"]
                  if f["rule_id"] == rule)


def _expected_cells(rule: str, accounts: dict[str, str]) -> list[tuple[str, str | None, str, str]]:
    """BIL-022 or BIL-024 as the mix says: (account name, region, severity, what the message must contain)."""
    out: list[tuple[str, str | None, str, str]] = []
    for name in accounts:
        if name == "management":
            if rule == "BIL-024":
                out.append((name, None, "info", "is the management account"))
            continue
        i = int(name.removeprefix("bench-"))
        if rule == "BIL-022":
            out += [(name, BENCH_REGIONS[r], "high", "has had no log delivered since")
                    for r, delivered in BENCH_USE.get(bench_profile(i), {}).items() if not delivered]
        elif bench_ou(i) == "Dev":  # the Dev OU's SCP denies only the deletion
            out.append((name, None, "medium", "bedrock:PutModelInvocationLoggingConfiguration is not denied"))
        elif bench_ou(i) != "Prod":  # Prod's SCP denies both; Sandbox and Shared have none
            out.append((name, None, "medium", "has no service control policy in effect"))
    return sorted(out)


@pytest.mark.parametrize("rule", ["BIL-022", "BIL-024"])
def test_the_evidence_findings_are_where_the_mix_puts_them(world: World, rule: str) -> None:
    names = {a: n for n, a in world.accounts.items()}
    got = _rule_cells(world.moto.doc, rule, names)
    want = _expected_cells(rule, world.accounts)
    assert [g[:3] for g in got] == [w[:3] for w in want]
    assert all(w[3] in g[3] for g, w in zip(got, want, strict=True)), got
    assert got, rule


# --- protocol details, on the recorded template ---

def _signed(key: str, service: str, region: str = "us-east-1") -> dict[str, str]:
    """Headers with a SigV4 Authorization whose credential scope names key, region and service (the
    Authorization header's format: AWS General Reference, "Signature Version 4 signing process")."""
    return {"authorization": f"AWS4-HMAC-SHA256 Credential={key}/20261201/{region}/{service}/aws4_request, "
                             "SignedHeaders=host;x-amz-date, Signature=0"}


@pytest.mark.parametrize(("name", "key", "member"), [
    ("the caller's own key acts for the management account", CALLER_KEYS[0], "management"),
    ("a minted key spells its member", None, "member"),
    ("a minted key of an account outside the organization", replay.access_key_for("999999999999"), None),
    ("a moto-minted key the replay never gave out", "ASIAZZZZZZZZZZZZZZZZ", None),
])
def test_account_from_the_sigv4_access_key(world: World, name: str, key: str | None, member: str | None) -> None:
    r = replay.Replay(world.recording, world.layout, caller_keys=CALLER_KEYS)
    some = world.layout.members[3].id
    want = {"management": world.layout.management, "member": some, None: None}[member]
    req = parse("POST", "/", _signed(key or replay.access_key_for(some), "sts"), b"Action=GetCallerIdentity")
    assert r.account_of(req) == want, name


@pytest.mark.parametrize(("name", "key", "region", "status", "code"), [
    # bedrock GetModelInvocationLoggingConfiguration: GET /logging/modelinvocations (botocore bedrock model)
    ("recorded", "member", "us-east-1", 200, None),
    ("a region the template scan never read", "member", "ap-south-1", 500, "InternalFailure"),
    ("a key the replay never minted", "ASIAZZZZZZZZZZZZZZZZ", "us-east-1", 403, "InvalidClientTokenId"),
])
def test_unknown_requests_fail_loudly(world: World, name: str, key: str, region: str, status: int,
                                      code: str | None) -> None:
    r = replay.Replay(world.recording, world.layout, caller_keys=CALLER_KEYS)
    some = world.layout.members[3].id
    access = replay.access_key_for(some) if key == "member" else key
    reply = r.answer("GET", "/logging/modelinvocations", _signed(access, "bedrock", region), b"")
    assert reply.status == status, name
    if code:  # rest-json errors name their code in x-amzn-ErrorType (botocore RestJSONParser)
        assert reply.headers["x-amzn-ErrorType"].startswith(code)
    assert (r.snapshot()["misses"] != []) == (status == 500)


def test_assume_role_mints_a_key_of_the_target_with_its_ids(world: World) -> None:
    r = replay.Replay(world.recording, world.layout, caller_keys=CALLER_KEYS, clock=lambda: FIXED)
    target = world.layout.members[5]
    body = (f"Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A{target.id}%3Arole%2F"
            "AuditBedrockRole&RoleSessionName=audit-bedrock&DurationSeconds=3600").encode()
    headers = {**_signed(CALLER_KEYS[0], "sts"), "content-type": "application/x-www-form-urlencoded"}
    reply = r.answer("POST", "/", headers, body)
    # AssumeRoleResponse (botocore sts 2011-06-15): Credentials.AccessKeyId, Expiration; AssumedRoleUser.Arn
    text = reply.body.decode()
    assert reply.status == 200, text
    assert f"<AccessKeyId>{replay.access_key_for(target.id)}</AccessKeyId>" in text
    assert "<Expiration>2026-12-01T13:00:00.000Z</Expiration>" in text
    assert f"arn:aws:sts::{target.id}:assumed-role/" in text
    assert target.template not in text


@pytest.mark.parametrize(("name", "body_a", "body_b", "same"), [
    ("GetMetricData ignores the time window", {"StartTime": 1, "EndTime": 2, "MetricDataQueries": []},
     {"StartTime": 5, "EndTime": 9, "MetricDataQueries": []}, True),
    ("GetMetricData keeps its queries", {"StartTime": 1, "MetricDataQueries": []},
     {"StartTime": 1, "MetricDataQueries": [{"Id": "a"}]}, False),
])
def test_request_key(name: str, body_a: dict[str, Any], body_b: dict[str, Any], same: bool) -> None:
    def key(body: dict[str, Any]) -> str:
        headers = {**_signed("k", "monitoring"), "x-amz-target": "GraniteServiceVersion20100801.GetMetricData",
                   "content-type": "application/x-amz-json-1.0"}
        return replay.request_key("123456789012", parse("POST", "/", headers, json.dumps(body).encode()))
    assert (key(body_a) == key(body_b)) == same, name


def test_operations_with_the_same_body_have_their_own_keys() -> None:
    def key(op: str) -> str:
        headers = {**_signed("k", "organizations"), "x-amz-target": f"AWSOrganizationsV20161128.{op}"}
        return replay.request_key("123456789012", parse("POST", "/", headers, b"{}"))
    assert key("ListRoots") != key("ListAccounts")


@pytest.mark.parametrize(("name", "target_type", "refused"), [
    ("an SCP on an OU maps through the layout", "ORGANIZATIONAL_UNIT", False),
    ("an SCP on the root maps through the layout", "ROOT", False),
    ("an SCP on a template account would not map to N members", "ACCOUNT", True),
])
def test_scp_targets_must_map_through_the_layout(world: World, name: str, target_type: str, refused: bool) -> None:
    rec = replay.Recording.from_json(world.recording.to_json())
    target = {"ORGANIZATIONAL_UNIT": world.layout.ous[0][1], "ROOT": world.layout.root,
              "ACCOUNT": next(iter(rec.templates.values()))}[target_type]
    # ListTargetsForPolicyResponse.Targets[]: TargetId, Arn, Name, Type (botocore organizations model)
    body = json.dumps({"Targets": [{"TargetId": target, "Arn": "arn", "Name": "x", "Type": target_type}]}).encode()
    rec.answers["extra"] = replay.Answer(200, (), body)
    rec.described["extra"] = f"{rec.management} organizations:ListTargetsForPolicy us-east-1 POST /"
    if refused:
        with pytest.raises(ValueError, match="attaches SCPs to accounts"):
            replay.Replay(rec, world.layout, caller_keys=CALLER_KEYS)
    else:
        replay.Replay(rec, world.layout, caller_keys=CALLER_KEYS)
    assert bool(rec.bodies("organizations", "ListTargetsForPolicy")), name
