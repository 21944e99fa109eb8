"""Discovery: which accounts (Organizations) and which regions (botocore x ec2:DescribeRegions) to scan."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.exceptions import BotoCoreError, ClientError

from audit_bedrock.aws.errors import error_code, error_message
from audit_bedrock.errors import UsageError
from audit_bedrock.model import Account

log = logging.getLogger("audit_bedrock")

# Errors from a region that is not enabled for the account.
NOT_ENABLED_CODES = frozenset({"UnrecognizedClientException", "InvalidClientTokenId", "AuthFailure",
                               "OptInRequired"})


@lru_cache(maxsize=4)
def bedrock_regions(partition: str = "aws") -> tuple[str, ...]:
    """Every region where the installed botocore knows a Bedrock endpoint (commercial partition by default)."""
    return tuple(botocore.session.get_session().get_available_regions("bedrock", partition_name=partition))


# AWS's public parameters list every region of a service, newer ones included (SSM UG "Calling AWS service,
# Region, endpoint, Availability Zone, and local zone public parameters"): ssm:GetParametersByPath, once per scan.
SSM_BEDROCK_REGIONS = "/aws/service/global-infrastructure/services/bedrock/regions"
# "Currently, the path /aws/service/global-infrastructure is supported for queries in the following AWS Regions
# only" (same page); from any other region the query goes to us-east-1.
SSM_GLOBAL_INFRASTRUCTURE_REGIONS = frozenset({
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ap-east-1", "ap-south-1", "ap-northeast-2",
    "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "ca-central-1", "eu-central-1", "eu-west-1",
    "eu-west-2", "eu-west-3", "eu-north-1", "sa-east-1"})
SSM_ACTION = "ssm:GetParametersByPath"


@dataclass(frozen=True)
class RegionList:
    """The Bedrock regions of the caller's partition and where the list came from: "ssm" or "botocore"."""

    regions: tuple[str, ...]
    source: str


@lru_cache(maxsize=1)
def _endpoint_session() -> botocore.session.Session:
    """One botocore session for partition look-ups: each new session parses endpoints.json again (~25 ms)."""
    return botocore.session.get_session()


@lru_cache(maxsize=256)
def partition_of(region: str) -> str | None:
    """The partition of a region name by botocore's partition patterns (new regions included); None if none fits."""
    try:
        return str(_endpoint_session().get_partition_for_region(region))
    except (ValueError, BotoCoreError):  # UnknownRegionError is a ValueError
        return None


def ssm_query_region(home_region: str) -> str:
    """Where to ask for the public global-infrastructure parameters."""
    return home_region if home_region in SSM_GLOBAL_INFRASTRUCTURE_REGIONS else "us-east-1"


def bedrock_region_list(ssm: Any | None, partition: str = "aws") -> RegionList:
    """Bedrock's regions from the public SSM parameters (direct children of the path; their Value is the region
    code), kept to `partition`; botocore's list when they cannot be read or list none of the partition."""
    if ssm is not None:
        try:
            pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=SSM_BEDROCK_REGIONS, Recursive=False)
            values = [str(p.get("Value") or "") for page in pages for p in page.get("Parameters") or []
                      if isinstance(p, dict)]
        except (ClientError, BotoCoreError) as exc:
            code = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
            log.info("%s %s failed (%s); using botocore's Bedrock regions", SSM_ACTION, SSM_BEDROCK_REGIONS, code)
        else:
            regions = tuple(sorted({v for v in values if v and partition_of(v) == partition}))
            if regions:
                return RegionList(regions, "ssm")
            log.info("%s listed no Bedrock region of partition %s; using botocore's", SSM_BEDROCK_REGIONS, partition)
    return RegionList(bedrock_regions(partition), "botocore")


@dataclass(frozen=True)
class Estate:
    """The accounts to scan, those listed but skipped, and the organization's id."""

    organization_id: str | None
    caller_account: str
    accounts: tuple[Account, ...]
    skipped: tuple[tuple[Account, str], ...] = ()
    # Every ACTIVE account of the organization, selected or not: where a resource of another account
    # (a bucket's KMS key) can be read through the audit role.
    members: frozenset[str] = frozenset()
    # What discovery learnt about the organization for the SCP reads (collectors/scp.py), at no extra call:
    # management_account, feature_set, root_policy_types, chains (account id -> [root id, OU ids...]).
    organization: Mapping[str, Any] = field(default_factory=dict)


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(key) or [])
    return items


def ou_paths(org: Any, walk: dict[str, Any] | None = None) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Walk the OU tree from the root: (account id -> 'Root/OU/Sub', OU id -> account ids beneath it).

    `walk`, when given, also receives "roots" (ListRoots' answer) and "chains" (account id -> the ids of the
    root and every OU above it, outermost first): where service control policies attach.
    """
    roots = _pages(org, "list_roots", "Roots")
    chains: dict[str, list[str]] = {}
    if walk is not None:
        walk.update(roots=roots, chains=chains)
    path_of: dict[str, str] = {}
    under: dict[str, list[str]] = {}
    stack: list[tuple[str, str, list[str]]] = [(r["Id"], r.get("Name") or "Root", [r["Id"]]) for r in roots]
    while stack:
        parent_id, path, chain = stack.pop()
        for acct in _pages(org, "list_accounts_for_parent", "Accounts", ParentId=parent_id):
            path_of[acct["Id"]] = path
            chains[acct["Id"]] = chain
            for ancestor in chain:
                under.setdefault(ancestor, []).append(acct["Id"])
        for ou in _pages(org, "list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent_id):
            under.setdefault(ou["Id"], [])
            stack.append((ou["Id"], f"{path}/{ou.get('Name') or ou['Id']}", [*chain, ou["Id"]]))
    return path_of, under


def account_state(meta: dict[str, Any]) -> str:
    """An account's state: `State` first (Organizations retired `Status` in September 2026), then `Status`.

    An account not listed by Organizations (no organization, or not readable) is taken as ACTIVE: it is
    scanned, and an account that cannot be entered is then a scan error, never a silent skip.
    """
    return str(meta.get("State") or meta.get("Status") or "ACTIVE")


ORG_HELP = ("--org and --ou need the organization's management account or an Organizations delegated "
            "administrator (README: \"Run from a delegated administrator\"); or name the accounts with --accounts")


def org_access_message(caller: str, what: str, exc: Exception) -> str:
    """One line for an Organizations read refused to the caller: what failed, why, and what to do instead."""
    code = error_code(exc) if isinstance(exc, ClientError) else ""
    if code == "AWSOrganizationsNotInUseException":
        return (f"account {caller} is not in an organization ({error_message(exc)}); "
                "scan it without --org, or name the accounts with --accounts")
    if code in ("AccessDeniedException", "AccessDenied", "ParentNotFoundException"):
        return f"{what} from account {caller} ({error_message(exc)}): {ORG_HELP}"
    return f"{what}: {error_message(exc)}"


def discover_accounts(org: Any, sts: Any, *, use_org: bool, accounts: Iterable[str] = (),
                      exclude: Iterable[str] = (), ous: Iterable[str] = ()) -> Estate:
    """Resolve the account set from flags: --org, --ou, --accounts, --exclude-accounts."""
    caller = sts.get_caller_identity()["Account"]
    wanted = list(dict.fromkeys(accounts))
    ous = list(ous)
    excluded = set(exclude)
    org_id: str | None = None
    need_org = use_org or bool(ous)
    organization: dict[str, Any] = {}
    try:
        described = org.describe_organization()["Organization"]
        org_id = described["Id"]
        organization.update(management_account=described.get("MasterAccountId"),
                            feature_set=described.get("FeatureSet"))
    except (ClientError, BotoCoreError) as exc:
        if need_org:
            raise UsageError(org_access_message(caller, "cannot read the organization", exc)) from None
        log.info("not in an organization or not allowed to describe it: %s", error_message(exc))

    listed: dict[str, dict[str, Any]] = {}
    paths: dict[str, str] = {}
    under: dict[str, list[str]] = {}
    walk: dict[str, Any] = {}
    if org_id is not None:
        try:
            listed = {a["Id"]: a for a in _pages(org, "list_accounts", "Accounts")}
            paths, under = ou_paths(org, walk)
            organization.update(chains=walk["chains"], root_policy_types=[
                t for r in walk["roots"] for t in r.get("PolicyTypes") or []])
        except (ClientError, BotoCoreError) as exc:
            if need_org:
                raise UsageError(org_access_message(caller, "cannot list the organization's accounts", exc)) from None
            log.info("cannot list the organization's accounts: %s", error_message(exc))
            listed, paths = {}, {}

    if use_org:
        ids = list(listed)
    elif ous:
        ids = []
        for ou in ous:
            if ou not in under:
                raise UsageError(f"--ou {ou}: no such organizational unit (or root) in {org_id}")
            ids.extend(under[ou])
    else:
        ids = wanted or [caller]
    if (use_org or ous) and wanted:
        keep = set(wanted)
        ids = [i for i in ids if i in keep]
    ids = [i for i in dict.fromkeys(ids) if i not in excluded]

    scan: list[Account] = []
    skipped: list[tuple[Account, str]] = []
    for acct_id in sorted(ids):
        meta = listed.get(acct_id, {})
        status = account_state(meta)
        acct = Account(id=acct_id, name=str(meta.get("Name") or ""), ou_path=paths.get(acct_id, ""),
                       status=status)
        if status != "ACTIVE":
            skipped.append((acct, f"account is {status}"))
        else:
            scan.append(acct)
    members = frozenset(i for i, meta in listed.items() if account_state(meta) == "ACTIVE")
    return Estate(org_id, caller, tuple(scan), tuple(skipped), members, organization)


def enabled_regions(ec2: Any) -> set[str] | None:
    """Regions enabled in the account, or None when DescribeRegions cannot be read."""
    try:
        resp = ec2.describe_regions(AllRegions=True)
    except (ClientError, BotoCoreError) as exc:
        code = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        log.warning("ec2:DescribeRegions failed (%s); scanning every requested region", code)
        return None
    return {r["RegionName"] for r in resp.get("Regions") or []
            if r.get("RegionName") and r.get("OptInStatus") != "not-opted-in"}
