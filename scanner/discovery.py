"""Discovery: which accounts (Organizations) and which regions (botocore x ec2:DescribeRegions) to scan."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
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


@lru_cache(maxsize=1)
def bedrock_regions() -> tuple[str, ...]:
    """Every region where botocore knows a Bedrock endpoint (commercial partition)."""
    return tuple(botocore.session.get_session().get_available_regions("bedrock"))


@dataclass(frozen=True)
class Estate:
    """The accounts to scan, those listed but skipped, and the organization's id."""

    organization_id: str | None
    caller_account: str
    accounts: tuple[Account, ...]
    skipped: tuple[tuple[Account, str], ...] = ()


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(key) or [])
    return items


def ou_paths(org: Any) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Walk the OU tree from the root: (account id -> 'Root/OU/Sub', OU id -> account ids beneath it)."""
    roots = _pages(org, "list_roots", "Roots")
    path_of: dict[str, str] = {}
    under: dict[str, list[str]] = {}
    stack: list[tuple[str, str, list[str]]] = [(r["Id"], r.get("Name") or "Root", [r["Id"]]) for r in roots]
    while stack:
        parent_id, path, chain = stack.pop()
        for acct in _pages(org, "list_accounts_for_parent", "Accounts", ParentId=parent_id):
            path_of[acct["Id"]] = path
            for ancestor in chain:
                under.setdefault(ancestor, []).append(acct["Id"])
        for ou in _pages(org, "list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent_id):
            under.setdefault(ou["Id"], [])
            stack.append((ou["Id"], f"{path}/{ou.get('Name') or ou['Id']}", [*chain, ou["Id"]]))
    return path_of, under


def discover_accounts(org: Any, sts: Any, *, use_org: bool, accounts: Iterable[str] = (),
                      exclude: Iterable[str] = (), ous: Iterable[str] = ()) -> Estate:
    """Resolve the account set from flags: --org, --ou, --accounts, --exclude-accounts."""
    caller = sts.get_caller_identity()["Account"]
    wanted = list(dict.fromkeys(accounts))
    ous = list(ous)
    excluded = set(exclude)
    org_id: str | None = None
    need_org = use_org or bool(ous)
    try:
        org_id = org.describe_organization()["Organization"]["Id"]
    except (ClientError, BotoCoreError) as exc:
        if need_org:
            raise UsageError(f"cannot read the organization: {error_message(exc)}") from None
        log.info("not in an organization or not allowed to describe it: %s", error_message(exc))

    listed: dict[str, dict[str, Any]] = {}
    paths: dict[str, str] = {}
    under: dict[str, list[str]] = {}
    if org_id is not None:
        try:
            listed = {a["Id"]: a for a in _pages(org, "list_accounts", "Accounts")}
            paths, under = ou_paths(org)
        except (ClientError, BotoCoreError) as exc:
            if need_org:
                raise UsageError(f"cannot list the organization's accounts: {error_message(exc)}") from None
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
        status = str(meta.get("Status") or meta.get("State") or "ACTIVE")
        acct = Account(id=acct_id, name=str(meta.get("Name") or ""), ou_path=paths.get(acct_id, ""),
                       status=status)
        if status != "ACTIVE":
            skipped.append((acct, f"account is {status}"))
        else:
            scan.append(acct)
    return Estate(org_id, caller, tuple(scan), tuple(skipped))


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
