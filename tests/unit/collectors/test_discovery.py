"""Discovery and collection on mock_aws: paging, nested OUs, suspended accounts, the caller, AssumeRole denied."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from audit_bedrock import collectors
from audit_bedrock.aws.clients import MAX_ATTEMPTS, Sessions
from audit_bedrock.collectors.scp import read_scps
from audit_bedrock.config import Config
from audit_bedrock.discovery import bedrock_regions, discover_accounts, enabled_regions
from audit_bedrock.engine import Evaluator, load_rules
from audit_bedrock.findings import FindingBuilder
from audit_bedrock.scan import Accumulator, Scanner, ScanPlan

CALLER = "123456789012"


@pytest.fixture
def org() -> Iterator[dict[str, Any]]:
    """An organization of 120 member accounts in nested OUs, one suspended."""
    with mock_aws():
        client = boto3.client("organizations", region_name="us-east-1")
        client.create_organization(FeatureSet="ALL")
        root = client.list_roots()["Roots"][0]["Id"]
        prod = client.create_organizational_unit(ParentId=root, Name="Prod")["OrganizationalUnit"]["Id"]
        pay = client.create_organizational_unit(ParentId=prod, Name="Payments")["OrganizationalUnit"]["Id"]
        deep = client.create_organizational_unit(ParentId=pay, Name="Cards")["OrganizationalUnit"]["Id"]
        ids = []
        for i in range(120):
            acct = client.create_account(AccountName=f"acct-{i:03d}", Email=f"a{i}@example.com")
            ids.append(acct["CreateAccountStatus"]["AccountId"])
        client.move_account(AccountId=ids[0], SourceParentId=root, DestinationParentId=prod)
        client.move_account(AccountId=ids[1], SourceParentId=root, DestinationParentId=pay)
        client.move_account(AccountId=ids[2], SourceParentId=root, DestinationParentId=deep)
        client.close_account(AccountId=ids[3])
        yield {"client": client, "ids": ids, "root": root, "prod": prod, "pay": pay, "deep": deep}


def _clients() -> tuple[Any, Any]:
    return boto3.client("organizations", region_name="us-east-1"), boto3.client("sts", region_name="us-east-1")


def test_org_pages_through_every_account(org: dict[str, Any]) -> None:
    orgc, sts = _clients()
    estate = discover_accounts(orgc, sts, use_org=True)
    scanned = {a.id for a in estate.accounts}
    assert len(scanned) + len(estate.skipped) == 121  # 120 members + the management account
    assert CALLER in scanned
    assert set(org["ids"]) - {org["ids"][3]} <= scanned
    assert [(a.id, r) for a, r in estate.skipped] == [(org["ids"][3], "account is SUSPENDED")]
    paths = {a.id: a.ou_path for a in estate.accounts}
    assert paths[org["ids"][0]] == "Root/Prod"
    assert paths[org["ids"][2]] == "Root/Prod/Payments/Cards"
    assert paths[org["ids"][50]] == "Root"
    assert estate.organization_id and estate.organization_id.startswith("o-")


@pytest.mark.parametrize(
    ("ou_key", "expected_idx"),
    [pytest.param("prod", {0, 1, 2}, id="recursive-from-prod"),
     pytest.param("pay", {1, 2}, id="nested-payments"),
     pytest.param("deep", {2}, id="leaf-ou")],
)
def test_ou_walks_recursively(org: dict[str, Any], ou_key: str, expected_idx: set[int]) -> None:
    orgc, sts = _clients()
    estate = discover_accounts(orgc, sts, use_org=False, ous=[org[ou_key]])
    assert {a.id for a in estate.accounts} == {org["ids"][i] for i in expected_idx}


def test_accounts_and_exclude_narrow_the_set(org: dict[str, Any]) -> None:
    orgc, sts = _clients()
    ids = org["ids"]
    estate = discover_accounts(orgc, sts, use_org=True, accounts=[ids[5], ids[6], ids[3]], exclude=[ids[6]])
    assert [a.id for a in estate.accounts] == [ids[5]]
    assert [a.id for a, _ in estate.skipped] == [ids[3]]


def test_without_org_flags_only_the_caller(org: dict[str, Any]) -> None:
    orgc, sts = _clients()
    estate = discover_accounts(orgc, sts, use_org=False)
    assert [a.id for a in estate.accounts] == [CALLER]


def test_enabled_regions_skip_not_opted_in(org: dict[str, Any]) -> None:
    regions = enabled_regions(boto3.client("ec2", region_name="us-east-1"))
    assert regions is not None and "us-east-1" in regions
    assert "me-south-1" not in regions  # an opt-in region moto reports as not-opted-in
    assert set(bedrock_regions()) >= {"us-east-1", "eu-west-1"}


def _scan(org: dict[str, Any], accounts: list[str], sessions: Sessions) -> Accumulator:
    orgc, sts = _clients()
    estate = discover_accounts(orgc, sts, use_org=True, accounts=accounts)
    plan = ScanPlan(estate, ("us-east-1", "me-south-1"), "OrganizationAccountAccessRole", "ext-123", 4,
                    settings={"scp": read_scps(orgc, estate)})
    acc = Accumulator(Evaluator(load_rules(), Config().rule_params()), FindingBuilder(Config()), keep_facts=True)
    Scanner(sessions, plan).run(estate.accounts, acc.add)
    return acc


def test_scan_enters_members_by_role_and_caller_directly(org: dict[str, Any]) -> None:
    member = org["ids"][10]
    assumed: list[dict[str, Any]] = []

    def spy(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "AssumeRole":
            assumed.append(params["body"])

    sessions = Sessions(declared_actions=collectors.required_actions())
    sessions.add_hook(spy)
    boto3.client("bedrock", region_name="us-east-1").put_model_invocation_logging_configuration(
        loggingConfig={"s3Config": {"bucketName": "caller-logs"}, "textDataDeliveryEnabled": True})
    acc = _scan(org, [CALLER, member], sessions)
    assert [p["RoleArn"] for p in assumed] == [f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole"]
    assert assumed[0]["RoleSessionName"] == "audit-bedrock" and assumed[0]["ExternalId"] == "ext-123"
    docs = {d["account_id"]: d for d in acc.facts}
    # The caller's own account is read with the caller's credentials: its logging config is visible.
    caller_us = next(r for r in docs[CALLER]["regions"] if r["region"] == "us-east-1")
    assert caller_us["logging"]["enabled"] is True
    member_us = next(r for r in docs[member]["regions"] if r["region"] == "us-east-1")
    assert member_us["logging"]["enabled"] is False  # a different account's (empty) configuration
    skipped = [r for r in docs[member]["regions"] if r["region"] == "me-south-1"]
    assert skipped[0]["status"] == "skipped"
    assert sessions.calls.duplicates == 0


def test_assume_role_denied_gives_scan_001_and_keeps_the_others(org: dict[str, Any]) -> None:
    denied, fine = org["ids"][20], org["ids"][21]

    def deny(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "AssumeRole" and f"::{denied}:" in params["body"]["RoleArn"]:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized to assume"}},
                              "AssumeRole")

    sessions = Sessions(declared_actions=collectors.required_actions())
    sessions.add_hook(deny)
    acc = _scan(org, [denied, fine], sessions)
    status = {o.id: o.status for o in acc.outcomes}
    assert status == {denied: "error", fine: "scanned"}
    rules_by_account: dict[str, set[str]] = {}
    for f in acc.findings:
        rules_by_account.setdefault(f.account_id, set()).add(f.rule_id)
    assert rules_by_account[denied] == {"SCAN-001"}
    assert rules_by_account[fine] == {"BIL-001", "BIL-024"}  # the SCP policy type is not enabled here
    assert acc.incomplete
    msg = next(f.message for f in acc.findings if f.rule_id == "SCAN-001")
    assert "AccessDenied" in msg


def test_clients_use_adaptive_retries_and_timeouts() -> None:
    with mock_aws():
        sessions = Sessions()
        client = sessions.client("bedrock", "us-east-1", sessions.caller_credentials(), CALLER)
        cfg = client.meta.config
        # The shared client never retries by itself: KeyedRetries runs botocore's standard + adaptive retries per
        # account (issue 16), with MAX_ATTEMPTS attempts.
        from botocore.retries.adaptive import ClientRateLimiter

        retries = sessions.retries("bedrock", "us-east-1")
        assert cfg.retries["total_max_attempts"] == 1 and retries is not None
        assert retries._max_attempts == MAX_ATTEMPTS >= 8
        assert isinstance(retries.state(CALLER).limiter, ClientRateLimiter)
        assert cfg.connect_timeout and cfg.read_timeout


def test_assumed_credentials_refresh_themselves(org: dict[str, Any]) -> None:
    sessions = Sessions()
    creds = sessions.assume(org["ids"][30], "OrganizationAccountAccessRole", None, CALLER)
    first = creds.get_frozen_credentials().access_key
    creds._expiry_time = creds._expiry_time.replace(year=2000)  # simulate a scan that outlived them
    assert creds.refresh_needed()
    assert creds.get_frozen_credentials().access_key != first


# Organizations API reference, ListAccounts / DescribeOrganization "Errors": AccessDeniedException,
# AWSOrganizationsNotInUseException; botocore organizations service-2.json error shapes of the same names.
@pytest.mark.parametrize(("code", "expect"), [
    pytest.param("AccessDeniedException", ["from account 222222222222", "management account",
                                           "delegated administrator", "--accounts"], id="member-account"),
    pytest.param("AWSOrganizationsNotInUseException", ["not in an organization", "--accounts"], id="no-organization"),
    pytest.param("TooManyRequestsException", ["cannot list", "TooManyRequestsException"], id="other-error"),
])
def test_org_refusal_says_what_to_do(code: str, expect: list[str]) -> None:
    from botocore.exceptions import ClientError

    from audit_bedrock.discovery import org_access_message

    exc = ClientError({"Error": {"Code": code, "Message": "nope"}}, "ListAccounts")
    msg = org_access_message("222222222222", "cannot list the organization's accounts", exc)
    for text in expect:
        assert text in msg
