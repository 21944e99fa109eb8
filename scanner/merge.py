"""--merge: combine the findings.json files of shard runs into one result, as if one run had scanned them all."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from audit_bedrock.errors import UsageError
from audit_bedrock.facts import lone_surrogate
from audit_bedrock.findings import sort_findings
from audit_bedrock.model import AccountOutcome, Coverage, Finding, ScanMeta, ScanResult


@dataclass(frozen=True)
class Part:
    """One input file, read and checked."""

    path: str
    doc: dict[str, Any]

    @property
    def scan(self) -> dict[str, Any]:
        scan: dict[str, Any] = self.doc["scan"]
        return scan

    @property
    def shard(self) -> tuple[int, int] | None:
        s = self.scan.get("shard")
        return (int(s["index"]), int(s["count"])) if isinstance(s, dict) else None


def _not_findings(path: str, why: str) -> UsageError:
    return UsageError(f"not a findings.json written by audit-bedrock ({why})", source=path)


def read_part(path: str) -> Part:
    """Read one shard's findings.json, checked against reports/findings.schema.json; else a UsageError (exit 2)."""
    from audit_bedrock.inputs import FINDINGS_SCHEMA, checked, read_json

    doc = read_json(path, "merge input")
    if not isinstance(doc, dict) or doc.get("schema_version") != 1:
        raise _not_findings(path, "no schema_version 1")
    checked(doc, FINDINGS_SCHEMA, path, "not a valid findings.json")
    problem = lone_surrogate(doc)  # what a schema cannot say: JSON's \ud800 is no text a report can write
    if problem:
        raise _not_findings(path, problem)
    shard = doc["scan"].get("shard")
    if shard is not None and shard["index"] > shard["count"]:
        raise _not_findings(path, f"scan.shard: index {shard['index']} is beyond count {shard['count']}")
    return Part(path, doc)


def _one(parts: list[Part], key: str, what: str) -> Any:
    values: dict[Any, str] = {}
    for p in parts:
        values.setdefault(p.scan.get(key), p.path)
    if len(values) > 1:
        listed = ", ".join(f"{v} ({path})" for v, path in values.items())
        raise UsageError(f"--merge: the inputs come from different {what}: {listed}")
    return next(iter(values))


def merge(paths: list[str]) -> ScanResult:
    """One ScanResult from shard files: the findings, coverage and accounts a single run would have produced.

    Refused (UsageError, exit 2): unreadable or non-findings inputs, different organizations or callers, an
    account in two inputs, the same shard twice, shards of different N. Missing shards are not refused: the
    result is marked incomplete (exit 3) and says which shards are missing.
    """
    if not paths:
        raise UsageError("--merge needs at least one findings.json")
    parts = [read_part(p) for p in paths]
    org_id = _one(parts, "organization_id", "organizations")
    caller = _one(parts, "caller_account", "caller accounts")

    owner: dict[str, str] = {}
    outcomes: list[AccountOutcome] = []
    for p in parts:
        for a in p.scan["accounts"]:
            outcome = AccountOutcome(a["id"], a["name"], a["ou_path"], a["status"], a["reason"])
            if outcome.id in owner:
                raise UsageError(f"--merge: account {outcome.id} is in both {owner[outcome.id]} and {p.path}; "
                                 "shards must not overlap (was one shard given twice, or shards of different runs?)")
            owner[outcome.id] = p.path
            outcomes.append(outcome)

    notices: list[str] = []
    incomplete = any(not p.scan.get("complete", True) for p in parts)
    for p in parts:
        if p.scan.get("interrupted"):
            incomplete = True
            notices.append(f"{p.path}: that shard's scan was interrupted; its accounts are partly scanned")
        if p.scan.get("timed_out"):
            incomplete = True
            notices.append(f"{p.path}: that shard's scan reached its deadline; its accounts are partly scanned")
    gaps = _shard_gaps(parts)
    if gaps:
        incomplete = True
        notices.extend(gaps)
    for p in parts:
        for n in p.scan.get("notices") or []:
            if isinstance(n, str) and n not in notices:
                notices.append(n)

    same_regions = {tuple(p.scan["regions"]) for p in parts}
    regions = (next(iter(same_regions)) if len(same_regions) == 1
               else tuple(sorted({r for p in parts for r in p.scan["regions"]})))
    coverage = _coverage(parts, outcomes, regions)

    findings: list[Finding] = []
    seen: dict[str, str] = {}
    for p in parts:
        for f in p.doc["findings"]:
            finding = replace(Finding.from_json(f), baseline="new")
            if finding.id in seen:
                raise UsageError(f"--merge: finding {finding.id} is in both {seen[finding.id]} and {p.path}")
            seen[finding.id] = p.path
            findings.append(finding)

    meta = ScanMeta(
        started_at=min(p.scan["started_at"] for p in parts),
        finished_at=max(p.scan["finished_at"] for p in parts),
        organization_id=org_id, caller_account=str(caller), regions=regions,
        accounts=tuple(sorted(outcomes, key=lambda o: o.id)),
        api_calls=sum(int(p.scan["api_calls"]) for p in parts),
        incomplete=incomplete, interrupted=False, region_source=_region_source(parts),
    )
    return ScanResult(meta, tuple(coverage), tuple(sort_findings(findings)), notices=tuple(notices))


def _region_source(parts: list[Part]) -> str:
    """The shards' common region_source; "mixed" when they differ; "" when none recorded one."""
    sources = {str(p.scan.get("region_source")) for p in parts if p.scan.get("region_source")}
    return sources.pop() if len(sources) == 1 else ("mixed" if sources else "")


def _shard_gaps(parts: list[Part]) -> list[str]:
    """Notices for missing shards; UsageError for shards given twice or of different N."""
    shards = [(p.shard, p.path) for p in parts if p.shard is not None]
    if not shards:
        return []
    counts = {s[1] for s, _ in shards}
    if len(counts) > 1:
        raise UsageError("--merge: the inputs were split into different numbers of shards: "
                         + ", ".join(f"{s[0]}/{s[1]} ({path})" for s, path in shards))
    count = counts.pop()
    given: dict[int, str] = {}
    for (index, _), path in shards:
        if index in given:
            raise UsageError(f"--merge: shard {index}/{count} is given twice: {given[index]} and {path}")
        given[index] = path
    missing = [k for k in range(1, count + 1) if k not in given]
    if not missing:
        return []
    return [f"shards {', '.join(f'{k}/{count}' for k in missing)} are missing from the merge: "
            "their accounts are not in this report"]


def _coverage(parts: list[Part], outcomes: list[AccountOutcome], regions: tuple[str, ...]) -> list[Coverage]:
    """Every input's cells; an account that could not be entered gets one error cell per merged region, as a
    single run gives it (a shard only knew its own regions when it scanned 'all')."""
    cells: dict[str, list[Coverage]] = {}
    for p in parts:
        for c in p.doc["coverage"]:
            cell = Coverage(c["account_id"], c["region"], c["status"], logging_enabled=c["logging_enabled"],
                            destinations=tuple(c["destinations"]), large_data_s3=c["large_data_s3"],
                            data_types=tuple(c["data_types"].items()), reason=c.get("reason", ""),
                            last_delivery=c.get("last_delivery"), delivering=c.get("delivering"))
            cells.setdefault(cell.account_id, []).append(cell)
    for o in outcomes:
        if o.status != "error":
            continue
        mine = cells.get(o.id, [])
        if all(c.status == "error" and c.reason == o.reason for c in mine):
            cells[o.id] = [Coverage(o.id, r, "error", reason=o.reason) for r in regions]
    out = [c for cs in cells.values() for c in cs]
    out.sort(key=lambda c: (c.account_id, c.region))
    return out
