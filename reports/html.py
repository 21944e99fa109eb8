"""The report.html renderer: one self-contained, autoescaped page (inline CSS and JS, no external fetch)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import jinja2
import markupsafe

from audit_bedrock.constants import DATA_TYPES, SEVERITIES, SEVERITY_RANK
from audit_bedrock.model import AccountOutcome, Coverage, Finding, ScanResult
from audit_bedrock.reports.json_report import utf8_chunks
from audit_bedrock.reports.words import key_words, plural, value_words

if TYPE_CHECKING:
    from audit_bedrock.reports import RenderContext
    from audit_bedrock.reports.history import RunPoint

TEMPLATE = "report.html"


@cache
def _environment() -> jinja2.Environment:
    # autoescape=True for every template: names, tags, prefixes and messages come from AWS.
    return jinja2.Environment(loader=jinja2.PackageLoader("audit_bedrock.reports", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


@dataclass(frozen=True, slots=True)
class Cell:
    """One matrix cell as the template draws it."""

    region: str
    state: str  # ok | open | off-ok (logging off, no finding) | skipped | error | none (not scanned)
    label: str
    detail: str
    severity: str | None = None
    count: int = 0
    destinations: tuple[str, ...] = ()
    delivery: str = ""  # the last delivery, next to logging on/off (BIL-022's evidence)


@dataclass(frozen=True, slots=True)
class AccountFindings:
    """One account's open findings of one rule."""

    id: str
    name: str
    ou_path: str
    severity: str
    findings: tuple[Finding, ...]
    anchor: bool = False  # the account's first block on the page: it carries id="acct-ID"


@dataclass(frozen=True)
class RuleGroup:
    """The open findings of one rule, by account: its remediation is shown once."""

    rule_id: str
    title: str
    severity: str  # the worst open instance
    default_severity: str  # the rule's own (what --list-rules shows); "" when the rule is not in the catalog
    remediation: str
    references: tuple[str, ...]
    accounts: tuple[AccountFindings, ...]
    count: int
    open: bool  # drawn expanded


@dataclass(frozen=True, slots=True)
class Row:
    """One account's row of the matrix."""

    account: AccountOutcome
    cells: tuple[Cell, ...]
    account_cell: Cell | None
    worst: str | None
    open_count: int


@dataclass(frozen=True)
class OuGroup:
    ou_path: str
    rows: tuple[Row, ...]


@dataclass
class View:
    """Everything the template reads; built once from the ScanResult."""

    result: ScanResult
    ctx: RenderContext
    regions: list[str] = field(default_factory=list)
    collapsed: list[tuple[str, str]] = field(default_factory=list)
    show_account_column: bool = False
    ou_groups: list[OuGroup] = field(default_factory=list)
    rules: list[RuleGroup] = field(default_factory=list)
    rule_summary: list[dict[str, Any]] = field(default_factory=list)
    suppressed: list[Finding] = field(default_factory=list)
    expired: list[Finding] = field(default_factory=list)
    account_errors: list[AccountOutcome] = field(default_factory=list)
    cell_errors: list[tuple[Coverage, str]] = field(default_factory=list)
    gaps: list[Finding] = field(default_factory=list)  # open coverage findings (SCAN-*): what could not be read
    skipped_accounts: list[AccountOutcome] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    baseline_used: bool = False
    new_count: int = 0
    unchanged_count: int = 0
    cells_scanned: int = 0  # account-regions read
    cells_logging: int = 0  # ...of which logging is on
    cells_delivering: int = 0  # ...of which Bedrock was used and the logs arrive (BIL-022's evidence)
    cells_not_delivering: int = 0  # ...of which Bedrock was used and nothing arrives
    worst_accounts: list[dict[str, Any]] = field(default_factory=list)
    fix_first: list[dict[str, Any]] = field(default_factory=list)
    rule_options: list[tuple[str, str]] = field(default_factory=list)  # the rule filter's (id, title)
    fixes: dict[str, list[FixItem]] = field(default_factory=dict)  # finding id -> its fix steps and notes
    trend: list[RunPoint] = field(default_factory=list)  # previous runs and this one, oldest first
    trend_severity: str = ""
    trend_coverage: str = ""
    trend_delivery: bool = False


WORST_ACCOUNTS = 5
FIX_FIRST = 5
OPEN_ALL_AT_MOST = 10  # a page with at most this many open findings draws every rule group expanded
HIDDEN_PROPERTIES = ("suppression", "expired_suppression")  # shown in their own words, not as properties


@dataclass(frozen=True, slots=True)
class FixItem:
    """One step (its AWS CLI command) or note of a finding's fix."""

    command: str
    note: str
    operation: str


def property_rows(f: Finding) -> list[tuple[str, str]]:
    """A finding's properties as (words, words): no dict, list, null or snake_case key shown raw."""
    return [(key_words(k), value_words(v, k)) for k, v in sorted(f.properties.items()) if k not in HIDDEN_PROPERTIES]


def _safe_refs(refs: Any) -> tuple[str, ...]:
    return tuple(str(r) for r in refs or () if isinstance(r, str))


def is_link(ref: str) -> bool:
    """Only http(s) references become links; anything else is shown as text."""
    return ref.startswith(("https://", "http://"))


def _cell(c: Coverage | None, region: str, opens: list[Finding]) -> Cell:
    if c is None:
        return Cell(region, "none", "—", "not scanned")
    if c.status == "skipped":
        return Cell(region, "skipped", "skipped", c.reason or "skipped")
    if c.status == "error":
        return Cell(region, "error", "error", c.reason or "could not be read")
    worst = min((f.severity for f in opens), key=lambda s: SEVERITY_RANK[s], default=None)
    dests = list(c.destinations)
    if c.large_data_s3:
        dests.append("large-data s3")
    types = dict(c.data_types)
    delivered = [t for t in DATA_TYPES if types.get(t)]
    detail = "logging on" if c.logging_enabled else "logging off"
    if c.logging_enabled:
        detail += f" to {', '.join(dests) or 'no destination'}; data types: {', '.join(delivered) or 'none'}"
    delivery = ""
    if c.logging_enabled and c.delivering is not None:
        when = (c.last_delivery or "").replace("T", " ").removesuffix("Z")
        delivery = f"last delivery {when or 'never'}" + ("" if c.delivering else ", not delivering")
        detail += f"; {delivery}"
    if opens:
        detail += f"; {plural(len(opens), 'open finding')}, worst {worst}"
    label = "on" if c.logging_enabled else "off"
    state = "open" if opens else ("ok" if c.logging_enabled else "off-ok")
    return Cell(region, state, label, detail, worst, len(opens), tuple(dests), delivery)


def build_view(result: ScanResult, ctx: RenderContext) -> View:
    """Group the result for the template: matrix rows by OU, findings by account and rule."""
    m = result.meta
    v = View(result, ctx)
    v.names = {a.id: a.name for a in m.accounts}
    opens = result.open_findings()
    v.baseline_used = ctx.baseline is not None or bool(result.fixed) or any(
        f.baseline == "unchanged" for f in result.findings)
    v.new_count = sum(1 for f in opens if f.baseline == "new")
    v.unchanged_count = sum(1 for f in opens if f.baseline == "unchanged")

    # Columns: the scan's regions, then any region seen only in coverage or findings.
    regions = list(m.regions)
    for r in sorted({c.region for c in result.coverage} | {f.region for f in result.findings if f.region}):
        if r not in regions:
            regions.append(r)
    cells = {(c.account_id, c.region): c for c in result.coverage}
    by_cell: dict[tuple[str, str | None], list[Finding]] = {}
    by_account: dict[str, list[Finding]] = {}
    for f in opens:
        by_cell.setdefault((f.account_id, f.region), []).append(f)
        by_account.setdefault(f.account_id, []).append(f)
    # Accounts that were entered decide which columns collapse; the others get one wide cell.
    matrix_accounts = [a for a in m.accounts if a.status == "scanned"]
    shown: list[str] = []
    for r in regions:
        col = [cells.get((a.id, r)) for a in matrix_accounts]
        if matrix_accounts and all(c is not None and c.status == "skipped" for c in col) and not any(
                (a.id, r) in by_cell for a in matrix_accounts):
            reasons = sorted({c.reason for c in col if c is not None and c.reason})
            v.collapsed.append((r, "; ".join(reasons) or "skipped"))
        else:
            shown.append(r)
    if not shown and v.collapsed:  # never collapse every column
        shown, v.collapsed = [r for r, _ in v.collapsed], []
    v.regions = shown
    v.show_account_column = any(f.region is None for f in result.findings)

    groups: dict[str, list[Row]] = {}
    for a in sorted(m.accounts, key=lambda a: (a.ou_path, a.name.lower(), a.id)):
        row_cells = tuple(_cell(cells.get((a.id, r)), r, by_cell.get((a.id, r), [])) for r in v.regions)
        acct_findings = by_cell.get((a.id, None), [])
        acct_cell = None
        if v.show_account_column and a.status == "scanned":  # other rows are one wide cell
            worst = min((f.severity for f in acct_findings), key=lambda s: SEVERITY_RANK[s], default=None)
            acct_cell = Cell("account", "open" if acct_findings else "ok",
                             f"{len(acct_findings)}" if acct_findings else "ok",
                             plural(len(acct_findings), "account-wide open finding") if acct_findings
                             else "no account-wide finding", worst, len(acct_findings))
        mine = by_account.get(a.id, [])
        worst_all = min((f.severity for f in mine), key=lambda s: SEVERITY_RANK[s], default=None)
        groups.setdefault(a.ou_path or "(no OU)", []).append(Row(a, row_cells, acct_cell, worst_all, len(mine)))
    v.ou_groups = [OuGroup(ou, tuple(rows)) for ou, rows in sorted(groups.items())]

    outcome = {a.id: a for a in m.accounts}
    _rule_groups(v, opens, outcome)
    _first_screen(v, opens)
    v.suppressed = [f for f in result.findings if f.status == "suppressed"]
    v.expired = [f for f in result.findings if "expired_suppression" in f.properties]
    v.account_errors = [a for a in m.accounts if a.status == "error"]
    if ctx.fix_plan is not None:
        from audit_bedrock.reports.fixplan import Step, cli_command, profile_variable
        for fid, items in ctx.fix_plan.by_finding().items():  # the commands exactly as fix-plan.sh writes them
            v.fixes[fid] = [FixItem(cli_command(i, f'"${profile_variable(i.account_id)}"'), i.note, i.operation)
                            if isinstance(i, Step) else FixItem("", i.note, "") for i in items]
    if ctx.history:
        from audit_bedrock.reports.history import DELIVERY_RULE, point_from_result, series
        from audit_bedrock.reports.trend import coverage_chart, severity_chart
        v.trend = series(ctx.history, point_from_result(result))
        v.trend_delivery = DELIVERY_RULE in ctx.catalog
        v.trend_severity = severity_chart(v.trend)
        v.trend_coverage = coverage_chart(v.trend, v.trend_delivery)
    v.gaps = [f for f in opens if str(ctx.catalog.get(f.rule_id, {}).get("category") or "") == "coverage"
              or (f.rule_id not in ctx.catalog and f.rule_id.startswith("SCAN-"))]
    v.skipped_accounts = [a for a in m.accounts if a.status == "skipped"]
    v.cell_errors = [(c, v.names.get(c.account_id, "")) for c in result.coverage
                     if c.status == "error" and outcome.get(c.account_id, None) is not None
                     and outcome[c.account_id].status != "error"]
    v.cell_errors += [(c, v.names.get(c.account_id, "")) for c in result.coverage
                      if c.status == "error" and c.account_id not in outcome]
    return v


def _worst(findings: list[Finding]) -> str:
    return min((f.severity for f in findings), key=lambda s: SEVERITY_RANK[s])


def _rule_groups(v: View, opens: list[Finding], outcome: dict[str, AccountOutcome]) -> None:
    """Open findings by rule (worst first), each rule's by account (worst first); and the rules table."""
    per_rule: dict[str, list[Finding]] = {}
    for f in opens:
        per_rule.setdefault(f.rule_id, []).append(f)
    expand = len(opens) <= OPEN_ALL_AT_MOST
    anchored: set[str] = set()
    for rid in sorted(per_rule, key=lambda r: (SEVERITY_RANK[_worst(per_rule[r])], -len(per_rule[r]), r)):
        rfs, cat = per_rule[rid], v.ctx.catalog.get(rid, {})
        per_account: dict[str, list[Finding]] = {}
        for f in rfs:
            per_account.setdefault(f.account_id, []).append(f)
        blocks = []
        for acct_id, fs in per_account.items():
            o = outcome.get(acct_id)
            fs.sort(key=lambda f: (*f.sort_key(), f.id))
            blocks.append(AccountFindings(acct_id, o.name if o else (fs[0].account_name or ""),
                                          o.ou_path if o else "", _worst(fs), tuple(fs)))
        blocks.sort(key=lambda b: (SEVERITY_RANK[b.severity], -len(b.findings), b.name.lower(), b.id))
        for i, b in enumerate(blocks):
            if b.id not in anchored:
                anchored.add(b.id)
                blocks[i] = replace(b, anchor=True)
        v.rules.append(RuleGroup(
            rid, str(cat.get("title") or rfs[0].title), _worst(rfs), str(cat.get("severity") or ""),
            str(cat.get("remediation") or rfs[0].remediation), _safe_refs(cat.get("references")), tuple(blocks),
            len(rfs), expand))
    for g in sorted(v.rules, key=lambda g: (SEVERITY_RANK[g.severity], g.rule_id)):
        v.rule_summary.append({"id": g.rule_id, "title": g.title, "severity": g.severity,
                               "default": g.default_severity, "count": g.count, "accounts": len(g.accounts)})
    per_acct: dict[str, list[Finding]] = {}
    for f in opens:
        per_acct.setdefault(f.account_id, []).append(f)
    worst = sorted(per_acct, key=lambda a: (SEVERITY_RANK[_worst(per_acct[a])], -len(per_acct[a]),
                                            v.names.get(a, "").lower(), a))
    for a in worst[:WORST_ACCOUNTS]:
        o = outcome.get(a)
        v.worst_accounts.append({"id": a, "name": o.name if o else (per_acct[a][0].account_name or ""),
                                 "severity": _worst(per_acct[a]), "count": len(per_acct[a])})
    suppressed = {f.rule_id: f.title for f in v.result.findings if f.status == "suppressed"}
    titles = {**suppressed, **{g.rule_id: g.title for g in v.rules}}
    v.rule_options = [(rid, str(v.ctx.catalog.get(rid, {}).get("title") or titles[rid])) for rid in sorted(titles)]


def _first_screen(v: View, opens: list[Finding]) -> None:
    """What the page says first: logging coverage, the worst accounts, and the few fixes that remove most of
    the critical and high findings (rules ordered by how many such findings each accounts for)."""
    scanned = [c for c in v.result.coverage if c.status == "scanned"]
    v.cells_scanned, v.cells_logging = len(scanned), sum(1 for c in scanned if c.logging_enabled)
    v.cells_delivering = sum(1 for c in scanned if c.logging_enabled and c.delivering is True)
    v.cells_not_delivering = sum(1 for c in scanned if c.logging_enabled and c.delivering is False)
    urgent: dict[str, list[Finding]] = {}
    for f in opens:
        if SEVERITY_RANK[f.severity] <= SEVERITY_RANK["high"]:
            urgent.setdefault(f.rule_id, []).append(f)
    total = sum(len(fs) for fs in urgent.values())
    order = sorted(urgent, key=lambda r: (-len(urgent[r]), min(SEVERITY_RANK[f.severity] for f in urgent[r]), r))
    for rid in order[:FIX_FIRST]:
        fs, cat = urgent[rid], v.ctx.catalog.get(rid, {})
        v.fix_first.append({"id": rid, "title": str(cat.get("title") or fs[0].title),
                            "remediation": str(cat.get("remediation") or fs[0].remediation),
                            "severity": SEVERITIES[min(SEVERITY_RANK[f.severity] for f in fs)],
                            "removes": plural(len(fs), "finding"),
                            "accounts": plural(len({f.account_id for f in fs}), "account"),
                            "share": round(100 * len(fs) / total) if total else 0})


@cache
def _asset(name: str) -> str:
    """A static file inlined verbatim (not a template: it must not be escaped)."""
    return resources.files("audit_bedrock.reports").joinpath("templates", name).read_text(encoding="utf-8")


def code_spans(text: str) -> markupsafe.Markup:
    """`text` escaped, with each `backticked` run shown as <code>."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unmatched backtick: plain text
        return markupsafe.Markup("{}").format(text)
    out = markupsafe.Markup("")
    for i, part in enumerate(parts):
        out += markupsafe.Markup("<code>{}</code>").format(part) if i % 2 else markupsafe.escape(part)
    return out


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _pieces(result: ScanResult, ctx: RenderContext) -> Iterator[str]:
    """The page, piece by piece. Its CSP allows only the page's own inline style and script (by hash)."""
    env = _environment()
    view = build_view(result, ctx)
    style, script = _asset("report.css"), _asset("report.js")
    csp = (f"default-src 'none'; style-src {_csp_hash(style)}; script-src {_csp_hash(script)}; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    pieces: Iterator[str] = env.get_template(TEMPLATE).generate(
        v=view, m=result.meta, severities=SEVERITIES, summary=result.summary(), style=style, script=script,
        csp=csp, is_link=is_link, data_types=DATA_TYPES, plural=plural, code=code_spans,
        properties=property_rows)
    return pieces


def render_text(result: ScanResult, ctx: RenderContext) -> str:
    """The page as text."""
    return "".join(_pieces(result, ctx))


def stream(result: ScanResult, ctx: RenderContext) -> Iterator[bytes]:
    """The page's bytes in chunks, without jinja's list of every piece."""
    return utf8_chunks(_pieces(result, ctx))


def render(result: ScanResult, ctx: RenderContext) -> bytes:
    return b"".join(stream(result, ctx))
