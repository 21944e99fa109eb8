"""The terminal summary: counts by severity, the worst accounts, and where the reports are."""

from __future__ import annotations

import sys
from collections import Counter
from typing import TextIO

from audit_bedrock.model import SEVERITIES, SEVERITY_RANK, ScanResult

_COLOURS = {"critical": "\033[1;35m", "high": "\033[1;31m", "medium": "\033[33m", "low": "\033[36m",
            "info": "\033[2m"}
_RESET = "\033[0m"


def render_summary(result: ScanResult, written: list[str], out: TextIO | None = None,
                   colour: bool | None = None) -> None:
    """Print the summary table; colour only when `out` is a terminal."""
    out = out or sys.stdout
    if colour is None:
        colour = out.isatty()
    m = result.meta
    scanned = sum(1 for a in m.accounts if a.status == "scanned")
    errors = sum(1 for a in m.accounts if a.status == "error")
    skipped = sum(1 for a in m.accounts if a.status == "skipped")
    print(f"audit-bedrock: {scanned} account(s) scanned, {errors} error, {skipped} skipped; "
          f"{len(m.regions)} region(s); {m.api_calls} API calls", file=out)
    counts = result.summary()
    cells = []
    for sev in SEVERITIES:
        label = f"{sev}: {counts[sev]}"
        cells.append(f"{_COLOURS[sev]}{label}{_RESET}" if colour and counts[sev] else label)
    print("open findings  " + "  ".join(cells), file=out)
    suppressed = sum(1 for f in result.findings if f.status == "suppressed")
    if suppressed:
        print(f"suppressed     {suppressed}", file=out)
    if result.fixed or any(f.baseline == "unchanged" for f in result.findings):
        new = sum(1 for f in result.open_findings() if f.baseline == "new")
        print(f"vs baseline    {new} new, {len(result.fixed)} fixed", file=out)
    worst: Counter[str] = Counter()
    rank: dict[str, int] = {}
    names = {a.id: a.name for a in m.accounts}
    for f in result.open_findings():
        worst[f.account_id] += 1
        rank[f.account_id] = min(rank.get(f.account_id, 99), SEVERITY_RANK[f.severity])
    if worst:
        print("worst accounts:", file=out)
        top = sorted(worst, key=lambda a: (rank[a], -worst[a], a))[:5]
        for acct in top:
            label = f"{acct} ({names.get(acct) or '-'})"
            print(f"  {label:<40} {worst[acct]:>3} open, worst {SEVERITIES[rank[acct]]}", file=out)
    for notice in result.notices:
        print(f"note: {notice}", file=out)
    if m.interrupted:
        print("the scan was interrupted: the reports cover only what was scanned", file=out)
    elif m.incomplete:
        print("the scan is incomplete: see the SCAN-* findings and the accounts with errors", file=out)
    for path in written:
        print(f"wrote {path}", file=out)
