"""The summary.md renderer: GitHub-flavoured Markdown for a CI job summary ($GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING

from audit_bedrock.constants import SEVERITIES, SEVERITY_RANK
from audit_bedrock.model import Finding, ScanResult
from audit_bedrock.reports.words import plural

if TYPE_CHECKING:
    from audit_bedrock.reports import RenderContext

WORST_ACCOUNTS = 5
RULE_ROWS = 15
# Inside a table cell (never at a line's start) these are the characters GFM gives a meaning: emphasis, code,
# links and images, strikethrough, the cell separator, the escape itself.
_SPECIAL = re.compile(r"([\\`*_\[\]()!|~])")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def cell(text: object) -> str:
    """`text` safe inside a Markdown table cell: one line, Markdown characters backslash-escaped, the HTML ones
    as entities (no `<` is left for GitHub to read as a tag)."""
    escaped = _SPECIAL.sub(r"\\\1", " ".join(str(text).split()))
    return re.sub(r"[&<>]", lambda m: _HTML[m.group(0)], escaped)


def stream(result: ScanResult, ctx: RenderContext) -> Iterator[bytes]:
    """summary.md is a few kilobytes: one chunk."""
    yield render(result, ctx)


def render(result: ScanResult, ctx: RenderContext) -> bytes:
    """The Markdown summary: verdict, counts, coverage, worst accounts, findings by rule."""
    m = result.meta
    open_ = result.open_findings()
    counts = result.summary()
    scanned = [c for c in result.coverage if c.status == "scanned"]
    enabled = sum(1 for c in scanned if c.logging_enabled)
    lines = ["## audit-bedrock: Bedrock model invocation logging", ""]
    verdict = "complete" if not m.incomplete else "**incomplete** (see the SCAN-* findings)"
    delivering = sum(1 for c in scanned if c.logging_enabled and c.delivering is True)
    silent = sum(1 for c in scanned if c.logging_enabled and c.delivering is False)
    evidence = ""
    if delivering or silent:  # BIL-022's evidence, worded as the HTML headline words it
        evidence = f" Where Bedrock was used, {delivering} delivering"
        evidence += f", {silent} not delivering." if silent else "."
    lines += [f"Logging is on in **{enabled} of {len(scanned)}** scanned account-regions; the scan is {verdict}."
              + evidence, ""]
    lines += ["| " + " | ".join(SEVERITIES) + " |", "|" + " --- |" * len(SEVERITIES),
              "| " + " | ".join(str(counts[s]) for s in SEVERITIES) + " |", ""]
    if result.fixed or any(f.baseline == "unchanged" for f in result.findings):
        new = sum(1 for f in open_ if f.baseline == "new")
        lines += [f"Against the baseline: {new} new, {plural(len(result.fixed), 'finding')} fixed.", ""]
    names = {a.id: a.name for a in m.accounts}
    worst: Counter[str] = Counter(f.account_id for f in open_)
    rank: dict[str, int] = {}
    for f in open_:
        rank[f.account_id] = min(rank.get(f.account_id, 99), SEVERITY_RANK[f.severity])
    if worst:
        lines += ["### Worst accounts", "", "| account | open findings | worst |", "| --- | --- | --- |"]
        for acct in sorted(worst, key=lambda a: (rank[a], -worst[a], a))[:WORST_ACCOUNTS]:
            lines.append(f"| {cell(acct)} {cell(names.get(acct) or '')} | {worst[acct]} | {SEVERITIES[rank[acct]]} |")
        lines.append("")
    by_rule: dict[str, list[Finding]] = defaultdict(list)
    for f in open_:
        by_rule[f.rule_id].append(f)
    if by_rule:
        lines += ["### Findings by rule", "", "| rule | worst open finding | title | accounts |",
                  "| --- | --- | --- | --- |"]
        order = sorted(by_rule, key=lambda r: (min(SEVERITY_RANK[f.severity] for f in by_rule[r]), r))
        for rid in order[:RULE_ROWS]:
            fs = by_rule[rid]
            sev = SEVERITIES[min(SEVERITY_RANK[f.severity] for f in fs)]
            accounts = len({f.account_id for f in fs})
            lines.append(f"| {cell(rid)} | {sev} | {cell(fs[0].title)} | {plural(accounts, 'account')} |")
        if len(order) > RULE_ROWS:
            lines.append(f"| ... | | {len(order) - RULE_ROWS} more rules: see the HTML report | |")
        lines.append("")
    lines.append(f"<sub>audit-bedrock {cell(ctx.version)}; {plural(m.api_calls, 'API call')}</sub>")
    return ("\n".join(lines) + "\n").encode()
