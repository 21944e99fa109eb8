"""IAM policies generated from the collectors' declared actions: the member audit role and the caller's side."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from audit_bedrock import collectors, constants
from audit_bedrock.discovery import SSM_ACTION

POLICY_VERSION = "2012-10-17"
MEMBER_SID = "AuditBedrockReadOnly"
# The caller lists the organization; these are the brief's documented wildcards (List*/Describe* only).
CALLER_ORG_ACTIONS: tuple[str, ...] = ("organizations:Describe*", "organizations:List*")
# Public parameters have no account in their ARN; the path and its children both match.
CALLER_SSM_RESOURCE = "arn:aws:ssm:*::parameter/aws/service/global-infrastructure/*"
# An IAM action name is read-only when its verb starts with one of these. "Lookup" is here for exactly one
# action, cloudtrail:LookupEvents (BIL-023: who deleted the logging configuration), which AWS classes as a
# Read action: it searches the account's 90-day management event history and changes nothing. Added
# deliberately; tests/test_readonly.py lists the same verbs.
READ_ONLY_VERBS: tuple[str, ...] = ("Get", "List", "Describe", "Head", "Lookup")
_ACTION_RE = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")

# botocore (service, operation) -> the IAM action that authorizes it, where the two names differ.
# None: the operation needs no permission. Every other operation is authorized by `service:Operation`
# (botocore's service name is the IAM prefix for every service the scanner uses).
OPERATION_ACTIONS: dict[tuple[str, str], str | None] = {
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjectVersions"): "s3:ListBucketVersions",
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "GetBucketLifecycle"): "s3:GetLifecycleConfiguration",
    ("s3", "GetBucketLifecycleConfiguration"): "s3:GetLifecycleConfiguration",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "GetBucketReplication"): "s3:GetReplicationConfiguration",
    ("s3", "GetBucketNotificationConfiguration"): "s3:GetBucketNotification",
    ("s3", "GetObjectLockConfiguration"): "s3:GetBucketObjectLockConfiguration",
    ("s3", "GetBucketAccelerateConfiguration"): "s3:GetAccelerateConfiguration",
    ("s3", "GetBucketCors"): "s3:GetBucketCORS",
    ("s3", "GetBucketIntelligentTieringConfiguration"): "s3:GetIntelligentTieringConfiguration",
    ("s3", "GetBucketMetricsConfiguration"): "s3:GetMetricsConfiguration",
    ("s3", "GetBucketAnalyticsConfiguration"): "s3:GetAnalyticsConfiguration",
    ("s3", "GetBucketInventoryConfiguration"): "s3:GetInventoryConfiguration",
    ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
    ("sts", "GetCallerIdentity"): None,
}


def iam_action(service: str, operation: str) -> str | None:
    """The IAM action that authorizes botocore's `service` `operation` (None: no permission needed)."""
    if (service, operation) in OPERATION_ACTIONS:
        return OPERATION_ACTIONS[(service, operation)]
    return f"{service}:{operation}"


def is_read_only(action: str) -> bool:
    """True for a concrete `service:Verb...` action whose verb is Get, List, Describe, Head or Lookup."""
    if not _ACTION_RE.match(action):
        return False
    return action.split(":", 1)[1].startswith(READ_ONLY_VERBS)


def member_actions() -> list[str]:
    """Every IAM action the scanner calls inside a member account, from the collectors' declarations."""
    return collectors.required_actions()


def member_policy() -> dict[str, Any]:
    """The audit role's permissions: exactly the declared read-only actions."""
    return {"Version": POLICY_VERSION,
            "Statement": [{"Sid": MEMBER_SID, "Effect": "Allow", "Action": member_actions(), "Resource": "*"}]}


def caller_policy(role_name: str) -> dict[str, Any]:
    """The scanner's own permissions: list the organization, assume the audit role, read its own account.

    The caller's account is scanned with the caller's credentials (no role is assumed there), so the
    caller needs the member actions too.
    """
    return {"Version": POLICY_VERSION, "Statement": [
        {"Sid": "DiscoverOrganization", "Effect": "Allow", "Action": list(CALLER_ORG_ACTIONS), "Resource": "*"},
        {"Sid": "AssumeAuditRole", "Effect": "Allow", "Action": "sts:AssumeRole",
         "Resource": f"arn:aws:iam::*:role/{role_name}"},
        # The Bedrock region list, once per scan from AWS's public parameters (discovery.bedrock_region_list).
        {"Sid": "ReadBedrockRegions", "Effect": "Allow", "Action": SSM_ACTION,
         "Resource": CALLER_SSM_RESOURCE},
        {"Sid": "ScanCallerAccount", "Effect": "Allow", "Action": member_actions(), "Resource": "*"},
    ]}


# ---------------------------------------------------------------------------------- Security Hub import
# The one write audit-bedrock can ever make, only with --security-hub-import (the scheduled stack's
# SecurityHubImport "true"): importing its findings with BatchImportFindings. It is never in the audit role: the
# member side is its own role (deploy/audit-role.yaml's SecurityHubImportRole), the caller side two statements
# added only for an importing caller. With the default product, Security Hub accepts a finding only from the
# finding's own account, so each statement is scoped to that account's own default product.
IMPORT_ACTION = "securityhub:BatchImportFindings"
DEFAULT_IMPORT_ROLE = constants.DEFAULT_IMPORT_ROLE
WRITE_ACTIONS: frozenset[str] = frozenset({IMPORT_ACTION})


def import_resource(account: str, partition: str = "aws") -> str:
    """The resource BatchImportFindings is authorized on: `account`'s default custom product, in any region."""
    return f"arn:{partition}:securityhub:*:{account}:product/{account}/default"


def import_policy(account: str, partition: str = "aws") -> dict[str, Any]:
    """The member import role's permissions: BatchImportFindings for its own account's findings, nothing else."""
    return {"Version": POLICY_VERSION, "Statement": [
        {"Sid": "ImportOwnFindings", "Effect": "Allow", "Action": IMPORT_ACTION,
         "Resource": import_resource(account, partition)}]}


def caller_import_statements(account: str, import_role: str = DEFAULT_IMPORT_ROLE,
                             partition: str = "aws") -> list[dict[str, Any]]:
    """What an importing caller adds to the caller policy: import its own findings, enter the import roles."""
    return [{"Sid": "ImportOwnFindings", "Effect": "Allow", "Action": IMPORT_ACTION,
             "Resource": import_resource(account, partition)},
            {"Sid": "EnterImportRoles", "Effect": "Allow", "Action": "sts:AssumeRole",
             "Resource": f"arn:{partition}:iam::*:role/{import_role}"}]


def writes(doc: dict[str, Any]) -> set[str]:
    """Every action of a policy document's Allow statements that is not read-only (sts:AssumeRole aside; a
    wildcard counts as read-only only when what precedes the `*` is a read verb, so `s3:*` is a write)."""
    out: set[str] = set()
    for stmt in doc.get("Statement") or []:
        if stmt.get("Effect") != "Allow":
            continue
        actions = stmt.get("Action")
        for action in [actions] if isinstance(actions, str) else actions or []:
            if action != "sts:AssumeRole" and not is_read_only(action.rstrip("*")):  # List* is a read too
                out.add(action)
    return out


def dumps(policy: dict[str, Any]) -> str:
    """A policy as the JSON the CLI prints."""
    return json.dumps(policy, indent=2) + "\n"


# Templates under deploy/ carry the action list between these markers; `render` regenerates it.
_BLOCK_RE = re.compile(
    r"^(?P<indent>[ \t]*)# BEGIN generated: member-actions[^\n]*\n(?P<body>.*?)^[ \t]*# END generated: member-actions",
    re.MULTILINE | re.DOTALL,
)


def render(template: str) -> str:
    """`template` with every generated member-actions block rewritten from the declarations."""

    def block(m: re.Match[str]) -> str:
        indent = m.group("indent")
        lines = "".join(f"{indent}- {a}\n" for a in member_actions())
        return (f"{indent}# BEGIN generated: member-actions (make deploy-templates; do not edit)\n"
                f"{lines}{indent}# END generated: member-actions")

    if not _BLOCK_RE.search(template):
        raise ValueError("no '# BEGIN generated: member-actions' block")
    return _BLOCK_RE.sub(block, template)


def main(argv: list[str] | None = None) -> int:
    """`python -m audit_bedrock.policy --write|--check FILE...`: regenerate or verify the templates."""
    p = argparse.ArgumentParser(prog="python -m audit_bedrock.policy",
                                description="Regenerate the action lists of the deploy/ templates.")
    p.add_argument("mode", choices=("write", "check"))
    p.add_argument("files", nargs="+", type=Path)
    ns = p.parse_args(argv)
    stale = []
    for path in ns.files:
        text = path.read_text()
        new = render(text)
        if new != text:
            stale.append(str(path))
            if ns.mode == "write":
                path.write_text(new)
    if stale and ns.mode == "check":
        print(f"stale action lists in: {', '.join(stale)}; run `make deploy-templates`", file=sys.stderr)
        return 1
    for s in stale:
        print(f"updated {s}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
