"""Turn raw rule results into findings: stable ids, severity overrides, suppressions, order, baseline."""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from audit_bedrock.config import Config
from audit_bedrock.engine import GAP_RULE_ID, RawResult
from audit_bedrock.errors import UsageError
from audit_bedrock.facts import lone_surrogate
from audit_bedrock.model import Finding, ScanResult


def fingerprint(rule_id: str, account_id: str, region: str | None, resource: str, discriminator: str = "") -> str:
    """A stable id from rule, account, region and resource; never message text or time."""
    parts = [rule_id, account_id, region or "", resource]
    if discriminator:
        parts.append(discriminator)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


class FindingBuilder:
    """Applies the config's overrides and suppressions to raw results."""

    def __init__(self, config: Config, today: dt.date | None = None) -> None:
        self.overrides = dict(config.severity_overrides)
        self.suppressions = config.suppressions
        self.today = today or dt.datetime.now(dt.UTC).date()
        self.expired_used: set[int] = set()

    def build(self, raw: RawResult, account_name: str) -> Finding:
        props: dict[str, Any] = dict(raw.properties)
        severity = self.overrides.get(raw.rule.id, raw.severity)
        if severity != raw.severity:
            props["default_severity"] = raw.severity
        status = "open"
        for i, sup in enumerate(self.suppressions):
            if not sup.matches(raw.rule.id, raw.account_id, raw.region):
                continue
            info = {"reason": sup.reason, "expires": sup.expires.isoformat() if sup.expires else None}
            if sup.expired(self.today):
                self.expired_used.add(i)
                props["expired_suppression"] = info
                continue
            status = "suppressed"
            props["suppression"] = info
            break
        # An organization's findings repeat a few account ids, names and regions: one str object each.
        return Finding(
            id=fingerprint(raw.rule.id, raw.account_id, raw.region, raw.resource, raw.discriminator),
            rule_id=raw.rule.id, severity=severity,  # type: ignore[arg-type]
            title=raw.rule.title, message=raw.message, account_id=sys.intern(raw.account_id),
            account_name=sys.intern(account_name), region=sys.intern(raw.region) if raw.region else raw.region,
            resource=raw.resource, remediation=raw.rule.remediation, status=status,  # type: ignore[arg-type]
            properties=props,
        )

    def expired_notices(self) -> list[str]:
        """One line per expired suppression that would otherwise have applied."""
        out = []
        for i in sorted(self.expired_used):
            s = self.suppressions[i]
            where = f"{s.account}/{s.region}" if s.region else s.account
            out.append(f"suppression of {s.rule} for {where} expired on {s.expires} and no longer applies "
                       f"(reason was: {s.reason})")
        return out


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Deterministic order, and one finding per id."""
    seen: dict[str, Finding] = {}
    for f in sorted(findings, key=lambda f: (*f.sort_key(), f.id)):
        seen.setdefault(f.id, f)
    return list(seen.values())


def load_baseline(path: str) -> list[Finding]:
    """Read a previous findings.json, checked against reports/findings.schema.json; a bad file is a UsageError."""
    from audit_bedrock.inputs import FINDINGS_SCHEMA, checked, read_json

    doc = read_json(path, "baseline file")
    if not isinstance(doc, dict) or doc.get("schema_version") != 1:
        raise UsageError("not a findings.json with schema_version 1", source=path)
    checked(doc, FINDINGS_SCHEMA, path, "corrupt baseline file")
    problem = lone_surrogate(doc)  # JSON's \ud800 reads into a str no report can write: not expressible in a schema
    if problem:
        raise UsageError(f"corrupt baseline file: {problem}", source=path)
    # not_rechecked: still open as far as anyone knows, so part of the baseline
    return [Finding.from_json(f) for f in [*doc["findings"], *doc.get("not_rechecked", [])]]


def not_rechecked_reason(result: ScanResult, rule_ids: set[str]) -> Callable[[Finding], str]:
    """For a baseline finding absent from `result`: why this run did not re-check it ('' when it did).

    Only what the run actually read can be fixed: the finding's account was scanned, its region (for a region
    finding) was scanned, its rule is loaded, and the rule's inputs there were not gaps (no SCAN-003 for it).
    """
    accounts = {a.id: a.status for a in result.meta.accounts}
    cells = {(c.account_id, c.region): c.status for c in result.coverage}
    blocked = {(f.account_id, f.region, str(f.properties.get("blocked_rule", "")))
               for f in result.findings if f.rule_id == GAP_RULE_ID}

    def reason(f: Finding) -> str:
        status = accounts.get(f.account_id)
        if status is None:
            return "the account was not in this run's scope"
        if status != "scanned":
            return f"the account was not scanned in this run ({status})"
        if f.region is not None and cells.get((f.account_id, f.region)) != "scanned":
            state = cells.get((f.account_id, f.region))
            return (f"the region was not scanned in this run ({state})" if state
                    else "the region was not in this run's scope")
        if f.rule_id not in rule_ids:
            return "the rule is not enabled in this run"
        if (f.account_id, f.region, f.rule_id) in blocked:
            return "the facts the rule needs could not be read in this run (see SCAN-003)"
        return ""

    return reason



def apply_baseline(findings: list[Finding], baseline: list[Finding],
                   not_rechecked: Callable[[Finding], str] | None = None,
                   ) -> tuple[list[Finding], list[Finding], list[Finding]]:
    """Mark each finding new or unchanged; return (findings, fixed, not re-checked).

    A baseline finding absent now is fixed only when `not_rechecked` gives no reason for it; otherwise it is
    carried as not re-checked (baseline "unchanged", `properties.not_rechecked` saying why).
    """
    before = {f.id: f for f in baseline}
    now_ids = {f.id for f in findings}
    marked = [replace(f, baseline="unchanged" if f.id in before else "new") for f in findings]
    fixed, carried = [], []
    for f in baseline:
        if f.id in now_ids or f.status != "open":
            continue
        why = not_rechecked(f) if not_rechecked else ""
        if why:
            carried.append(replace(f, baseline="unchanged", properties={**f.properties, "not_rechecked": why}))
        else:
            fixed.append(f)
    return marked, sort_findings(fixed), sort_findings(carried)
