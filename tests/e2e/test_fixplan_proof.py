"""The fix plan provably fixes: seed an estate with the covered faults, apply every step with each account's own
credentials, scan again: every covered finding is gone and no high or critical finding appears."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import xform_name
from botocore.exceptions import ClientError

from audit_bedrock.reports.fixplan import COVERED
from audit_bedrock.standin import estate as builders  # the stand-in toolkit's estate builders
from audit_bedrock.standin.evidence import EvidenceAnswers
from audit_bedrock.standin.proxy import Proxy
from tests.conftest import load_json, run_cli
from tests.unit.reports.test_fixplan import validate_plan, validate_step

pytestmark = pytest.mark.slow

REGIONS = "us-east-1,us-west-2"
MEMBER_ROLE = builders.MEMBER_ROLE  # the role moto (like Organizations) creates in each new account
CREDS = {"aws_access_key_id": "demo", "aws_secret_access_key": "demo"}


def seed_faults(endpoint: str) -> dict[str, str]:
    """An organization whose one member account shows every covered fault (the comments name the rules)."""
    mgmt = builders.AccountClients(endpoint, dict(CREDS))
    acct = builders.organization(mgmt).add_account("faulty")
    c = builders.assume(mgmt, acct)
    # us-east-1: CloudWatch to a log group that does not exist (BIL-005), through a role whose trust has no
    # confused-deputy conditions (BIL-008) and whose policy names another group (BIL-009); the large-data
    # bucket has no policy (BIL-012), ACLs enabled (BIL-018), no lifecycle (BIL-015) and a key that does not
    # admit Bedrock (BIL-019); video is not delivered (BIL-003).
    east = "us-east-1"
    role = builders.delivery_role(c, "BedrockLogs", builders.trust(None),
                                  inline=builders.log_write_policy(acct, east, "/bedrock/old"))
    large = f"large-{acct}"
    builders.log_bucket(c, acct, east, large, "large", bedrock=False, enforced=False, lifecycle=False,
                        kms=builders.kms_key(c, acct, east, bedrock=False))
    builders.put_logging(c, east, {"cloudWatchConfig": builders.cloudwatch_config("/bedrock/missing", role,
                                                                                  (large, "large")),
                                   **builders.ALL_TYPES, "videoDataDeliveryEnabled": False})
    # us-west-2: S3 to a public bucket (BIL-013) whose key is pending deletion (BIL-019); CloudWatch to a group
    # that never expires (BIL-014) through a role that trusts EC2, not Bedrock (BIL-007).
    west = "us-west-2"
    public = f"public-{acct}"
    builders.log_bucket(c, acct, west, public, "bedrock", public_read=True, block_public=False,
                        kms=builders.kms_key(c, acct, west, state="PendingDeletion"))
    builders.log_group(c, west, "/bedrock/west")
    ec2_role = builders.delivery_role(c, "BedrockLogsWest", builders.trust(None, "ec2.amazonaws.com"),
                                      inline=builders.log_write_policy(acct, west, "/bedrock/west"))
    builders.put_logging(c, west, {"s3Config": {"bucketName": public, "keyPrefix": "bedrock"},
                                   "cloudWatchConfig": builders.cloudwatch_config("/bedrock/west", ec2_role),
                                   **builders.ALL_TYPES})
    return {"faulty": acct}


def scan(endpoint: str, out: Path, *extra: str) -> dict[str, Any]:
    """Scan through the stand-in proxy, which answers what moto lacks (CloudTrail LookupEvents: moto's HTTP 500
    would be retried with backoff in every account and region) with an empty event history."""
    with Proxy(endpoint, answers=EvidenceAnswers()) as proxy:
        proc = run_cli(["--org", "--role-name", MEMBER_ROLE, "--regions", REGIONS, "--output-dir", str(out),
                        "--format", "json,fix", *extra], proxy.url, AWS_ACCESS_KEY_ID="demo",
                       AWS_SECRET_ACCESS_KEY="demo")
    assert proc.returncode in (1, 3), proc.stderr
    doc: dict[str, Any] = load_json(out / "findings.json")
    return doc


def account_client(endpoint: str, caller: str, account: str, service: str, region: str | None) -> Any:
    """A client with the account's own credentials: the caller's, or the member role's."""
    creds: dict[str, str] = dict(CREDS)
    if account != caller:
        sts = boto3.client("sts", region_name="us-east-1", endpoint_url=endpoint, **CREDS)
        got = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{MEMBER_ROLE}",
                              RoleSessionName="apply-fix-plan")["Credentials"]
        creds = {"aws_access_key_id": got["AccessKeyId"], "aws_secret_access_key": got["SecretAccessKey"],
                 "aws_session_token": got["SessionToken"]}
    return boto3.client(service, region_name=region or "us-east-1", endpoint_url=endpoint, **creds)


def apply_plan(endpoint: str, caller: str, plan: dict[str, Any]) -> None:
    for step in plan["steps"]:
        client = account_client(endpoint, caller, step["account_id"], step["service"], step["region"])
        try:
            getattr(client, xform_name(step["operation"]))(**step["parameters"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] != step.get("ok_if_error"):
                raise


def test_applying_the_plan_fixes_every_covered_finding(moto_subprocess: str, tmp_path: Path) -> None:
    seed_faults(moto_subprocess)
    before = scan(moto_subprocess, tmp_path / "before")
    plan = json.loads((tmp_path / "before" / "fix-plan.json").read_text())
    validate_plan(plan)
    from audit_bedrock.reports.fixplan import Step
    for s in plan["steps"]:
        validate_step(Step(s["account_id"], s["region"], s["service"], s["operation"], s["parameters"],
                           tuple(s["fixes"]), s["note"]))
    open_before = {f["id"]: f for f in before["findings"] if f["status"] == "open"}
    covered = {i for s in plan["steps"] for i in s["fixes"]}
    assert {open_before[i]["rule_id"] for i in covered} == set(COVERED)  # the estate shows every covered fault
    caller = before["scan"]["caller_account"]

    apply_plan(moto_subprocess, caller, plan)
    after = scan(moto_subprocess, tmp_path / "after")
    open_after = {f["id"]: f for f in after["findings"] if f["status"] == "open"}
    assert sorted(open_after[i]["rule_id"] for i in covered & set(open_after)) == []
    worse = [(f["rule_id"], f["severity"], f["message"]) for i, f in open_after.items()
             if f["severity"] in ("critical", "high") and (i not in open_before
                                                            or open_before[i]["severity"] not in ("critical", "high"))]
    assert worse == []

    # idempotent: applying the same plan again changes nothing the scan can see
    apply_plan(moto_subprocess, caller, plan)
    again = scan(moto_subprocess, tmp_path / "again")
    assert sorted(f["id"] for f in again["findings"]) == sorted(f["id"] for f in after["findings"])


def member_credentials(endpoint: str, caller: str, account: str) -> dict[str, str]:
    if account == caller:
        return dict(CREDS)
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=endpoint, **CREDS)
    got = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{MEMBER_ROLE}",
                          RoleSessionName="apply-fix-plan")["Credentials"]
    return {"aws_access_key_id": got["AccessKeyId"], "aws_secret_access_key": got["SecretAccessKey"],
            "aws_session_token": got["SessionToken"]}


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_running_fix_plan_sh_with_the_aws_cli_fixes_every_covered_finding(moto_subprocess: str,
                                                                          tmp_path: Path) -> None:
    """The same proof through fix-plan.sh and the real AWS CLI: one named profile per account (its own
    credentials), `bash fix-plan.sh`, scan again."""
    import configparser
    import os
    import subprocess

    seed_faults(moto_subprocess)
    before = scan(moto_subprocess, tmp_path / "before")
    plan = json.loads((tmp_path / "before" / "fix-plan.json").read_text())
    caller = before["scan"]["caller_account"]
    creds = configparser.ConfigParser()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    for account in {s["account_id"] for s in plan["steps"]}:
        creds[f"acct-{account}"] = member_credentials(moto_subprocess, caller, account)
        env[f"PROFILE_{account}"] = f"acct-{account}"
    with (tmp_path / "credentials").open("w") as fh:
        creds.write(fh)
    (tmp_path / "config").write_text("")
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"), AWS_CONFIG_FILE=str(tmp_path / "config"),
               AWS_ENDPOINT_URL=moto_subprocess, AWS_DEFAULT_REGION="us-east-1")
    for attempt in ("first", "again"):  # re-running it is safe: the create answers "already done"
        proc = subprocess.run(["bash", str(tmp_path / "before" / "fix-plan.sh")], env=env, capture_output=True,
                              text=True, timeout=600, check=False)
        assert proc.returncode == 0, (attempt, proc.stdout[-2000:], proc.stderr[-3000:])
    assert "already done (ResourceAlreadyExistsException)" in proc.stdout
    after = scan(moto_subprocess, tmp_path / "after")
    open_before = {f["id"]: f for f in before["findings"] if f["status"] == "open"}
    open_after = {f["id"]: f for f in after["findings"] if f["status"] == "open"}
    covered = {i for s in plan["steps"] for i in s["fixes"]}
    assert {open_before[i]["rule_id"] for i in covered} == set(COVERED)
    assert sorted(open_after[i]["rule_id"] for i in covered & set(open_after)) == []
    worse = [(f["rule_id"], f["severity"]) for i, f in open_after.items()
             if f["severity"] in ("critical", "high") and (i not in open_before
                                                            or open_before[i]["severity"] not in ("critical", "high"))]
    assert worse == []
