"""The scheduled scan's Lambda handlers and `--output-dir s3://...`, against moto (S3 in and out, SNS via SQS)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from audit_bedrock import aws_lambda, cli
from audit_bedrock.output import S3Writer, join, split_s3
from audit_bedrock.reports import FORMATS
from audit_bedrock.standin.evidence import demo_answers
from audit_bedrock.standin.proxy import Proxy
from tests.conftest import validate_findings

BUCKET = "audit-bedrock-reports"
REGIONS = "us-east-1,us-west-2,eu-west-1"


def s3_json(s3: Any, key: str, bucket: str = BUCKET) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


# ------------------------------------------------------------------------------------- --output-dir s3://

@pytest.mark.parametrize(("dest", "name", "expected"), [
    pytest.param("s3://b/p", "findings.json", "s3://b/p/findings.json", id="prefix"),
    pytest.param("s3://b/p/", "report.html", "s3://b/p/report.html", id="trailing-slash"),
    pytest.param("s3://b", "findings.sarif", "s3://b/findings.sarif", id="bucket-root"),
    pytest.param("out", "findings.json", str(Path("out") / "findings.json"), id="local"),
])
def test_join(dest: str, name: str, expected: str) -> None:
    assert join(dest, name) == expected


@pytest.mark.parametrize("url", [pytest.param("s3://", id="no-bucket"), pytest.param("s3:///key", id="empty-bucket")])
def test_split_s3_rejects_urls_without_a_bucket(url: str) -> None:
    from audit_bedrock.errors import UsageError

    with pytest.raises(UsageError, match="not an s3://bucket/prefix URL"):
        split_s3(url)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.mark.parametrize(("prefix", "formats"), [
    pytest.param("scans/2024", "json,html,sarif", id="all-formats"),
    pytest.param("", "json", id="bucket-root-json"),
])
def test_cli_writes_reports_to_s3(aws: None, capsys: pytest.CaptureFixture[str], prefix: str, formats: str) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    dest = f"s3://{BUCKET}/{prefix}" if prefix else f"s3://{BUCKET}"
    code = cli.main(["--regions", "us-east-1", "--output-dir", dest, "--format", formats])
    assert code == 1  # the caller's account has no logging: BIL-001 (high)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    want = {f"{prefix}/{FORMATS[f][0]}".lstrip("/") for f in formats.split(",")}
    assert keys == want
    doc = s3_json(s3, f"{prefix}/findings.json".lstrip("/"))
    validate_findings(doc)
    # BIL-024: an account outside any organization has no SCP that could protect its logging configuration.
    assert [f["rule_id"] for f in doc["findings"]] == ["BIL-001", "BIL-024"]
    head = s3.head_object(Bucket=BUCKET, Key=f"{prefix}/findings.json".lstrip("/"))
    assert head["ContentType"] == "application/json"
    assert f"{dest.rstrip('/')}/findings.json" in capsys.readouterr().out


def test_cli_s3_output_is_checked_before_the_scan(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--regions", "us-east-1", "--output-dir", "s3://no-such-bucket/x", "--format", "json"])
    assert code == 2  # refused before the first scan call: nothing was scanned
    err = capsys.readouterr().err
    assert "--output-dir s3://no-such-bucket/x: cannot write there" in err and "NoSuchBucket" in err


def test_cli_s3_write_failure_after_the_scan_exits_4(aws: None, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails at the end (the bucket removed during the scan) exits 4, not 2: the scan ran."""
    from audit_bedrock import api, constants

    monkeypatch.setattr(api, "check_outputs", lambda options: None)  # as if the bucket went away during the scan
    code = cli.main(["--regions", "us-east-1", "--output-dir", "s3://no-such-bucket/x", "--format", "json"])
    assert code == constants.EXIT_WRITE_FAILED
    err = capsys.readouterr().err
    assert "cannot write s3://no-such-bucket/x/findings.json" in err and "NoSuchBucket" in err


def test_cli_s3_renders_every_report_before_the_first_upload(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """issue 12: a renderer that fails (the last one here) leaves the prefix untouched: nothing was uploaded."""
    from audit_bedrock import reports

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    real = reports.streams

    def streams(fmt: str) -> Any:
        if fmt != "sarif":
            return real(fmt)

        def boom(result: Any, ctx: Any) -> Any:
            yield b"{"
            raise RuntimeError("a renderer bug")  # midway: the first chunk was written to its temporary file
        return [(name, boom) for name, _ in real(fmt)]

    monkeypatch.setattr("audit_bedrock.api.streams", streams)
    code = cli.main(["--regions", "us-east-1", "--output-dir", f"s3://{BUCKET}/x", "--format", "json,html,sarif"])
    assert code == cli.EXIT_INTERNAL
    assert not s3.list_objects_v2(Bucket=BUCKET, Prefix="x/").get("Contents")


def test_s3_writer_refuses_a_key_less_url() -> None:
    from audit_bedrock.errors import UsageError

    with pytest.raises(UsageError, match="names no object key"):
        S3Writer().write("s3://bucket/prefix/", b"{}")


# ----------------------------------------------------------------------------------- handler contracts

def test_report_files_are_the_renderers_files() -> None:
    assert tuple(FORMATS[f][0] for f in aws_lambda.REPORT_FORMATS) == aws_lambda.REPORT_FILES


@pytest.mark.parametrize(("event", "message"), [
    pytest.param({"shard": 1, "shard_count": 2}, "bad run_id", id="no-run-id"),
    pytest.param({"run_id": "../x", "shard": 1, "shard_count": 2}, "bad run_id", id="path-in-run-id"),
    pytest.param({"run_id": "r", "shard": 0, "shard_count": 2}, "bad shard", id="shard-zero"),
    pytest.param({"run_id": "r", "shard": 3, "shard_count": 2}, "beyond shard_count", id="shard-too-big"),
    pytest.param({"run_id": "r", "shard": "x", "shard_count": 2}, "bad shard", id="shard-not-a-number"),
    pytest.param({"run_id": "r", "shard": 1, "shard_count": True}, "bad shard_count", id="bool-count"),
])
def test_shard_handler_rejects_bad_events(monkeypatch: pytest.MonkeyPatch, event: dict[str, Any],
                                          message: str) -> None:
    monkeypatch.setenv(aws_lambda.ENV_BUCKET, BUCKET)
    with pytest.raises(aws_lambda.HandlerError, match=message):
        aws_lambda.shard_handler(event, None)


def shard_result(n: int, count: int, run: str = "r1") -> dict[str, Any]:
    return {"run_id": run, "shard": n, "shard_count": count, "exit_code": 0,
            "key": f"runs/{run}/shards/{n:04d}-of-{count:04d}/findings.json"}


@pytest.mark.parametrize(("shards", "message"), [
    pytest.param([], "no 'shards' list", id="empty"),
    pytest.param([shard_result(1, 3), shard_result(3, 3)], "incomplete", id="missing-shard"),
    pytest.param([shard_result(1, 2), shard_result(2, 3)], "inconsistent", id="mixed-counts"),
    pytest.param([shard_result(1, 1), shard_result(1, 1)], "inconsistent", id="duplicate"),
    pytest.param([shard_result(1, 1, run="other")], "is not under runs/r1/shards/", id="other-run"),
    pytest.param([{**shard_result(1, 1), "key": "latest/findings.json"}], "is not under", id="foreign-key"),
])
def test_merge_handler_rejects_bad_shard_lists(monkeypatch: pytest.MonkeyPatch, shards: list[dict[str, Any]],
                                               message: str) -> None:
    monkeypatch.setenv(aws_lambda.ENV_BUCKET, BUCKET)
    with pytest.raises(aws_lambda.HandlerError, match=message):
        aws_lambda.merge_handler({"run_id": "r1", "shards": shards}, None)


class FakeContext:
    """The one LambdaContext method the shard handler reads (AWS Lambda "Using the Lambda context object in
    Python": get_remaining_time_in_millis)."""

    def __init__(self, millis: int) -> None:
        self.millis = millis

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


@pytest.mark.parametrize(("context", "timeout"), [
    pytest.param(None, None, id="no-context"),
    pytest.param(FakeContext(900_000), 900 - aws_lambda.DEADLINE_MARGIN_SECONDS, id="fifteen-minutes"),
    pytest.param(FakeContext(10_000), 1.0, id="less-than-the-margin"),
])
def test_shard_scan_stops_before_the_function_times_out(monkeypatch: pytest.MonkeyPatch, context: Any,
                                                        timeout: float | None) -> None:
    """issue 12: the shard worker's scan gets the invocation's remaining time less a margin as its deadline,
    so it writes what it has (marked incomplete) before Lambda kills it."""
    seen: list[Any] = []
    monkeypatch.setenv(aws_lambda.ENV_BUCKET, BUCKET)
    monkeypatch.setattr(aws_lambda, "run_api", lambda options: seen.append(options) or 3)
    result = aws_lambda.shard_handler({"run_id": "r", "shard": 1, "shard_count": 1}, context)
    assert result["exit_code"] == 3
    assert [o.scan.timeout for o in seen] == [timeout]


def test_handlers_need_the_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(aws_lambda.ENV_BUCKET, raising=False)
    with pytest.raises(aws_lambda.HandlerError, match=aws_lambda.ENV_BUCKET):
        aws_lambda.shard_handler({"run_id": "r", "shard": 1, "shard_count": 1}, None)


@pytest.mark.parametrize(("env", "value", "message"), [
    pytest.param(aws_lambda.ENV_REGIONS, "us-east-1,mars-1", "--regions: unknown region 'mars-1'", id="bad-region"),
    pytest.param(aws_lambda.ENV_REGIONS, " , ", "--regions", id="empty-region-list"),
])
def test_a_config_error_fails_the_task_before_any_scan(monkeypatch: pytest.MonkeyPatch, env: str, value: str,
                                                      message: str) -> None:
    """The handler's options come from its environment; a bad value is a HandlerError (exit 2), nothing scanned."""
    monkeypatch.setenv(aws_lambda.ENV_BUCKET, BUCKET)
    monkeypatch.setenv(env, value)
    with pytest.raises(aws_lambda.HandlerError, match=message):
        aws_lambda.shard_handler({"run_id": "r", "shard": 1, "shard_count": 1}, None)


def test_options_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for env, value in ((aws_lambda.ENV_ROLE_NAME, "AuditRole"), (aws_lambda.ENV_EXTERNAL_ID, " x-1 "),
                       (aws_lambda.ENV_REGIONS, "all")):
        monkeypatch.setenv(env, value)
    options = aws_lambda.scan_options()
    assert (options.scan.role_name, options.scan.external_id, options.scan.fail_on, options.scope.regions) \
        == ("AuditRole", "x-1", "none", "all")


@pytest.mark.parametrize(("version", "ok"), [
    pytest.param("1.42.2", True, id="minimum"), pytest.param("1.44.0", True, id="newer"),
    pytest.param("1.42.1", False, id="older-patch"), pytest.param("1.40.61", False, id="older-minor"),
])
def test_old_botocore_is_refused(monkeypatch: pytest.MonkeyPatch, version: str, ok: bool) -> None:
    import botocore

    monkeypatch.setattr(botocore, "__version__", version)
    if ok:
        aws_lambda.check_sdk()
    else:
        with pytest.raises(aws_lambda.HandlerError, match="--include-sdk"):
            aws_lambda.check_sdk()


def finding(i: int, severity: str = "high", baseline: str = "new", status: str = "open") -> dict[str, Any]:
    return {"id": f"f{i}", "rule_id": "BIL-005", "severity": severity, "title": "log group missing",
            "account_id": "111111111111", "account_name": "prod", "region": "us-east-1", "status": status,
            "baseline": baseline}


@pytest.mark.parametrize(("findings", "expected"), [
    pytest.param([finding(1), finding(2, "critical")], ["f1", "f2"], id="new-high-and-critical"),
    pytest.param([finding(1, "medium"), finding(2, "low")], [], id="lower-severities"),
    pytest.param([finding(1, baseline="unchanged")], [], id="unchanged"),
    pytest.param([finding(1, status="suppressed")], [], id="suppressed"),
])
def test_new_findings(findings: list[dict[str, Any]], expected: list[str]) -> None:
    assert [f["id"] for f in aws_lambda.new_findings({"findings": findings})] == expected


@pytest.mark.parametrize(("count", "listed", "more"), [
    pytest.param(1, 1, None, id="one"),
    pytest.param(aws_lambda.MAX_LISTED + 7, aws_lambda.MAX_LISTED, "... and 7 more", id="truncated"),
])
def test_notification_text(count: int, listed: int, more: str | None) -> None:
    new = [finding(i) for i in range(count)]
    subject, message = aws_lambda.notification("run-9", new, aws_lambda.Layout(BUCKET), "runs/run-9/report",
                                               first_run=False, incomplete=True)
    assert subject == f"audit-bedrock: {count} new critical/high finding(s)" and len(subject) <= 100
    assert f"found {count} new critical or high" in message
    assert f"s3://{BUCKET}/runs/run-9/report/report.html" in message
    assert "incomplete" in message
    assert message.count("BIL-005 ") == listed
    assert (more in message) if more else "more" not in message


# ------------------------------------------------------------------- shard -> merge -> notify, end to end

@pytest.fixture
def lambda_env(moto_subprocess: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The demo organization, the report bucket, and a topic whose messages land in an SQS queue; every call goes
    through the stand-in proxy, which answers what moto lacks (CloudTrail LookupEvents), as --demo scans."""
    from tests.conftest import seed_demo

    ids = seed_demo(moto_subprocess)
    with Proxy(moto_subprocess, answers=demo_answers(ids)) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        sns, sqs = boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="audit-bedrock")["TopicArn"]
        queue = sqs.create_queue(QueueName="notifications")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        monkeypatch.setenv(aws_lambda.ENV_BUCKET, BUCKET)
        monkeypatch.setenv(aws_lambda.ENV_ROLE_NAME, "OrganizationAccountAccessRole")
        monkeypatch.setenv(aws_lambda.ENV_REGIONS, REGIONS)
        monkeypatch.setenv(aws_lambda.ENV_TOPIC_ARN, topic)
        yield {"ids": ids, "s3": s3, "sqs": sqs, "queue": queue, "endpoint": proxy.url}


def notifications(env: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    while True:
        msgs = env["sqs"].receive_message(QueueUrl=env["queue"], MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append(json.loads(m["Body"]))
            env["sqs"].delete_message(QueueUrl=env["queue"], ReceiptHandle=m["ReceiptHandle"])


def run_once(run_id: str, shards: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    results = [aws_lambda.shard_handler({"run_id": run_id, "shard": k, "shard_count": shards}, None)
               for k in range(1, shards + 1)]
    return results, aws_lambda.merge_handler({"run_id": run_id, "shards": results}, None)


@pytest.mark.slow
def test_scheduled_run_shards_merges_compares_and_notifies(lambda_env: dict[str, Any]) -> None:
    s3, ids = lambda_env["s3"], lambda_env["ids"]

    # Run 1: every shard writes its findings.json; the merge writes the three reports and latest/.
    shards, merged = run_once("run-1", 2)
    shard_ids: set[str] = set()
    for r in shards:
        doc = s3_json(s3, r["key"])
        validate_findings(doc)
        shard_ids |= {f["id"] for f in doc["findings"]}
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    for name in aws_lambda.REPORT_FILES:
        assert f"runs/run-1/report/{name}" in keys and f"latest/{name}" in keys
    report = s3_json(s3, "runs/run-1/report/findings.json")
    validate_findings(report)
    assert {f["id"] for f in report["findings"]} == shard_ids
    assert s3.head_object(Bucket=BUCKET, Key="latest/report.html")["ContentType"].startswith("text/html")
    high = [f for f in report["findings"] if f["severity"] in ("critical", "high") and f["status"] == "open"]
    assert high, "the demo estate has high findings"
    assert merged["first_run"] is True and merged["notified"] is True
    assert merged["new_critical_high"] == len(high)
    (note,) = notifications(lambda_env)
    assert note["Subject"] == f"audit-bedrock: {len(high)} new critical/high finding(s)"
    assert note["MessageAttributes"]["new_critical_high"]["Value"] == str(len(high))
    assert "first run" in note["Message"]

    # Run 2, same estate: nothing new, no notification.
    _, merged = run_once("run-2", 3)
    assert (merged["first_run"], merged["new_critical_high"], merged["notified"]) == (False, 0, False)
    assert notifications(lambda_env) == []
    assert all(f["baseline"] == "unchanged" for f in s3_json(s3, "latest/findings.json")["findings"])
    # The job passes its own history (runs/): run 2's report draws the trend over runs 1 and 2.
    html = s3.get_object(Bucket=BUCKET, Key="runs/run-2/report/report.html")["Body"].read().decode()
    assert 'id="trend"' in html and "Trend over 2 runs" in html

    # Run 3: logging switched off in a compliant account's region -> one new critical finding, notified: BIL-002,
    # not BIL-001, since the demo's evidence has Bedrock invoked in every region of security-tooling (issue 14).
    acct = ids["security-tooling"]
    sts = boto3.client("sts", region_name="us-east-1")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{acct}:role/OrganizationAccountAccessRole",
                            RoleSessionName="test")["Credentials"]
    boto3.client("bedrock", region_name="eu-west-1", aws_access_key_id=creds["AccessKeyId"],
                 aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"],
                 ).delete_model_invocation_logging_configuration()
    _, merged = run_once("run-3", 2)
    assert (merged["new_critical_high"], merged["notified"]) == (1, True)
    (note,) = notifications(lambda_env)
    assert note["Subject"] == "audit-bedrock: 1 new critical/high finding(s)"
    assert f"BIL-002  {acct} (security-tooling) eu-west-1" in note["Message"]
    assert f"s3://{BUCKET}/runs/run-3/report/report.html" in note["Message"]
