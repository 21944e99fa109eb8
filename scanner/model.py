"""Frozen result types shared by every layer: accounts, coverage cells, findings, scan results.

The types a large organization has hundreds of thousands of (outcomes, coverage cells, findings) have slots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from audit_bedrock.constants import SEVERITIES, SEVERITY_RANK, Severity


@dataclass(frozen=True)
class Account:
    """One account of the estate, as discovery found it."""

    id: str
    name: str = ""
    ou_path: str = ""
    # Organizations account State: ACTIVE | SUSPENDED | PENDING_CLOSURE | CLOSED | PENDING_ACTIVATION
    status: str = "ACTIVE"


@dataclass(frozen=True, slots=True)
class AccountOutcome:
    """How the scan of one account went: scanned, error (not entered), skipped, or interrupted (the scan was
    stopped before the account was finished: its account-level checks did not run)."""

    id: str
    name: str
    ou_path: str
    status: Literal["scanned", "error", "skipped", "interrupted"]
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "ou_path": self.ou_path,
                "status": self.status, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Coverage:
    """One cell of the accounts x regions matrix."""

    account_id: str
    region: str
    status: Literal["scanned", "skipped", "error"]
    logging_enabled: bool | None = None
    destinations: tuple[str, ...] = ()
    large_data_s3: bool | None = None
    data_types: tuple[tuple[str, bool], ...] = ()
    reason: str = ""
    # BIL-022's evidence where logging is on and Bedrock was used: the newest delivery seen (ISO time or
    # None) and whether every destination received logs since the last day with invocations.
    last_delivery: str | None = None
    delivering: bool | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "account_id": self.account_id, "region": self.region, "status": self.status,
            "logging_enabled": self.logging_enabled, "destinations": list(self.destinations),
            "large_data_s3": self.large_data_s3, "data_types": dict(self.data_types),
        }
        if self.reason:
            out["reason"] = self.reason
        if self.delivering is not None:
            out.update(delivering=self.delivering, last_delivery=self.last_delivery)
        return out


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule result for one resource; `id` is a stable fingerprint."""

    id: str
    rule_id: str
    severity: Severity
    title: str
    message: str
    account_id: str
    account_name: str
    region: str | None
    resource: str
    remediation: str
    status: Literal["open", "suppressed"] = "open"
    baseline: Literal["new", "unchanged"] = "new"
    properties: dict[str, Any] = field(default_factory=dict)

    def sort_key(self) -> tuple[int, str, str, str, str]:
        return (SEVERITY_RANK[self.severity], self.account_id, self.region or "", self.rule_id, self.resource)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "rule_id": self.rule_id, "severity": self.severity, "title": self.title,
            "message": self.message, "account_id": self.account_id, "account_name": self.account_name,
            "region": self.region, "resource": self.resource, "remediation": self.remediation,
            "status": self.status, "baseline": self.baseline, "properties": self.properties,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Finding:
        return cls(
            id=d["id"], rule_id=d["rule_id"], severity=d["severity"], title=d["title"],
            message=d["message"], account_id=d["account_id"], account_name=d.get("account_name", ""),
            region=d.get("region"), resource=d["resource"], remediation=d.get("remediation", ""),
            status=d.get("status", "open"), baseline=d.get("baseline", "new"),
            properties=dict(d.get("properties") or {}),
        )


@dataclass(frozen=True)
class ScanMeta:
    """What was scanned, by whom, and when."""

    started_at: str
    finished_at: str
    organization_id: str | None
    caller_account: str
    regions: tuple[str, ...]
    accounts: tuple[AccountOutcome, ...]
    api_calls: int
    incomplete: bool = False
    interrupted: bool = False
    timed_out: bool = False  # the scan stopped at its --timeout (incomplete, not interrupted: exit 3)
    shard: tuple[int, int] | None = None  # (K, N) for a --shard K/N run; None for a whole run or a merge
    # Where the list of Bedrock regions came from: "ssm" (AWS's public parameters) or "botocore" (the installed
    # SDK's endpoints); "" when unknown (a facts file or findings.json written before it was recorded).
    region_source: str = ""


@dataclass(frozen=True)
class ScanResult:
    """Everything a renderer needs: scan metadata, coverage, findings and the fixed list."""

    meta: ScanMeta
    coverage: tuple[Coverage, ...]
    findings: tuple[Finding, ...]
    fixed: tuple[Finding, ...] = ()
    notices: tuple[str, ...] = ()
    not_rechecked: tuple[Finding, ...] = ()  # baseline findings this run did not read again: neither open nor fixed

    def open_findings(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "open"]

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
        for f in self.open_findings():
            counts[f.severity] += 1
        return counts
