"""The terminal summary: counts by severity, the worst accounts, the baseline diff, and where the reports are."""

from __future__ import annotations

import os
import sys
from collections import Counter
from typing import TYPE_CHECKING, TextIO

from audit_bedrock.constants import SEVERITIES, SEVERITY_RANK
from audit_bedrock.errors import printable
from audit_bedrock.model import Finding, ScanResult
from audit_bedrock.reports.words import plural

if TYPE_CHECKING:
    from audit_bedrock.reports.history import RunPoint

_COLOURS = {"critical": "\033[1;35m", "high": "\033[1;31m", "medium": "\033[33m", "low": "\033[36m",
            "info": "\033[2m", "new": "\033[1;33m", "fixed": "\033[32m",
            "not re-checked": "\033[2m"}
_RESET = "\033[0m"
WORST_ACCOUNTS = 5
DIFF_LINES = 5


def use_colour(out: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


def _paint(text: str, key: str, colour: bool) -> str:
    return f"{_COLOURS[key]}{text}{_RESET}" if colour else text


def _line(f: Finding, names: dict[str, str]) -> str:
    name = names.get(f.account_id) or f.account_name or "-"
    return printable(f"{f.severity:<8} {f.rule_id:<9} {f.account_id} ({name}) {f.region or 'account-wide'}: "
                     f"{f.title}")


def since_last_run(result: ScanResult, previous: RunPoint) -> str:
    """One line: the change of open findings by severity and of the logging-on share since `previous`."""
    from audit_bedrock.reports.history import point_from_result

    now = point_from_result(result)
    deltas = []
    for sev in SEVERITIES:
        d = now.count(sev) - previous.count(sev)
        deltas.append(f"{sev} {d:+d}" if d else f"{sev} =")
    total = now.total - previous.total
    line = f"since last run ({previous.label}): {total:+d} open ({', '.join(deltas)})"
    before, after = previous.share(previous.logging_on), now.share(now.logging_on)
    if before is not None and after is not None:
        line += f"; logging on {before:.0%} -> {after:.0%} of scanned account-regions"
    return line


def render_summary(result: ScanResult, written: list[str], out: TextIO | None = None,
                   colour: bool | None = None, baseline: bool | None = None, brief: bool = False,
                   previous: RunPoint | None = None) -> None:
    """Print the summary; `baseline` says whether findings were compared with a previous run
    (None: guess from the result). `brief` (-q): the counts, the baseline verdict and the paths only.
    `previous` is the last run of --history, if any."""
    out = out or sys.stdout
    if colour is None:
        colour = use_colour(out)
    m = result.meta
    scanned = sum(1 for a in m.accounts if a.status == "scanned")
    errors = sum(1 for a in m.accounts if a.status == "error")
    skipped = sum(1 for a in m.accounts if a.status == "skipped")
    interrupted = sum(1 for a in m.accounts if a.status == "interrupted")
    stopped = f", {interrupted} interrupted" if interrupted else ""
    print(f"audit-bedrock: {plural(scanned, 'account')} scanned, {plural(errors, 'error')}, {skipped} skipped"
          f"{stopped}; {plural(len(m.regions), 'region')}; {plural(m.api_calls, 'API call')}", file=out)
    counts = result.summary()
    cells = []
    for sev in SEVERITIES:
        label = f"{sev}: {counts[sev]}"
        cells.append(_paint(label, sev, colour and bool(counts[sev])))
    print("open findings  " + "  ".join(cells), file=out)
    silent = sum(1 for c in result.coverage if c.logging_enabled and c.delivering is False)
    if silent:
        print(f"regions on but not delivering: {silent} (BIL-022)", file=out)
    suppressed = sum(1 for f in result.findings if f.status == "suppressed")
    if suppressed:
        print(f"suppressed     {suppressed}", file=out)
    if previous is not None:
        print(since_last_run(result, previous), file=out)
    names = {a.id: a.name for a in m.accounts}
    if baseline is None:
        baseline = bool(result.fixed) or any(f.baseline == "unchanged" for f in result.findings)
    if baseline:
        new = [f for f in result.open_findings() if f.baseline == "new"]
        unchanged = sum(1 for f in result.open_findings() if f.baseline == "unchanged")
        print(f"vs baseline    {_paint(f'{len(new)} new', 'new', colour and bool(new))}, {unchanged} unchanged, "
              f"{_paint(f'{len(result.fixed)} fixed', 'fixed', colour and bool(result.fixed))}"
              + (f", {len(result.not_rechecked)} not re-checked" if result.not_rechecked else ""), file=out)
        diff = (("new", new), ("fixed", list(result.fixed)), ("not re-checked", list(result.not_rechecked)))
        for label, items in () if brief else diff:
            items = sorted(items, key=lambda f: (*f.sort_key(), f.id))
            for f in items[:DIFF_LINES]:
                print(f"  {_paint(f'{label:<5}', label, colour)} {_line(f, names)}", file=out)
            if len(items) > DIFF_LINES:
                print(f"  ... and {len(items) - DIFF_LINES} more {label}", file=out)
    worst: Counter[str] = Counter()
    rank: dict[str, int] = {}
    for f in result.open_findings():
        worst[f.account_id] += 1
        rank[f.account_id] = min(rank.get(f.account_id, 99), SEVERITY_RANK[f.severity])
    if worst and not brief:
        print("worst accounts:", file=out)
        top = sorted(worst, key=lambda a: (rank[a], -worst[a], a))[:WORST_ACCOUNTS]
        for acct in top:
            label = printable(f"{acct} ({names.get(acct) or '-'})")
            sev = SEVERITIES[rank[acct]]
            print(f"  {label:<40} {worst[acct]:>3} open, worst {_paint(sev, sev, colour)}", file=out)
    for notice in () if brief else result.notices:
        print(f"note: {printable(notice)}", file=out)
    if m.interrupted:
        print("the scan was interrupted: the reports cover only what was scanned", file=out)
    elif m.incomplete:
        print("the scan is incomplete: see the SCAN-* findings and the accounts with errors", file=out)
    for path in written:
        print(f"wrote {printable(path)}", file=out)
