"""The audit-bedrock command line: parse flags, run a scan (or re-evaluate facts), write reports, exit."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audit_bedrock import __version__

if TYPE_CHECKING:
    from audit_bedrock.config import Config
    from audit_bedrock.engine import Rule
    from audit_bedrock.model import ScanResult

log = logging.getLogger("audit_bedrock")

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_FORMATS = "json,html,sarif"
_ACCOUNT_RE = re.compile(r"^\d{12}$")


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _accounts(value: str) -> list[str]:
    ids = _csv(value)
    for i in ids:
        if not _ACCOUNT_RE.match(i):
            raise argparse.ArgumentTypeError(f"'{i}' is not a 12-digit AWS account id")
    return ids


def _shard(value: str) -> tuple[int, int]:
    from audit_bedrock.shard import parse_shard
    return parse_shard(value)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="audit-bedrock",
        description="Audit Amazon Bedrock model invocation logging across an AWS Organization.",
        epilog="Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage or config error, "
               "3 scan incomplete, 130 interrupted.",
    )
    scope = p.add_argument_group("what to scan")
    scope.add_argument("--org", action="store_true", help="every ACTIVE account of the organization")
    scope.add_argument("--accounts", type=_accounts, metavar="ID,ID", help="only these accounts")
    scope.add_argument("--exclude-accounts", type=_accounts, metavar="ID,ID", default=[],
                       help="leave these accounts out")
    scope.add_argument("--ou", action="append", metavar="OU_ID", default=[],
                       help="accounts under this OU or root, recursively (repeatable)")
    scope.add_argument("--regions", metavar="all|r1,r2", help="default all: every Bedrock region enabled")
    scope.add_argument("--shard", type=_shard, metavar="K/N",
                       help="scan only part K of N of the accounts (a stable hash of the account id); "
                            "combine the parts with --merge")
    scope.add_argument("--role-name", help="role assumed in member accounts (default OrganizationAccountAccessRole)")
    scope.add_argument("--external-id", help="ExternalId for AssumeRole")
    scope.add_argument("--print-policy", nargs="?", const="member", choices=("member", "caller"),
                       metavar="member|caller",
                       help="print the IAM policy of the member audit role (default) or of the caller, and exit")
    rules = p.add_argument_group("rules and config")
    rules.add_argument("--config", metavar="FILE", help="YAML config (see config.example.yaml)")
    rules.add_argument("--rules-dir", action="append", default=[], metavar="DIR",
                       help="an extra rule pack beside the default one (repeatable)")
    rules.add_argument("--list-rules", action="store_true", help="print the rule catalog and exit")
    rules.add_argument("--explain", metavar="RULE_ID", help="print one rule's rationale and remediation")
    out = p.add_argument_group("output")
    out.add_argument("--format", default=None, metavar="json,html,sarif,ocsf,asff,fix",
                     help=f"report formats (default {DEFAULT_FORMATS})")
    out.add_argument("--output-dir", default="audit-bedrock-report", metavar="DIR")
    out.add_argument("--fail-on", choices=("critical", "high", "medium", "low", "none"), default=None,
                     help="exit 1 when an open finding is at or above this severity (default high)")
    out.add_argument("--baseline", metavar="FILE", help="a previous findings.json to diff against")
    out.add_argument("--fail-on-new", action="store_true",
                     help="apply --fail-on to findings that are new since --baseline only")
    out.add_argument("--merge", nargs="+", metavar="FINDINGS_JSON",
                     help="combine the findings.json of shard runs into one set of reports; no AWS calls")
    out.add_argument("--save-facts", metavar="FILE", help="also write every collected fact to FILE")
    out.add_argument("--history", metavar="DIR|s3://BUCKET/PREFIX",
                     help="previous findings.json files (a folder, or the scheduled job's runs/ prefix): a trend "
                          "chart in the HTML and the change since the last run in the summary")
    out.add_argument("--security-hub-import", action="store_true",
                     help="import the findings into AWS Security Hub (BatchImportFindings), each account's with its "
                          "own credentials; the only write audit-bedrock makes (off by default)")
    out.add_argument("--security-hub-role-name", metavar="NAME", default=None,
                     help="role assumed in member accounts to import their findings "
                          "(default AuditBedrockSecurityHubImport, see deploy/audit-role.yaml)")
    out.add_argument("--from-facts", metavar="FILE", help="re-evaluate a saved facts file; no AWS calls")
    run = p.add_argument_group("running")
    run.add_argument("--max-workers", type=int, default=None, metavar="N", help="concurrency (default 16)")
    run.add_argument("--profile", help="AWS profile")
    run.add_argument("--endpoint-url", help="AWS endpoint override (AWS_ENDPOINT_URL works too)")
    run.add_argument("--demo", action="store_true",
                     help="scan a seeded sample organization on an embedded AWS stand-in (needs .[demo])")
    run.add_argument("-q", "--quiet", action="count", default=0, help="less output")
    run.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    run.add_argument("--version", action="version", version=f"audit-bedrock {__version__}")
    return p


def _setup_logging(ns: argparse.Namespace) -> None:
    level = logging.WARNING - 10 * ns.verbose + 10 * ns.quiet
    logging.basicConfig(level=max(logging.DEBUG, min(logging.CRITICAL, level)), stream=sys.stderr,
                        format="audit-bedrock: %(levelname)s: %(message)s")
    from audit_bedrock.session import SecretFilter
    for handler in logging.getLogger().handlers:  # on the handlers: records of every logger pass them
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(SecretFilter())
    if ns.verbose < 3:
        for noisy in ("botocore", "urllib3", "werkzeug"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    from audit_bedrock.errors import UsageError

    ns = build_parser().parse_args(argv)
    _setup_logging(ns)
    try:
        if ns.demo:
            from audit_bedrock.demo import run_demo
            return run_demo(ns)
        return execute(ns)
    except UsageError as exc:
        print(f"audit-bedrock: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # outside the scan loop (discovery, a second Ctrl-C): no traceback
        print("audit-bedrock: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def load_settings(ns: argparse.Namespace) -> tuple[Config, list[Rule]]:
    """Config file, then flags on top; then rules, validated against the config."""
    from dataclasses import replace

    from audit_bedrock.config import load_config, validate_regions
    from audit_bedrock.engine import load_rules
    from audit_bedrock.errors import UsageError

    known = _known_regions()
    cfg = load_config(ns.config, known)
    if ns.role_name:
        cfg = replace(cfg, role_name=ns.role_name)
    if ns.external_id:
        cfg = replace(cfg, external_id=ns.external_id)
    if ns.regions:
        if ns.regions.strip() == "all":
            cfg = replace(cfg, regions=None)
        else:
            def bad(problem: str) -> UsageError:
                return UsageError(f"--regions: {problem}")
            cfg = replace(cfg, regions=validate_regions(tuple(_csv(ns.regions)), known, bad))
    if ns.fail_on:
        cfg = replace(cfg, fail_on=ns.fail_on)
    if ns.max_workers is not None:
        if not 1 <= ns.max_workers <= 256:
            raise UsageError(f"--max-workers must be between 1 and 256, got {ns.max_workers}")
        cfg = replace(cfg, max_workers=ns.max_workers)
    rules = load_rules([*cfg.rule_paths, *ns.rules_dir])
    ids = {r.id for r in rules}
    src = cfg.source or "config"
    for rid, _ in cfg.severity_overrides:
        if rid not in ids:
            raise UsageError(f"'severity_overrides.{rid}': no such rule", source=src)
    for rid in cfg.disabled_rules:
        if rid not in ids:
            raise UsageError(f"'disabled_rules': no such rule '{rid}'", source=src)
    for i, s in enumerate(cfg.suppressions):
        if s.rule != "*" and s.rule not in ids:
            raise UsageError(f"'suppressions[{i}].rule': no such rule '{s.rule}'", source=src)
    return cfg, [r for r in rules if r.id not in cfg.disabled_rules]


def _known_regions() -> tuple[str, ...]:
    from audit_bedrock.discovery import bedrock_regions
    return bedrock_regions()


def _formats(ns: argparse.Namespace) -> list[str]:
    from audit_bedrock.errors import UsageError
    from audit_bedrock.reports import FORMATS

    fmts = _csv(ns.format or DEFAULT_FORMATS)
    for f in fmts:
        if f not in FORMATS:
            raise UsageError(f"--format: unknown format '{f}' (available: {', '.join(FORMATS)})")
    return list(dict.fromkeys(fmts))


def print_catalog(rules: list[Rule], explain: str | None) -> int:
    from audit_bedrock.errors import UsageError

    if explain:
        rule = next((r for r in rules if r.id == explain.upper()), None)
        if rule is None:
            from audit_bedrock.config import did_you_mean
            raise UsageError(f"--explain: no rule '{explain}'{did_you_mean(explain.upper(), [r.id for r in rules])}")
        print(f"{rule.id}  [{rule.severity}, {rule.scope} scope]  {rule.title}\n")
        if rule.rationale:
            print(f"Why it matters:\n  {rule.rationale}\n")
        print(f"Remediation:\n  {rule.remediation}\n")
        print("References:")
        for ref in rule.references:
            print(f"  {ref}")
        return EXIT_OK
    for r in rules:
        print(f"{r.id:<9} {r.severity:<8} {r.scope:<8} {r.title}")
    return EXIT_OK


def print_policy(ns: argparse.Namespace) -> int:
    """--print-policy: the IAM policy generated from the collectors' declared actions, as JSON."""
    from audit_bedrock import policy

    if ns.print_policy == "caller":
        role = ns.role_name
        if not role:
            from audit_bedrock.config import load_config
            role = load_config(ns.config).role_name
        doc = policy.caller_policy(role)
    else:
        doc = policy.member_policy()
    sys.stdout.write(policy.dumps(doc))
    return EXIT_OK


def execute(ns: argparse.Namespace) -> int:
    """Run one command; UsageError propagates to main()."""
    from audit_bedrock.errors import UsageError

    if ns.print_policy:
        return print_policy(ns)
    if ns.list_rules or ns.explain:
        from audit_bedrock.config import load_config
        from audit_bedrock.engine import load_rules
        cfg = load_config(ns.config)
        return print_catalog(load_rules([*cfg.rule_paths, *ns.rules_dir]), ns.explain)
    if ns.merge:
        return merge_command(ns)
    if ns.shard and ns.from_facts:
        raise UsageError("--shard applies to a scan, not to --from-facts")
    cfg, rules = load_settings(ns)
    formats = _formats(ns)
    from audit_bedrock.integrations import fix_planner
    planner = fix_planner(formats, cfg.min_retention_days)
    baseline = None
    if ns.baseline:
        from audit_bedrock.findings import load_baseline
        baseline = load_baseline(ns.baseline)
        if ns.shard:  # a shard answers for its own accounts only: the others are not "fixed"
            from audit_bedrock.shard import shard_of
            baseline = [f for f in baseline if shard_of(f.account_id, ns.shard[1]) == ns.shard[0]]
    elif getattr(ns, "fail_on_new", False):
        log.warning("--fail-on-new without --baseline: every finding counts as new")
    if ns.from_facts:
        if ns.save_facts:
            raise UsageError("--save-facts and --from-facts cannot be combined")
        from audit_bedrock.facts import load_facts
        doc = load_facts(ns.from_facts)
        result, facts = _evaluate_saved(doc, cfg, rules, planner), None
    else:
        result, facts = _scan(ns, cfg, rules, planner)
        import gc
        gc.collect()  # the scan's clients and sessions are reference cycles: free them before the reports
    return finish(ns, cfg, rules, result, formats, baseline, facts, planner.plan() if planner else None)


def merge_command(ns: argparse.Namespace) -> int:
    """--merge a.json b.json ...: one set of reports from shard results, then --baseline and --fail-on."""
    from audit_bedrock.errors import UsageError
    from audit_bedrock.merge import merge

    clash = [flag for flag, on in (("--org", ns.org), ("--accounts", ns.accounts), ("--ou", ns.ou),
                                   ("--shard", ns.shard), ("--from-facts", ns.from_facts),
                                   ("--save-facts", ns.save_facts), ("--demo", ns.demo)) if on]
    if clash:
        raise UsageError(f"--merge combines finished results; it cannot be combined with {', '.join(clash)}")
    cfg, rules = load_settings(ns)
    formats = _formats(ns)
    from audit_bedrock.integrations import check_fix_format
    check_fix_format(formats, has_facts=False)
    baseline = None
    if ns.baseline:
        from audit_bedrock.findings import load_baseline
        baseline = load_baseline(ns.baseline)
    result = merge(ns.merge)
    known = {r.id for r in rules}
    unknown = sorted({f.rule_id for f in result.findings} - known)
    if unknown:
        raise UsageError(f"--merge: findings of rule(s) {', '.join(unknown)} are not in the loaded rule packs; "
                         "give --merge the same --config and --rules-dir as the shard runs")
    return finish(ns, cfg, rules, result, formats, baseline, None, None)


def _evaluate_saved(doc: dict[str, Any], cfg: Config, rules: list[Rule], planner: Any = None) -> ScanResult:
    from audit_bedrock.engine import Evaluator
    from audit_bedrock.findings import FindingBuilder
    from audit_bedrock.integrations import account_hook
    from audit_bedrock.scan import Accumulator

    acc = Accumulator(Evaluator(rules, cfg.rule_params()), FindingBuilder(cfg), on_account=account_hook(planner))
    for account in doc["accounts"]:
        acc.add(account)
    meta = doc["scan"]
    return _result(acc, meta.get("organization_id"), str(meta.get("caller_account", "")),
                   tuple(meta.get("regions") or sorted(acc.regions_seen)), str(meta.get("started_at", "")),
                   str(meta.get("finished_at", "")), int(meta.get("api_calls", 0)),
                   interrupted=bool(meta.get("interrupted", False)))


def _result(acc: Any, org_id: str | None, caller: str, regions: tuple[str, ...], started: str, finished: str,
            api_calls: int, interrupted: bool = False, shard: tuple[int, int] | None = None) -> ScanResult:
    from audit_bedrock.findings import sort_findings
    from audit_bedrock.model import Coverage, ScanMeta, ScanResult

    coverage = list(acc.coverage)
    for o in acc.outcomes:  # accounts that could not be entered get an error cell per region
        if o.status == "error" and not any(c.account_id == o.id for c in coverage):
            coverage.extend(Coverage(o.id, r, "error", reason=o.reason) for r in regions)
    coverage.sort(key=lambda c: (c.account_id, c.region))
    outcomes = sorted(acc.outcomes, key=lambda o: o.id)
    meta = ScanMeta(started, finished, org_id, caller, regions, tuple(outcomes), api_calls,
                    incomplete=acc.incomplete or interrupted, interrupted=interrupted, shard=shard)
    return ScanResult(meta, tuple(coverage), tuple(sort_findings(acc.findings)),
                      notices=tuple(acc.builder.expired_notices()))


def _scan(ns: argparse.Namespace, cfg: Config, rules: list[Rule],
          planner: Any = None) -> tuple[ScanResult, list[dict[str, Any]] | None]:
    from audit_bedrock.discovery import discover_accounts
    from audit_bedrock.engine import Evaluator
    from audit_bedrock.findings import FindingBuilder
    from audit_bedrock.scan import Accumulator, Scanner, ScanPlan, skipped_doc, utcnow
    from audit_bedrock.session import Sessions

    started = utcnow()
    sessions = Sessions(profile=ns.profile, endpoint_url=ns.endpoint_url, max_pool=10)
    caller_creds = sessions.caller_credentials()
    org = sessions.client("organizations", "us-east-1", caller_creds, "caller")
    sts = sessions.client("sts", sessions.home_region, caller_creds, "caller")
    from botocore.exceptions import BotoCoreError, ClientError
    try:
        estate = discover_accounts(org, sts, use_org=ns.org, accounts=ns.accounts or [],
                                   exclude=ns.exclude_accounts, ous=ns.ou)
    except (ClientError, BotoCoreError) as exc:
        from audit_bedrock.errors import UsageError
        from audit_bedrock.session import error_message
        raise UsageError(f"cannot identify the caller: {error_message(exc)}") from None
    if ns.shard:
        from audit_bedrock.shard import select
        total = len(estate.accounts) + len(estate.skipped)
        estate = select(estate, *ns.shard)
        log.info("shard %d/%d: %d of %d account(s)", *ns.shard, len(estate.accounts) + len(estate.skipped), total)
    log.info("scanning %d account(s), %d skipped", len(estate.accounts), len(estate.skipped))
    plan = ScanPlan(estate, cfg.regions, cfg.role_name, cfg.external_id, cfg.max_workers,
                    settings={"usage_lookback_days": cfg.usage_lookback_days})
    from audit_bedrock.integrations import account_hook
    acc = Accumulator(Evaluator(rules, cfg.rule_params()), FindingBuilder(cfg), keep_facts=bool(ns.save_facts),
                      on_account=account_hook(planner))
    for acct, reason in estate.skipped:
        acc.add(skipped_doc(acct, reason))
    scanner = Scanner(sessions, plan)
    bar = _progress(len(estate.accounts), ns.quiet > 0)
    try:
        complete = scanner.run(estate.accounts, acc.add, bar.update if bar else None)
    finally:
        if bar:
            bar.close()
        sessions.close()  # clients, service models and client classes: the reports need the memory
    regions = cfg.regions or tuple(sorted(acc.regions_seen))
    result = _result(acc, estate.organization_id, estate.caller_account, regions, started, utcnow(),
                     sessions.calls.calls, interrupted=not complete, shard=ns.shard)
    if sessions.calls.duplicates:
        log.warning("%d identical AWS request(s) were repeated", sessions.calls.duplicates)
    facts = acc.facts if ns.save_facts else None
    return result, facts


def _progress(total: int, quiet: bool) -> Any:
    if quiet or not sys.stderr.isatty() or total < 2:
        return None
    from tqdm import tqdm
    return tqdm(total=total, unit="account", file=sys.stderr, leave=False)


def finish(ns: argparse.Namespace, cfg: Config, rules: list[Rule], result: ScanResult, formats: list[str],
           baseline: Any, facts: list[dict[str, Any]] | None, fix_plan: Any = None) -> int:
    """Apply the baseline, write reports and facts, print the summary, import into Security Hub, choose the exit."""
    from dataclasses import replace

    from audit_bedrock import integrations
    from audit_bedrock.findings import apply_baseline
    from audit_bedrock.output import S3Writer, join, write_atomic, write_output
    from audit_bedrock.reports import RenderContext, outputs
    from audit_bedrock.reports.summary import render_summary

    if baseline is not None:
        marked, fixed = apply_baseline(list(result.findings), baseline)
        result = replace(result, findings=tuple(marked), fixed=tuple(fixed))
    home = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    ctx = RenderContext(catalog={r.id: r.to_catalog() for r in rules}, version=__version__,
                        baseline=getattr(ns, "baseline", None) if baseline is not None else None,
                        home_region=home, fix_plan=fix_plan,
                        scope=integrations.scope(ns.ou, ns.accounts, ns.exclude_accounts),
                        history=integrations.history(getattr(ns, "history", None), ns.profile, ns.endpoint_url))
    s3 = S3Writer(profile=ns.profile, endpoint_url=ns.endpoint_url)
    written = []
    if facts is not None:
        from audit_bedrock.facts import dump_facts
        m = result.meta
        meta = {"organization_id": m.organization_id, "caller_account": m.caller_account,
                "regions": list(m.regions), "started_at": m.started_at, "finished_at": m.finished_at,
                "api_calls": m.api_calls, "interrupted": m.interrupted}
        path = Path(ns.save_facts)
        write_atomic(path, dump_facts(path, meta, facts))
        written.append(str(path))
    for fmt in formats:  # render and write one format at a time: a large organization's reports are big
        for name, render in outputs(fmt):
            dest = join(ns.output_dir, name)
            write_output(dest, render(result, ctx), s3)
            written.append(dest)
    if ns.quiet < 2:
        render_summary(result, written, baseline=baseline is not None,
                       previous=integrations.previous_run(ctx, result))
    if getattr(ns, "security_hub_import", False):
        report = _security_hub_import(ns, cfg, result, ctx)
        if ns.quiet < 2:
            print(f"Security Hub: {report.imported} finding(s) imported, {len(report.failed)} failed")
    if result.meta.interrupted:
        return EXIT_INTERRUPTED
    return exit_code(result, cfg.fail_on, {r.id: r.category for r in rules},
                     new_only=bool(getattr(ns, "fail_on_new", False)))


def _security_hub_import(ns: argparse.Namespace, cfg: Config, result: ScanResult, ctx: Any) -> Any:
    """Import every account's findings with that account's own credentials (see reports/securityhub.py)."""
    from audit_bedrock.integrations import DEFAULT_IMPORT_ROLE, ImportTarget, import_findings
    from audit_bedrock.session import Sessions

    sessions = Sessions(profile=ns.profile, endpoint_url=ns.endpoint_url, max_pool=4)
    caller = sessions.caller_credentials()
    target = ImportTarget(result.meta.caller_account, ns.security_hub_role_name or DEFAULT_IMPORT_ROLE,
                          cfg.external_id)
    entered: dict[str, Any] = {}

    def make_client(account: str, region: str, role: str | None) -> Any:
        if role is None:
            creds = caller
        else:
            if account not in entered:
                entered[account] = sessions.assume(account, role, target.external_id, target.caller_account)
            creds = entered[account]
        return sessions.client("securityhub", region, creds, account)

    try:
        return import_findings(result, ctx, target, make_client)
    finally:
        sessions.close()


def exit_code(result: ScanResult, fail_on: str, categories: dict[str, str], new_only: bool = False) -> int:
    """1 for open posture findings at or above fail_on, else 3 when incomplete, else 0."""
    from audit_bedrock.model import SEVERITY_RANK

    if fail_on != "none":
        limit = SEVERITY_RANK[fail_on]
        for f in result.open_findings():
            if categories.get(f.rule_id, "posture") == "coverage":
                continue
            if new_only and f.baseline != "new":
                continue
            if SEVERITY_RANK[f.severity] <= limit:
                return EXIT_FINDINGS
    return EXIT_INCOMPLETE if result.meta.incomplete else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
