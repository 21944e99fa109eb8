"""Turn raw rule results into findings: stable ids, severity overrides, suppressions, order, baseline."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from audit_bedrock.config import Config
from audit_bedrock.constants import ACCOUNT_ID_RE, SEVERITY_RANK
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
        return Finding(
            id=fingerprint(raw.rule.id, raw.account_id, raw.region, raw.resource, raw.discriminator),
            rule_id=raw.rule.id, severity=severity,  # type: ignore[arg-type]
            title=raw.rule.title, message=raw.message, account_id=raw.account_id,
            account_name=account_name, region=raw.region, resource=raw.resource,
            remediation=raw.rule.remediation, status=status,  # type: ignore[arg-type]
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
    """Read a previous findings.json; an unreadable or corrupt file is a UsageError."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read baseline file: {exc.strerror or exc}", source=path) from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"corrupt baseline file (line {exc.lineno}): {exc.msg}", source=path) from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read baseline file: not UTF-8 text ({exc.reason})", source=path) from None
    if not isinstance(doc, dict) or doc.get("schema_version") != 1 or not isinstance(doc.get("findings"), list):
        raise UsageError("not a findings.json with schema_version 1", source=path)
    try:
        carried = doc.get("not_rechecked", [])  # still open as far as anyone knows: part of the baseline
        if not isinstance(carried, list):
            raise UsageError("corrupt baseline file: not_rechecked must be a list", source=path)
        findings = [Finding.from_json(f) for f in [*doc["findings"], *carried]]
    except KeyError as exc:
        raise UsageError(f"corrupt baseline file: a finding lacks {exc}", source=path) from None
    except (TypeError, AttributeError, ValueError) as exc:
        raise UsageError(f"corrupt baseline file: a finding is malformed ({exc})", source=path) from None
    for i, f in enumerate(findings):  # values the baseline diff and the reports rely on
        problem = ""
        if not all(isinstance(v, str) for v in (f.id, f.rule_id, f.account_id, f.resource, f.title, f.message)):
            problem = "id, rule_id, account_id, resource, title and message must be strings"
        elif f.severity not in SEVERITY_RANK:
            problem = f"severity must be one of {', '.join(SEVERITY_RANK)}, got {f.severity!r}"
        elif f.status not in ("open", "suppressed"):
            problem = f"status must be open or suppressed, got {f.status!r}"
        elif f.region is not None and not (isinstance(f.region, str) and _REGION_RE.match(f.region)):
            problem = "region must be a region name or null"
        elif not _FINDING_ID_RE.match(f.id) or not ACCOUNT_ID_RE.match(f.account_id):
            problem = "id must be 32 hex digits and account_id 12 digits"
        elif not isinstance(f.account_name, str) or not isinstance(f.remediation, str):
            problem = "account_name and remediation must be strings"
        elif f.baseline not in ("new", "unchanged"):
            problem = f"baseline must be new or unchanged, got {f.baseline!r}"
        else:
            problem = lone_surrogate(f.to_json())
        if problem:
            raise UsageError(f"corrupt baseline file: findings[{i}]: {problem}", source=path)
    return findings


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


_FINDING_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")  # as reports/findings.schema.json


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
