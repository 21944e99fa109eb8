"""Turn raw rule results into findings: stable ids, severity overrides, suppressions, order, baseline."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from audit_bedrock.config import Config
from audit_bedrock.constants import SEVERITY_RANK
from audit_bedrock.engine import RawResult
from audit_bedrock.errors import UsageError
from audit_bedrock.model import Finding


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
        findings = [Finding.from_json(f) for f in doc["findings"]]
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
        elif f.region is not None and not isinstance(f.region, str):
            problem = "region must be a string or null"
        if problem:
            raise UsageError(f"corrupt baseline file: findings[{i}]: {problem}", source=path)
    return findings


def apply_baseline(findings: list[Finding], baseline: list[Finding]) -> tuple[list[Finding], list[Finding]]:
    """Mark each finding new or unchanged; return (findings, fixed)."""
    before = {f.id: f for f in baseline}
    now_ids = {f.id for f in findings}
    marked = [replace(f, baseline="unchanged" if f.id in before else "new") for f in findings]
    fixed = sort_findings([f for f in baseline if f.id not in now_ids and f.status == "open"])
    return marked, fixed
