"""Derived facts for the evidence rules: delivery proof (BIL-022), the last deletion (BIL-023), SCP protection
(BIL-024) and erasable log stores (BIL-025).

Like derive.py: every derived value is True/False, None (not applicable), or the gap of the input it needs.
"""

from __future__ import annotations

from typing import Any

from audit_bedrock.analyzer import PolicyError, Request, blocks
from audit_bedrock.facts import gap, is_gap

# The AWS managed SCP FullAWSAccess (p-FullAWSAccess), whose content is fixed.
FULL_ACCESS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
PROTECTED_ACTIONS = ("bedrock:DeleteModelInvocationLoggingConfiguration",
                     "bedrock:PutModelInvocationLoggingConfiguration")
PROBE_ROLE = "audit-bedrock-probe"  # a non-administrator principal: what an SCP exception must not cover


# ---------------------------------------------------------------------------------------------- BIL-022

def delivery_destinations(rdoc: dict[str, Any]) -> None:
    """delivery.destinations: per read destination, whether anything arrived on or after the due day."""
    delivery = rdoc.get("delivery")
    if not isinstance(delivery, dict) or is_gap(delivery):
        return
    due = delivery.get("due_day")
    out = []
    acct, region = rdoc.get("account_id"), rdoc.get("region")
    for kind in ("cloudwatch", "s3"):
        read = delivery.get(kind)
        if read is None:
            continue
        name = _destination_name(rdoc, kind)
        arn = (f"arn:aws:logs:{region}:{acct}:log-group:{name}" if kind == "cloudwatch"
               else f"arn:aws:s3:::{name}")
        record: dict[str, Any] = {"kind": kind, "name": name, "arn": arn, "due_day": due}
        if is_gap(read):
            record.update(delivered=read, last_delivery=read, last_delivery_text="unknown")
        else:
            day = read.get("last_delivery_day")
            record.update(delivered=bool(day and due and day >= due), last_delivery=read.get("last_delivery"),
                          last_delivery_text=_delivery_text(read, delivery))
        out.append(record)
    delivery["destinations"] = out
    delivery["last_delivery"] = max((d["last_delivery"] for d in out if isinstance(d["last_delivery"], str)),
                                    default=None)
    verdicts = [d["delivered"] for d in out]
    if False in verdicts:
        delivery["delivering"] = False
    elif verdicts and all(v is True for v in verdicts):
        delivery["delivering"] = True
    else:
        delivery["delivering"] = None  # not used in the lookback, nothing to read, or unreadable


def _destination_name(rdoc: dict[str, Any], kind: str) -> str:
    logging_fact = rdoc.get("logging") or {}
    if kind == "cloudwatch":
        return str((logging_fact.get("cloudwatch") or {}).get("log_group") or "")
    return str((logging_fact.get("s3") or {}).get("bucket") or "")


def _delivery_text(read: dict[str, Any], delivery: dict[str, Any]) -> str:
    """How the message names the last delivery."""
    when = read.get("last_delivery")
    if when:
        return f"at least {when}" if read.get("lower_bound") else str(when)
    if read.get("kind") == "log_group":
        return "never (no aws/bedrock/modelinvocations stream)" if not read.get("stream_exists") else "never"
    searched = read.get("searched_from")
    if searched and searched != delivery.get("window_start"):
        return f"none on or after {searched} (earlier days not listed)"
    return f"none in the last {delivery.get('lookback_days')} days"


# ---------------------------------------------------------------------------------------------- BIL-023

def last_deletion(rdoc: dict[str, Any]) -> None:
    """deletion.last: the newest DeleteModelInvocationLoggingConfiguration that succeeded, or None."""
    deletion = rdoc.get("deletion")
    if not isinstance(deletion, dict) or is_gap(deletion):
        return
    events = [e for e in deletion.get("events") or [] if isinstance(e, dict)]
    done = [e for e in events if not e.get("error_code")]
    deletion["last"] = done[0] if done else None
    deletion["failed_attempts"] = len(events) - len(done)


# ---------------------------------------------------------------------------------------------- BIL-024

def scp_protection(account: dict[str, Any]) -> None:
    """scp.protected, scp.open_actions, scp.undecided_actions: whether SCPs deny both logging changes everywhere."""
    scp = account.get("scp")
    if not isinstance(scp, dict) or is_gap(scp):
        return
    if scp.get("management"):
        scp.update(protected=None, open_actions=None, undecided_actions=None)
        return
    levels, policies = scp.get("levels"), scp.get("policies")
    missing = levels if is_gap(levels) else policies if is_gap(policies) else None
    if missing is not None or not isinstance(levels, list) or not isinstance(policies, dict):
        missing = missing or gap("organizations:ListPolicies", "NotCollected", "no SCP facts")
        scp.update(protected=missing, open_actions=missing, undecided_actions=missing)
        return
    if scp.get("status") != "enabled":
        scp.update(protected=False, open_actions=list(PROTECTED_ACTIONS), undecided_actions=[])
        return
    acct = account["account_id"]
    regions = account.get("scanned_regions") or ["us-east-1"]
    open_actions: set[str] = set()
    undecided: set[str] = set()
    try:
        for region in regions:
            context = {"aws:PrincipalArn": f"arn:aws:iam::{acct}:role/{PROBE_ROLE}", "aws:PrincipalAccount": acct,
                       "aws:RequestedRegion": region, "aws:PrincipalOrgID": scp.get("organization_id") or ""}
            for action in PROTECTED_ACTIONS:
                verdicts = [blocks([FULL_ACCESS, *(policies[p]["document"] for p in level["policies"])],
                                   Request(action, "*", None, context)) for level in levels]
                if True in verdicts:
                    continue
                (undecided if None in verdicts else open_actions).add(action)
    except PolicyError as exc:
        bad = gap("organizations:DescribePolicy", "MalformedPolicy", f"an SCP could not be parsed: {exc}")
        scp.update(protected=bad, open_actions=bad, undecided_actions=bad)
        return
    scp.update(protected=not open_actions and not undecided, open_actions=sorted(open_actions | undecided),
               undecided_actions=sorted(undecided))


# ---------------------------------------------------------------------------------------------- BIL-025

def log_stores(rdoc: dict[str, Any]) -> None:
    """log_stores: each existing log group and bucket with whether its logs can be erased."""
    out: list[dict[str, Any]] = []
    group = rdoc.get("log_group")
    if isinstance(group, dict) and group.get("exists") is not False:
        protected = group.get("deletion_protection")
        out.append({"kind": "log_group", "name": group.get("name"), "arn": group.get("arn"),
                    "exists": group.get("exists"), "deletion_protection": protected,
                    "erasable": protected if is_gap(protected) else protected is not True})
    protection = {p["name"]: p for p in rdoc.get("bucket_protection") or [] if isinstance(p, dict)}
    buckets = rdoc.get("buckets")
    for b in buckets if isinstance(buckets, list) else []:
        if not isinstance(b, dict) or b.get("exists") is False or b.get("owned") is False \
                or b.get("name") not in protection:
            continue
        p = protection[b["name"]]
        versioning, lock = p.get("versioning"), p.get("object_lock")
        kept = [versioning if is_gap(versioning) else versioning == "Enabled",
                lock if is_gap(lock) else isinstance(lock, dict) and lock.get("enabled") is True]
        if True in kept:
            erasable: Any = False
        else:
            erasable = next((k for k in kept if is_gap(k)), True)
        out.append({"kind": "bucket", "name": b["name"], "arn": b.get("arn"), "exists": b.get("exists"),
                    "versioning": versioning, "object_lock": lock, "erasable": erasable})
    rdoc["log_stores"] = out


def derive_evidence(account: dict[str, Any]) -> None:
    """Add the evidence rules' derived facts to an account document (in place)."""
    scp_protection(account)
    for rdoc in account.get("regions") or []:
        if rdoc.get("status") != "scanned":
            continue
        delivery_destinations(rdoc)
        last_deletion(rdoc)
        log_stores(rdoc)
