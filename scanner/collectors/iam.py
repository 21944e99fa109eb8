"""Collector (account scope): delivery roles, their trust and permission policies, and orphaned Bedrock roles."""

from __future__ import annotations

import copy
from typing import Any

from audit_bedrock.analyzer import PolicyError, matches, parse, trusts_service
from audit_bedrock.collectors.base import AccountContext, attempt, attempt_pages
from audit_bedrock.collectors.logs import read_log_group
from audit_bedrock.derive import BEDROCK, grants_put_log_events, policy_documents
from audit_bedrock.discovery import bedrock_regions
from audit_bedrock.facts import gap, is_gap

ACTIONS = (
    "iam:GetRole", "iam:ListRoles", "iam:ListRolePolicies", "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies", "iam:GetPolicy", "iam:GetPolicyVersion", "logs:DescribeLogGroups",
)


def role_name(arn: str) -> str:
    """The role name of a role ARN (the last path segment)."""
    return arn.rsplit("/", 1)[-1]


def arn_account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


def read_managed_policy(actx: AccountContext, arn: str) -> dict[str, Any]:
    """{arn, document} of a managed policy at its default version; each policy read once per account.

    A policy that no longer exists (NoSuchEntity) grants nothing: its document is None and `missing` true.
    """
    return copy.deepcopy(actx.once(("iam-policy", arn), lambda: _read_managed_policy(actx, arn)))


def _read_managed_policy(actx: AccountContext, arn: str) -> dict[str, Any]:
    iam = actx.client("iam", actx.home_region)
    where = f"{actx.account_id}/iam"
    out: dict[str, Any] = {"arn": arn}
    pol = attempt(iam, "get_policy", "iam:GetPolicy", where, absent=("NoSuchEntity",), PolicyArn=arn)
    if pol.absent:
        out.update(document=None, missing=True)
    elif pol.gap is not None:
        out["document"] = pol.gap
    else:
        version = ((pol.data or {}).get("Policy") or {}).get("DefaultVersionId")
        out["version"] = version
        ver = attempt(iam, "get_policy_version", "iam:GetPolicyVersion", where, absent=("NoSuchEntity",),
                      PolicyArn=arn, VersionId=version)
        if ver.gap is not None:
            out["document"] = ver.gap
        elif ver.absent:
            out.update(document=None, missing=True)
        else:
            out["document"] = ((ver.data or {}).get("PolicyVersion") or {}).get("Document")
    return out


def read_permissions(actx: AccountContext, name: str) -> dict[str, Any]:
    """Inline and attached managed policies of role `name`: each list, or a document inside it, may be a gap."""
    iam = actx.client("iam", actx.home_region)
    where = f"{actx.account_id}/iam/{name}"
    out: dict[str, Any] = {}
    names, denied = attempt_pages(iam, "list_role_policies", "iam:ListRolePolicies", where, "PolicyNames",
                                  RoleName=name)
    if denied is not None:
        out["inline_policies"] = denied
    else:
        inline = []
        for pname in names or []:
            doc = attempt(iam, "get_role_policy", "iam:GetRolePolicy", where, absent=("NoSuchEntity",),
                          RoleName=name, PolicyName=pname)
            document = doc.gap if doc.gap is not None else (doc.data or {}).get("PolicyDocument")
            inline.append({"name": pname, "document": document})
        out["inline_policies"] = inline
    attached, denied = attempt_pages(iam, "list_attached_role_policies", "iam:ListAttachedRolePolicies", where,
                                     "AttachedPolicies", RoleName=name)
    if denied is not None:
        out["attached_policies"] = denied
    else:
        out["attached_policies"] = [
            {"name": a.get("PolicyName"), **read_managed_policy(actx, a["PolicyArn"])} for a in attached or []]
    return out


def read_role(actx: AccountContext, arn: str) -> dict[str, Any]:
    """GetRole (trust policy, permissions boundary) and the role's permissions; NoSuchEntity means missing."""
    name = role_name(arn)
    fact: dict[str, Any] = {"arn": arn, "name": name}
    if arn_account(arn) != actx.account_id:
        unreadable = gap("iam:GetRole", "CrossAccountRole",
                         f"the role is in account {arn_account(arn)}; it cannot be read from {actx.account_id}")
        fact.update(exists=unreadable, trust_policy=unreadable, inline_policies=unreadable,
                    attached_policies=unreadable, permissions_boundary=unreadable)
        return fact
    iam = actx.client("iam", actx.home_region)
    got = attempt(iam, "get_role", "iam:GetRole", f"{actx.account_id}/iam/{name}", absent=("NoSuchEntity",),
                  RoleName=name)
    if got.absent:
        fact.update(exists=False, trust_policy=None, inline_policies=None, attached_policies=None,
                    permissions_boundary=None)
        return fact
    if got.gap is not None:
        fact.update(exists=got.gap, trust_policy=got.gap, inline_policies=got.gap, attached_policies=got.gap,
                    permissions_boundary=got.gap)
        return fact
    role = (got.data or {}).get("Role") or {}
    fact.update(exists=True, arn=role.get("Arn") or arn, trust_policy=role.get("AssumeRolePolicyDocument"))
    boundary = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    fact["permissions_boundary"] = read_managed_policy(actx, boundary) if boundary else None
    fact.update(read_permissions(actx, name))
    return fact


def read_boundary(actx: AccountContext, name: str) -> Any:
    """GetRole for the permissions boundary of role `name`: the boundary policy record, None without one, a gap
    when GetRole is refused (never "no boundary"). A role deleted since ListRoles has none to apply."""
    iam = actx.client("iam", actx.home_region)
    got = attempt(iam, "get_role", "iam:GetRole", f"{actx.account_id}/iam/{name}", absent=("NoSuchEntity",),
                  RoleName=name)
    if got.gap is not None:
        return got.gap
    role = (got.data or {}).get("Role") or {}
    arn = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    return read_managed_policy(actx, arn) if arn else None


def log_group_targets(docs: list[Any]) -> list[dict[str, str]]:
    """Log groups named by Allow statements that grant logs:PutLogEvents: [{resource, region, account, name}]."""
    out: dict[str, dict[str, str]] = {}
    for doc in docs:
        if is_gap(doc) or doc is None:
            continue
        try:
            statements = parse(doc)
        except PolicyError:
            continue
        for stmt in statements:
            if stmt["Effect"] != "Allow":
                continue
            acts = stmt.get("Action")
            if acts is None or not any(matches(p, "logs:PutLogEvents", ignore_case=True) for p in acts):
                continue
            for res in stmt.get("Resource") or []:
                parts = res.split(":")
                if len(parts) >= 7 and parts[2] == "logs" and parts[5] == "log-group":
                    out.setdefault(res, {"resource": res, "region": parts[3], "account": parts[4], "name": parts[6]})
    return [out[k] for k in sorted(out)]


class IamCollector:
    """The delivery roles that scanned regions reference, and Bedrock-trusted roles nobody references."""

    name: str = "iam"
    actions: tuple[str, ...] = ACTIONS

    def collect(self, ctx: AccountContext, account: dict[str, Any], regions: list[dict[str, Any]]) -> dict[str, Any]:
        referenced: dict[str, list[str]] = {}
        for r in regions:
            lf = r.get("logging")
            cw = lf.get("cloudwatch") if isinstance(lf, dict) and lf.get("enabled") else None
            if isinstance(cw, dict) and cw.get("role_arn"):
                referenced.setdefault(cw["role_arn"], []).append(r["region"])
        scanned = sorted(r["region"] for r in regions)
        unread = sorted(r["region"] for r in account.get("regions") or [] if r.get("status") == "error")
        requested = ctx.settings.get("requested_regions")
        every = ctx.settings.get("bedrock_regions") or bedrock_regions()
        subset = bool(unread) or (requested is not None and not set(every) <= set(requested))
        out: dict[str, Any] = {
            "roles": {arn: {**read_role(ctx, arn), "referenced_by": sorted(refs)}
                      for arn, refs in sorted(referenced.items())},
            "scanned_regions": scanned, "unread_regions": unread, "regions_subset": subset,
        }
        out["unreferenced_bedrock_roles"] = self._unreferenced(ctx, set(referenced), set(scanned))
        return {self.name: out}

    def _unreferenced(self, ctx: AccountContext, referenced: set[str], scanned: set[str]) -> Any:
        iam = ctx.client("iam", ctx.home_region)
        listed, denied = attempt_pages(iam, "list_roles", "iam:ListRoles", f"{ctx.account_id}/iam", "Roles")
        if denied is not None:
            return denied
        out = []
        for role in sorted(listed or [], key=lambda r: r.get("Arn", "")):
            arn = role.get("Arn", "")
            if arn in referenced:
                continue
            trust = role.get("AssumeRolePolicyDocument")
            try:
                candidate = trusts_service(trust, BEDROCK)
            except PolicyError:
                candidate = True  # undecidable here; the deriver records it as unreadable
            if not candidate:
                continue
            fact: dict[str, Any] = {"arn": arn, "name": role.get("RoleName") or role_name(arn),
                                    "trust_policy": trust, **read_permissions(ctx, role.get("RoleName", ""))}
            # ListRoles carries no PermissionsBoundary (its doc: "This operation does not return the following
            # attributes ... PermissionsBoundary, RoleLastUsed, Tags"): read it before calling the role working.
            working = grants_put_log_events(policy_documents(fact), ctx.account_id)
            fact["permissions_boundary"] = read_boundary(ctx, fact["name"]) if working is True else None
            targets = []
            for t in log_group_targets(policy_documents(fact)):
                exists: Any = None  # unknown: outside this account or the scanned regions, or a wildcard
                if t["account"] == ctx.account_id and t["region"] in scanned and not any(
                        c in t["name"] for c in "*?"):
                    exists = read_log_group(ctx, t["region"], t["name"])["exists"]
                targets.append({**t, "exists": exists})
            fact["target_log_groups"] = targets
            out.append(fact)
        return out
