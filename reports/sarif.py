"""The findings.sarif renderer: SARIF 2.1.0 shaped for GitHub code scanning ingestion.

GitHub's rules this renderer follows:
- every result has a physical location whose uri is a RELATIVE pseudo-path without a scheme
  (`aws/ACCOUNT/REGION/bedrock-invocation-logging`, region `global` for account scope) and
  `region.startLine: 1`; the ARN (a URI with scheme `arn`) goes in `logicalLocations` and properties;
- `partialFingerprints.primaryLocationLineHash` is the finding id, so alerts are tracked across runs;
- each rule carries `properties.security-severity` as a numeric string and a `security` tag;
- `automationDetails.id` gives each organization (or single account) its own category, and a subset scan
  (`--ou`, `--accounts`, `--exclude-accounts`) its own below it (`audit-bedrock/ORG/ou-x/`): GitHub closes the
  alerts a category's new upload no longer has, so a subset must never share the whole organization's category.
  upload-sarif's `category` input only fills in a missing id (codeql-action's populateRunAutomationDetails), so
  it is ignored for this file: leave it unset;
- `tool.driver.informationUri` is the project's home page as its installed metadata names it (pyproject's
  `[project.urls]`); the project declares none, so the field (optional in SARIF 2.1.0) is left out
  rather than filled with a made-up address;
- a `--shard K/N` run's own SARIF gets its own category too (`.../shard-K-of-N/`): only the merge covers them all;
- at most 25,000 results per run and 10 MB gzipped: the most severe findings are kept, and the run
  says how many were left out.

Severity mapping (GitHub reads security-severity: >= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium,
0.1-3.9 low): critical 9.5, high 8.0, medium 5.5, low 3.0, info 1.0 (shown as low). A rule's
security-severity is that of its most severe result in the run (a rule such as BIL-004 fires at
medium or high, and severity overrides may raise it); each result's own level is error (critical,
high), warning (medium) or note (low, info).
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from importlib import metadata
from typing import TYPE_CHECKING, Any

from audit_bedrock.constants import SEVERITY_RANK
from audit_bedrock.model import Finding, ScanResult
from audit_bedrock.reports.json_report import Rows, json_chunks

if TYPE_CHECKING:
    from audit_bedrock.reports import RenderContext

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SARIF_VERSION = "2.1.0"
MAX_RESULTS = 25_000
MAX_GZIP_BYTES = 10 * 1024 * 1024
SECURITY_SEVERITY: dict[str, str] = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}
LEVEL: dict[str, str] = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
ARTIFACT = "bedrock-invocation-logging"
DISTRIBUTION = "audit-bedrock"
# Project-URL labels that name a home page, most specific first (core metadata 2.1, "Project-URL").
HOME_LABELS = ("homepage", "home", "repository", "source", "sourcecode", "documentation")
_SAFE_SEGMENT = re.compile(r"[^A-Za-z0-9._-]")


def location_uri(finding: Finding) -> str:
    """The relative pseudo-path GitHub shows as the alert's file; never a URI with a scheme."""
    account = _SAFE_SEGMENT.sub("_", finding.account_id) or "unknown"
    region = _SAFE_SEGMENT.sub("_", finding.region) if finding.region else "global"
    return f"aws/{account}/{region}/{ARTIFACT}"


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if not text or text.endswith((".", "!", "?")) else text + "."


def plain_message(text: str) -> str:
    """Message text as SARIF's plain-text format requires (SARIF 2.1.0, 3.11.6): `[` and `]` that do not
    open an embedded link, and `\\`, escaped with a backslash, so an AWS-controlled value such as a key prefix
    `[Fix it now](https://evil.example)` is shown as text, never as a live link."""
    return re.sub(r"([\\\[\]])", r"\\\1", text)


def _pascal(title: str) -> str:
    """A Pascal-case friendly name from a title (SARIF2012): words capitalised, one-letter words dropped."""
    words = [w for w in re.findall(r"[A-Za-z0-9]+", title) if len(w) > 1 or w.isdigit()]
    name = "".join(w[:1].upper() + w[1:].lower() for w in words)
    return name if name[:1].isalpha() else "Rule" + name


def _rule(rule_id: str, catalog: dict[str, Any], first: Finding, severity: str) -> dict[str, Any]:
    """One reportingDescriptor from the catalog entry (or, lacking one, from a finding)."""
    title = str(catalog.get("title") or first.title or rule_id)
    rationale = str(catalog.get("rationale") or "")
    remediation = str(catalog.get("remediation") or first.remediation or "")
    refs = [str(r) for r in catalog.get("references") or () if str(r).startswith(("https://", "http://"))]
    default = str(catalog.get("severity") or first.severity)
    text = [f"{title}.", f"Severity: {severity}."]
    md = [f"**{title}**", "", f"Severity: **{severity}**"]
    if rationale:
        text.append(rationale)
        md += ["", rationale]
    if remediation:
        text.append(f"Remediation: {remediation}")
        md += ["", "**Remediation**", "", remediation]
    if refs:
        text.append("References: " + " ".join(refs))
        md += ["", "**References**", "", *(f"- <{r}>" for r in refs)]
    scope = str(catalog.get("scope") or ("account" if first.region is None else "region"))
    tags = ["security", "aws", "bedrock", "logging"]
    category = str(catalog.get("category") or "")
    if category:
        tags.append(category)
    rule: dict[str, Any] = {
        "id": rule_id,
        "name": _pascal(title),
        "shortDescription": {"text": _sentence(title)},
        "fullDescription": {"text": _sentence(rationale or title)},
        "help": {"text": "\n\n".join(text), "markdown": "\n".join(md)},
        "defaultConfiguration": {"level": LEVEL[default] if default in LEVEL else "warning"},
        "properties": {"tags": tags, "security-severity": SECURITY_SEVERITY[severity],
                       "precision": "very-high", "problem.severity": LEVEL[severity],
                       "default-severity": default, "scope": scope},
    }
    if refs:
        rule["helpUri"] = refs[0]
    return rule


def _result(f: Finding, rule_index: int, rechecked: bool = True) -> dict[str, Any]:
    props: dict[str, Any] = {"resource": f.resource, "accountId": f.account_id, "accountName": f.account_name,
                             "region": f.region, "severity": f.severity, "findingId": f.id,
                             "baseline": f.baseline, "status": f.status}
    extra = {k: v for k, v in f.properties.items() if k not in ("suppression",)}
    if extra:
        props["details"] = extra
    res: dict[str, Any] = {
        "ruleId": f.rule_id,
        "ruleIndex": rule_index,
        "level": LEVEL.get(f.severity, "warning"),
        "message": {"text": plain_message(_sentence(f.message or f.title))},
        "locations": [{
            "physicalLocation": {"artifactLocation": {"uri": location_uri(f)}, "region": {"startLine": 1}},
            "logicalLocations": [{"fullyQualifiedName": f.resource, "kind": "resource"}],
        }],
        "partialFingerprints": {"primaryLocationLineHash": f.id},
        "properties": props,
    }
    if not rechecked:  # kept open in code scanning: this run did not read it again, so it is not fixed
        res["baselineState"] = "unchanged"
        props["notRechecked"] = True
    sup = f.properties.get("suppression")
    if f.status == "suppressed":
        info = sup if isinstance(sup, dict) else {}
        entry: dict[str, Any] = {"kind": "external", "status": "accepted",
                                 "justification": str(info.get("reason") or "suppressed by configuration")}
        if info.get("expires"):
            entry["properties"] = {"expires": str(info["expires"])}
        res["suppressions"] = [entry]
    return res


def _digest(ids: list[str]) -> str:
    return hashlib.sha256(",".join(sorted(set(ids))).encode()).hexdigest()[:12]


def scope_key(ous: list[str] | tuple[str, ...] = (), accounts: list[str] | tuple[str, ...] = (),
              exclude: list[str] | tuple[str, ...] = ()) -> str:
    """The scanned subset as a category segment: '' for a whole organization (or the caller's account alone).

    `--ou` names its OUs (sorted, joined by '+'); an `--accounts` list or `--exclude-accounts` is named by a
    digest of the sorted ids, so the same subset always gets the same category and another subset never does.
    """
    parts = []
    if ous:
        parts.append("+".join(sorted(set(ous))))
    if accounts:
        parts.append(f"accounts-{_digest(list(accounts))}")
    if exclude:
        parts.append(f"excluding-{_digest(list(exclude))}")
    return re.sub(r"[^A-Za-z0-9._+-]", "_", "+".join(parts))


def automation_id(result: ScanResult, scope: str = "") -> str:
    """One category per organization, one below it per scanned subset; a single-account scan gets the account's."""
    shard = result.meta.shard
    parts = [p for p in (scope, f"shard-{shard[0]}-of-{shard[1]}" if shard else "") if p]
    scanned = [a.id for a in result.meta.accounts if a.status != "skipped"]
    if len(scanned) == 1 and not shard:
        return f"audit-bedrock/{scanned[0]}/"
    key = result.meta.organization_id or result.meta.caller_account or "unknown"
    return "/".join(["audit-bedrock", key, *parts]) + "/"


def home_page(meta: metadata.PackageMetadata | None) -> str | None:
    """The https home page in a distribution's core metadata (Project-URL, else Home-page); None without one."""
    if meta is None:
        return None
    urls: dict[str, str] = {}
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = str(entry).partition(",")
        urls.setdefault(re.sub(r"[^a-z]", "", label.lower()), url.strip())
    candidates = [urls.get(label, "") for label in HOME_LABELS] + [str(u) for u in meta.get_all("Home-page") or []]
    return next((u for u in candidates if u.startswith("https://")), None)


@lru_cache(maxsize=1)
def information_uri() -> str | None:
    """`tool.driver.informationUri`: the installed project's home page, or None (the field is then omitted)."""
    try:
        return home_page(metadata.metadata(DISTRIBUTION))
    except metadata.PackageNotFoundError:
        return None


def _skipped_regions(result: ScanResult) -> list[dict[str, Any]]:
    """One note per reason regions were skipped (a region not enabled, a service control policy denying
    Bedrock), naming the regions and how many accounts: a large organization's cells stay a few lines."""
    by_reason: dict[str, list[tuple[str, str]]] = {}
    for c in result.coverage:
        if c.status == "skipped":
            by_reason.setdefault(c.reason or "skipped", []).append((c.account_id, c.region))
    notes = []
    for reason, cells in sorted(by_reason.items()):
        regions = sorted({r for _, r in cells})
        accounts = sorted({a for a, _ in cells})
        notes.append({"level": "note", "descriptor": {"id": "audit-bedrock/region-skipped"},
                      "message": {"text": plain_message(_sentence(
                          f"Skipped {len(cells)} region(s) ({', '.join(regions)}) in {len(accounts)} account(s): "
                          f"{reason}"))},
                      "properties": {"reason": reason, "regions": regions, "accounts": accounts[:100],
                                     "accountCount": len(accounts)}})
    return notes


def _ordered(findings: tuple[Finding, ...]) -> list[Finding]:
    """Most severe first, open before suppressed, then the findings' own deterministic order."""
    return sorted(findings, key=lambda f: (SEVERITY_RANK.get(f.severity, 9), f.status != "open",
                                           *f.sort_key()[1:], f.id))


def _document(result: ScanResult, ctx: RenderContext, kept: list[Finding], omitted: int,
              reason: str) -> dict[str, Any]:
    order: list[str] = []
    worst: dict[str, str] = {}
    first: dict[str, Finding] = {}
    for f in kept:
        if f.rule_id not in first:
            first[f.rule_id] = f
            order.append(f.rule_id)
            worst[f.rule_id] = f.severity
        elif SEVERITY_RANK[f.severity] < SEVERITY_RANK[worst[f.rule_id]]:
            worst[f.rule_id] = f.severity
    order.sort()
    index = {rid: i for i, rid in enumerate(order)}
    rules = [_rule(rid, ctx.catalog.get(rid, {}), first[rid], worst[rid]) for rid in order]
    m = result.meta
    carried = {f.id for f in result.not_rechecked}
    notifications: list[dict[str, Any]] = []
    if omitted:
        notifications.append({"level": "warning", "descriptor": {"id": "audit-bedrock/truncated"},
                              "message": {"text": f"{omitted} finding(s) were left out of this SARIF file "
                                                  f"({reason}); the most severe were kept. "
                                                  "findings.json holds them all."}})
    for a in m.accounts:
        if a.status == "error":
            notifications.append({"level": "error", "descriptor": {"id": "audit-bedrock/account-error"},
                                  "message": {"text": plain_message(
                                      _sentence(f"Account {a.id} could not be scanned: {a.reason}"))}})
    notifications.extend(_skipped_regions(result))
    invocation: dict[str, Any] = {"executionSuccessful": not m.incomplete}
    if m.started_at:
        invocation["startTimeUtc"] = m.started_at
    if m.finished_at:
        invocation["endTimeUtc"] = m.finished_at
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    driver: dict[str, Any] = {"name": "audit-bedrock", "version": ctx.version, "semanticVersion": ctx.version}
    home = information_uri()
    if home:
        driver["informationUri"] = home
    driver["rules"] = rules
    run: dict[str, Any] = {
        "tool": {"driver": driver},
        "automationDetails": {"id": automation_id(result, ctx.scope)},
        "invocations": [invocation],
        "columnKind": "unicodeCodePoints",
        "results": Rows(kept, lambda f: _result(f, index[f.rule_id], f.id not in carried)),
        "properties": {
            "organizationId": m.organization_id, "callerAccount": m.caller_account, "regions": list(m.regions),
            "accountsScanned": sum(1 for a in m.accounts if a.status == "scanned"),
            "complete": not m.incomplete, "totalFindings": len(result.findings),
            "omittedFindings": omitted, "truncated": bool(omitted),
        },
    }
    if omitted:
        run["properties"]["truncationReason"] = reason
    if carried:
        run["properties"]["notRecheckedFindings"] = len(carried)
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def _chunks(doc: dict[str, Any]) -> Iterator[bytes]:
    # json.dumps' bytes (see json_report.json_chunks), each result made and encoded as it is written
    return json_chunks(doc, indent=1, ensure_ascii=False, depth=3)


def _encode(doc: dict[str, Any]) -> bytes:
    return b"".join(_chunks(doc))


def _gzipped_size(chunks: Iterable[bytes]) -> int:
    """len(gzip.compress(b"".join(chunks), compresslevel=6, mtime=0)), one chunk at a time (zlib's output does not
    depend on how its input is split)."""
    z = zlib.compressobj(6, zlib.DEFLATED, 31)  # what gzip.compress(..., mtime=0) calls zlib with
    size = sum(len(z.compress(c)) for c in chunks)
    return size + len(z.flush())


def _fitted(result: ScanResult, ctx: RenderContext, max_results: int,
            max_gzip_bytes: int) -> Callable[[], dict[str, Any]]:
    """The document to write, as a function making it: the most severe findings when over either limit.

    Within the limits the document is made twice (once to measure its gzipped size, once to write it), never
    held whole; over the size limit the largest prefix of the findings that fits is searched for."""
    ordered = _ordered((*result.findings, *result.not_rechecked))
    keep = min(len(ordered), max_results)
    reason = f"GitHub accepts at most {max_results} results per run" if keep < len(ordered) else ""

    def doc(n: int, why: str) -> Callable[[], dict[str, Any]]:
        return lambda: _document(result, ctx, ordered[:n], len(ordered) - n, why)

    if _gzipped_size(_chunks(doc(keep, reason)())) <= max_gzip_bytes:
        return doc(keep, reason)
    # Too big: find the largest prefix that fits (the size grows with the number of results).
    reason = f"GitHub accepts at most {max_gzip_bytes} bytes of gzipped SARIF"
    lo, hi = 0, keep
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _gzipped_size(_chunks(doc(mid, reason)())) <= max_gzip_bytes:
            lo = mid
        else:
            hi = mid - 1
    return doc(lo, reason)


def stream_sarif(result: ScanResult, ctx: RenderContext, max_results: int = MAX_RESULTS,
                 max_gzip_bytes: int = MAX_GZIP_BYTES) -> Iterator[bytes]:
    """The SARIF file in chunks, keeping the most severe findings when over either limit."""
    return _chunks(_fitted(result, ctx, max_results, max_gzip_bytes)())


def to_sarif(result: ScanResult, ctx: RenderContext, max_results: int = MAX_RESULTS,
             max_gzip_bytes: int = MAX_GZIP_BYTES) -> bytes:
    """Render, keeping the most severe findings when over either limit."""
    return b"".join(stream_sarif(result, ctx, max_results, max_gzip_bytes))


def stream(result: ScanResult, ctx: RenderContext) -> Iterator[bytes]:
    return stream_sarif(result, ctx)


def render(result: ScanResult, ctx: RenderContext) -> bytes:
    return to_sarif(result, ctx)
