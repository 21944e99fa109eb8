"""Collector: the service control policies (BIL-024), read once per scan, and those on each account's path.

The caller reads them once (ListPolicies, DescribePolicy of each, ListTargetsForPolicy of each that could
deny the protected actions), in its own account; discovery's OU walk already knows each account's root and
OUs, so no ListParents is needed. The AWS managed FullAWSAccess is assumed attached at every level (its
content is fixed and its target list is the whole organization): a level where it was replaced by an
allow list is then not credited as protection, which errs towards a finding, never towards a pass.
"""

from __future__ import annotations

import json
from typing import Any

from audit_bedrock.analyzer import PolicyError, matches, parse
from audit_bedrock.collectors.base import AccountContext, Failure, call, paginate
from audit_bedrock.discovery import Estate
from audit_bedrock.evidence import PROTECTED_ACTIONS
from audit_bedrock.facts import gap

SCP_TYPE = "SERVICE_CONTROL_POLICY"
FULL_ACCESS_ID = "p-FullAWSAccess"
# Caller-side reads, covered by the caller policy's organizations:List*/Describe* (policy.CALLER_ORG_ACTIONS).
CALLER_ACTIONS = ("organizations:ListPolicies", "organizations:DescribePolicy", "organizations:ListTargetsForPolicy")


def may_deny(document: Any) -> bool:
    """Whether a policy has a Deny whose actions could cover a protected action (unparseable: True, judged later)."""
    try:
        statements = parse(document)
    except PolicyError:
        return True
    for stmt in statements:
        if stmt["Effect"] != "Deny":
            continue
        if "Action" in stmt and any(matches(p, a, ignore_case=True) for p in stmt["Action"] for a in PROTECTED_ACTIONS):
            return True
        if "NotAction" in stmt and not all(any(matches(p, a, ignore_case=True) for p in stmt["NotAction"])
                                           for a in PROTECTED_ACTIONS):
            return True
        if "Action" not in stmt and "NotAction" not in stmt:
            return True
    return False


def _document(content: Any) -> Any:
    try:
        return json.loads(content) if isinstance(content, str) else content
    except json.JSONDecodeError:
        return content  # kept verbatim; the analysis reports it as unparseable


def read_scps(org: Any, estate: Estate) -> dict[str, Any]:
    """The organization's SCP snapshot for this scan: status, the policies that may deny, where each is attached."""
    meta = estate.organization
    out: dict[str, Any] = {"organization_id": estate.organization_id,
                           "management_account": meta.get("management_account")}
    if estate.organization_id is None:
        return {**out, "status": "no_organization", "reason": "the account is not in an organization"}
    if "chains" not in meta:
        return {**out, "status": "unknown", "policies": gap("organizations:ListRoots", "NotCollected",
                                                            "the organization's OU tree could not be read")}
    if meta.get("feature_set") != "ALL":
        return {**out, "status": "disabled", "reason": "the organization has only consolidated billing features"}
    if not any(t.get("Type") == SCP_TYPE and t.get("Status") == "ENABLED" for t in meta.get("root_policy_types") or []):
        return {**out, "status": "disabled", "reason": "the SERVICE_CONTROL_POLICY type is not enabled on the root"}
    policies: dict[str, Any] = {}
    attachments: dict[str, list[str]] = {}
    try:
        for summary in paginate(org, "list_policies", "organizations:ListPolicies", "caller", "Policies",
                                Filter=SCP_TYPE):
            pid = summary["Id"]
            if pid == FULL_ACCESS_ID:
                continue
            described = call(org, "describe_policy", "organizations:DescribePolicy", "caller", PolicyId=pid)
            document = _document((described.get("Policy") or {}).get("Content"))
            if not may_deny(document):
                continue
            policies[pid] = {"name": summary.get("Name") or pid, "document": document}
            for target in paginate(org, "list_targets_for_policy", "organizations:ListTargetsForPolicy", "caller",
                                   "Targets", PolicyId=pid):
                attachments.setdefault(target["TargetId"], []).append(pid)
    except Failure as f:
        return {**out, "status": "unknown", "policies": f.fact}
    return {**out, "status": "enabled", "policies": policies, "attachments": attachments,
            "chains": dict(meta["chains"])}


def account_scps(snapshot: Any, account_id: str) -> dict[str, Any]:
    """The `scp` fact of one account: whether it is the management account, and the policies on its path."""
    if not isinstance(snapshot, dict):
        missing = gap("organizations:ListPolicies", "NotCollected", "service control policies were not read")
        return {"management": False, "status": "unknown", "levels": missing, "policies": missing}
    fact: dict[str, Any] = {"management": account_id == snapshot.get("management_account"),
                            "organization_id": snapshot.get("organization_id"), "status": snapshot["status"],
                            "reason": snapshot.get("reason") or ""}
    if fact["management"] or snapshot["status"] in ("no_organization", "disabled"):
        return {**fact, "levels": [], "policies": {}}
    if snapshot["status"] != "enabled":
        return {**fact, "levels": snapshot["policies"], "policies": snapshot["policies"]}
    chain = (snapshot.get("chains") or {}).get(account_id)
    if chain is None:
        missing = gap("organizations:ListParents", "NotCollected", "the account's place in the OU tree is unknown")
        return {**fact, "levels": missing, "policies": missing}
    attachments = snapshot.get("attachments") or {}
    levels = [{"target": t, "policies": sorted(attachments.get(t) or [])} for t in [*chain, account_id]]
    used = sorted({p for level in levels for p in level["policies"]})
    return {**fact, "levels": levels, "policies": {p: snapshot["policies"][p] for p in used}}


class ScpCollector:
    """Places the scan's SCP snapshot on each account (no call in the member account)."""

    name: str = "scp"
    actions: tuple[str, ...] = ()

    def collect(self, ctx: AccountContext, account: dict[str, Any], regions: list[dict[str, Any]]) -> dict[str, Any]:
        return {self.name: account_scps(ctx.settings.get("scp"), ctx.account_id)}
