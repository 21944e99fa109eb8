"""The fix plan provably fixes: seed an estate with the covered faults, apply every step with each account's own
credentials, scan again: every covered finding is gone and no high or critical finding appears."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import xform_name
from botocore.exceptions import ClientError

from audit_bedrock.reports.fixplan import COVERED
from tests.conftest import load_json, run_cli, seed_demo
from tests.test_fixplan import validate_plan, validate_step

pytestmark = pytest.mark.slow

REGIONS = "us-east-1,us-west-2,eu-west-1"
MEMBER_ROLE = "OrganizationAccountAccessRole"  # the role moto (like Organizations) creates in each new account
CREDS = {"aws_access_key_id": "demo", "aws_secret_access_key": "demo"}


def scan(endpoint: str, out: Path, *extra: str) -> dict[str, Any]:
    proc = run_cli(["--org", "--role-name", MEMBER_ROLE, "--regions", REGIONS, "--output-dir", str(out),
                    "--format", "json,fix", *extra], endpoint, AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo")
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
    seed_demo(moto_subprocess)
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
