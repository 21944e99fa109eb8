"""The core API: run options, then scan, evaluate saved facts, merge shard results, write reports, exit code.

The CLI, the demo and the Lambda handlers build a RunOptions and call run() (or the steps it is made of):

    settings = load_settings(options)              # config file, option overrides, rule packs
    baseline = read_baseline(options.output.baseline, options.scope.shard)
    outcome = scan(options, settings)              # or evaluate_saved(path, settings) / merge_results(...)
    report = write_reports(outcome.result, settings, options, baseline, outcome.facts)
    code = exit_code(report.result, settings, new_only=options.output.fail_on_new)

Errors a user can fix raise UsageError (the CLI prints it and exits 2). Option fields are named after the CLI
flags, and messages name the flags.

Lazy imports: this module imports only what --list-rules needs at its top. The AWS side (botocore, through
discovery, scan and session) is imported in scan() and known_regions() only; report renderers (jinja2 for
HTML) are imported by reports.streams() when a format is written; the policy generator by policy_text().
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from audit_bedrock import __version__, constants, integrations
from audit_bedrock.config import Config, load_config, validate_regions
from audit_bedrock.constants import DEFAULT_FORMATS, DEFAULT_OUTPUT_DIR, SEVERITY_RANK
from audit_bedrock.engine import GAP_RULE_ID, Evaluator, Rule, load_rules
from audit_bedrock.errors import DeadlineReached, UsageError
from audit_bedrock.facts import dump_facts, load_facts
from audit_bedrock.findings import (
    FindingBuilder,
    apply_baseline,
    load_baseline,
    not_rechecked_reason,
    sort_findings,
)
from audit_bedrock.merge import merge
from audit_bedrock.model import Coverage, Finding, ScanMeta, ScanResult
from audit_bedrock.output import (
    STDOUT_DIR,
    OutputLock,
    S3Writer,
    StagedSet,
    check_local_dir,
    is_s3,
    join,
    split_s3,
    write_atomic,
    write_chunks,
)
from audit_bedrock.reports import FORMATS, RenderContext, streamer, streams
from audit_bedrock.reports.summary import render_summary
from audit_bedrock.shard import shard_of
from audit_bedrock.yamlcheck import did_you_mean

if TYPE_CHECKING:
    from audit_bedrock.reports.fixplan import FixPlan, FixPlanner

log = logging.getLogger("audit_bedrock")
__all__ = ["OutputOptions", "Report", "RunOptions", "ScanOptions", "ScanOutcome", "ScopeOptions",
           "Settings", "catalog_json", "catalog_rules", "catalog_text", "check_formats", "check_outputs",
           "check_profile", "evaluate_facts", "evaluate_saved", "exit_code", "known_regions", "load_settings",
           "merge_results", "parse_regions", "policy_text", "read_baseline", "run", "scan", "write_reports"]

FailOn = Literal["critical", "high", "medium", "low", "none"]
Regions = tuple[str, ...] | Literal["all"] | None


def parse_regions(value: str) -> Regions:
    """A --regions value: 'all', or a comma-separated list (validated by load_settings)."""
    return "all" if value.strip() == "all" else tuple(v.strip() for v in value.split(",") if v.strip())


# ---------------------------------------------------------------------------------------------- options

@dataclass(frozen=True)
class ScopeOptions:
    """What to scan (--org, --accounts, --exclude-accounts, --ou, --regions, --shard)."""

    org: bool = False
    accounts: tuple[str, ...] = ()
    exclude_accounts: tuple[str, ...] = ()
    ous: tuple[str, ...] = ()
    regions: Regions = None  # None: the config's regions; "all": every Bedrock region enabled
    shard: tuple[int, int] | None = None  # (K, N): part K of N of the accounts


@dataclass(frozen=True)
class ScanOptions:
    """How to scan and judge: config file, rule packs and the flags that override the config."""

    config: str | None = None
    rules_dirs: tuple[str, ...] = ()
    role_name: str | None = None
    external_id: str | None = None
    fail_on: FailOn | None = None
    max_workers: int | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    only_rules: tuple[str, ...] = ()  # --rules: evaluate these rules only
    skip_rules: tuple[str, ...] = ()  # --skip-rules: not these (added to the config's disabled_rules)
    timeout: float | None = None  # --timeout: seconds after which the scan stops and writes what it has

    def __post_init__(self) -> None:
        if self.timeout is not None and not self.timeout > 0:
            raise UsageError(f"--timeout must be a positive number of seconds, got {self.timeout:g}")


@dataclass(frozen=True)
class OutputOptions:
    """What to write: report formats and place, the baseline, the facts file, the terminal output."""

    formats: tuple[str, ...] = DEFAULT_FORMATS
    output_dir: str = DEFAULT_OUTPUT_DIR  # a folder or s3://bucket/prefix
    baseline: str | None = None
    fail_on_new: bool = False
    fail_on_incomplete: bool = False  # an incomplete scan exits 3 even when it has findings at or above fail_on
    min_severity: str | None = None  # --min-severity: findings below it are left out of the reports and the exit
    save_facts: str | None = None
    history: str | None = None  # previous findings.json: a folder or s3://bucket/prefix (the trend, the summary)
    security_hub_import: bool = False  # import the findings into Security Hub: the only write, off by default
    security_hub_role_name: str | None = None  # the import role in member accounts
    progress: bool = True  # a progress bar when stderr is a terminal
    summary: bool = True  # the summary on stdout (on stderr when findings.json goes to stdout)
    brief: bool = False  # the summary in two lines: counts and verdict, then where the reports are


@dataclass(frozen=True)
class RunOptions:
    """One run: a scan, or a replay of saved facts (from_facts), or a merge of shard results (merge)."""

    scope: ScopeOptions = field(default_factory=ScopeOptions)
    scan: ScanOptions = field(default_factory=ScanOptions)
    output: OutputOptions = field(default_factory=OutputOptions)
    from_facts: str | None = None
    merge: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        s = self.scope
        if self.merge:
            clash = [flag for flag, on in (("--org", s.org), ("--accounts", s.accounts), ("--ou", s.ous),
                                           ("--shard", s.shard), ("--from-facts", self.from_facts),
                                           ("--save-facts", self.output.save_facts)) if on]
            if clash:
                raise UsageError(f"--merge combines finished results; it cannot be combined with {', '.join(clash)}")
        if s.shard and self.from_facts:
            raise UsageError("--shard applies to a scan, not to --from-facts")
        if self.from_facts and self.output.save_facts:
            raise UsageError("--save-facts and --from-facts cannot be combined")
        if self.output.output_dir == STDOUT_DIR and tuple(self.output.formats) != ("json",):
            raise UsageError("--output-dir - writes findings.json to stdout: give --format json (or no --format)")
        if self.output.fail_on_new and not self.output.baseline:
            raise UsageError("--fail-on-new needs --baseline (a previous findings.json): without one every finding "
                             "is new")


@dataclass(frozen=True)
class Settings:
    """The config (options applied) and the enabled rules of a run."""

    config: Config
    rules: tuple[Rule, ...]

    def categories(self) -> dict[str, str]:
        return {r.id: r.category for r in self.rules}


@dataclass(frozen=True)
class ScanOutcome:
    """A finished scan: the result, the raw account documents when they were kept, and the fix plan when asked."""

    result: ScanResult
    facts: tuple[dict[str, Any], ...] | None = None
    fix_plan: FixPlan | None = None


@dataclass(frozen=True)
class Report:
    """What write_reports did: the result as reported (baseline applied), the files written, the ones that failed."""

    result: ScanResult
    written: tuple[str, ...]
    failed: tuple[str, ...] = ()  # "DEST: why" for each file that could not be written


# ---------------------------------------------------------------------------------------------- settings

def known_regions() -> tuple[str, ...]:
    """Every Bedrock region botocore knows of."""
    from audit_bedrock.discovery import bedrock_regions  # botocore
    return bedrock_regions()


def load_settings(options: RunOptions) -> Settings:
    """Config file, then options on top; then rules, validated against the config."""
    opts = options.scan
    known = known_regions()
    cfg = load_config(opts.config, known)
    if opts.role_name:
        cfg = replace(cfg, role_name=opts.role_name)
    if opts.external_id:
        cfg = replace(cfg, external_id=opts.external_id)
    regions = options.scope.regions
    if regions == "all":
        cfg = replace(cfg, regions=None)
    elif regions is not None:
        def bad(problem: str) -> UsageError:
            return UsageError(f"--regions: {problem}")
        cfg = replace(cfg, regions=validate_regions(tuple(regions), known, bad))
    if opts.fail_on:
        cfg = replace(cfg, fail_on=opts.fail_on)
    if opts.max_workers is not None:
        if not 1 <= opts.max_workers <= 256:
            raise UsageError(f"--max-workers must be between 1 and 256, got {opts.max_workers}")
        cfg = replace(cfg, max_workers=opts.max_workers)
    rules = load_rules([*cfg.rule_paths, *opts.rules_dirs])
    ids = {r.id for r in rules}
    src = cfg.source or "config"
    for rid, _ in cfg.severity_overrides:
        if rid not in ids:
            raise UsageError(f"'severity_overrides.{rid}': no such rule", source=src)
    for rid in cfg.disabled_rules:
        if rid == GAP_RULE_ID:  # it reports every rule that could not be evaluated: disabling it hides them
            raise UsageError(f"'disabled_rules': {GAP_RULE_ID} cannot be disabled: it reports the rules that "
                             "could not be evaluated (suppress it per account instead)", source=src)
        if rid not in ids:
            raise UsageError(f"'disabled_rules': no such rule '{rid}'", source=src)
    for i, s in enumerate(cfg.suppressions):
        if s.rule != "*" and s.rule not in ids:
            raise UsageError(f"'suppressions[{i}].rule': no such rule '{s.rule}'", source=src)
    for flag, wanted in (("--rules", opts.only_rules), ("--skip-rules", opts.skip_rules)):
        for rid in wanted:
            if rid not in ids:
                raise UsageError(f"{flag}: no such rule '{rid}'{did_you_mean(rid, sorted(ids))} "
                                 "(`audit-bedrock --list-rules` lists them)")
    off = {*cfg.disabled_rules, *opts.skip_rules}
    keep = set(opts.only_rules) or ids
    return Settings(cfg, tuple(r for r in rules if r.id in keep and r.id not in off))


def check_formats(formats: tuple[str, ...]) -> tuple[str, ...]:
    """The formats, each known, duplicates dropped."""
    for f in formats:
        if f not in FORMATS:
            raise UsageError(f"--format: unknown format '{f}' (available: {', '.join(FORMATS)})")
    return tuple(dict.fromkeys(formats))


def read_baseline(path: str | None, shard: tuple[int, int] | None = None) -> list[Finding] | None:
    """The baseline's findings (None without one); a shard keeps those of its own accounts only."""
    if not path:
        return None
    baseline = load_baseline(path)
    if shard:  # a shard answers for its own accounts only: the others are not "fixed"
        baseline = [f for f in baseline if shard_of(f.account_id, shard[1]) == shard[0]]
    return baseline


def check_profile(profile: str | None) -> None:
    """Refuse a --profile (or AWS_PROFILE) that names no profile, before anything else runs."""
    import os

    import botocore.session
    from botocore.exceptions import ProfileNotFound

    try:
        botocore.session.Session(profile=profile).get_scoped_config()
    except ProfileNotFound:
        name = profile or os.environ.get("AWS_PROFILE", "")
        where = "--profile" if profile else "AWS_PROFILE"
        raise UsageError(f"{where}: no AWS profile named '{name}' in the AWS config or credentials file "
                         "(see `aws configure list-profiles`)") from None


def check_outputs(options: RunOptions) -> OutputLock | None:
    """Refuse an output place the reports (or the facts file) cannot be written to, before the first AWS call;
    a local output folder is then locked for this run (release the lock when the reports are written).

    A local folder is probed, then created for its lock file: a second run into it is refused (UsageError), and
    releasing the lock removes the folder again if the run wrote nothing. For s3:// the bucket must exist
    (HeadBucket); S3 has no lock. A bucket that answers 403 may still accept PutObject: that is a warning, and the
    writes at the end decide.
    """
    out = options.output
    lock = None
    if out.save_facts:
        check_local_dir(Path(out.save_facts).parent, "--save-facts")
    if out.output_dir != STDOUT_DIR:
        if is_s3(out.output_dir):
            _check_s3_dir(out.output_dir, options.scan)
        else:
            folder = Path(out.output_dir)
            check_local_dir(folder, "--output-dir")
            try:
                lock = OutputLock(folder, "--output-dir")
            except OSError as exc:
                raise UsageError(f"--output-dir {folder}: cannot write there: {exc.strerror or exc}") from None
    return lock


def _check_s3_dir(url: str, opts: ScanOptions) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    from audit_bedrock.aws.errors import error_code, error_message

    bucket, _ = split_s3(url)
    try:
        S3Writer(profile=opts.profile, endpoint_url=opts.endpoint_url).client().head_bucket(Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) in ("403", "AccessDenied", "Forbidden"):
            log.warning("--output-dir %s: cannot check the bucket (HeadBucket: %s); the reports are written "
                        "there at the end", url, error_message(exc))
            return
        why = "the bucket does not exist (NoSuchBucket)" if error_code(exc) in ("404", "NoSuchBucket") \
            else error_message(exc)
        raise UsageError(f"--output-dir {url}: cannot write there: {why}") from None
    except BotoCoreError as exc:
        raise UsageError(f"--output-dir {url}: cannot write there: {error_message(exc)}") from None


# ---------------------------------------------------------------------------------------------- catalog, policy

def catalog_rules(options: ScanOptions) -> list[Rule]:
    """Every rule of the configured packs (disabled ones too), for --list-rules and --explain."""
    return load_rules([*load_config(options.config).rule_paths, *options.rules_dirs])


def catalog_json(options: ScanOptions) -> str:
    """The rule catalog as JSON for --list-rules --format json: the config's severity_overrides and disabled_rules
    applied (`severity`, `enabled`), beside each rule's own `default_severity`."""
    import json

    cfg = load_config(options.config)
    overrides = dict(cfg.severity_overrides)
    rules = []
    for r in load_rules([*cfg.rule_paths, *options.rules_dirs]):
        entry = r.to_catalog()
        entry.update(default_severity=r.severity, severity=overrides.get(r.id, r.severity),
                     severity_varies=bool(r.severity_when) and r.id not in overrides,
                     enabled=r.id not in cfg.disabled_rules)
        rules.append(entry)
    return json.dumps({"rules": rules}, indent=2) + "\n"


def facts_text() -> str:
    """The facts vocabulary (path, type, gap?, derived?, meaning), for --list-facts."""
    from audit_bedrock.vocabulary import render_text

    return render_text()


def catalog_text(rules: list[Rule], explain: str | None = None, width: int | None = None) -> str:
    """The rule catalog, one line a rule; or, with `explain`, one rule's rationale and remediation wrapped to
    `width` (default: the terminal's)."""
    if not explain:
        return "".join(f"{r.id:<9} {r.severity:<8} {r.scope:<8} {r.title}\n" for r in rules)
    rule = next((r for r in rules if r.id == explain.upper()), None)
    if rule is None:
        raise UsageError(f"--explain: no rule '{explain}'{did_you_mean(explain.upper(), [r.id for r in rules])}; "
                         "`audit-bedrock --list-rules` lists them")
    import shutil
    import textwrap

    cols = max(40, min(width or shutil.get_terminal_size((100, 24)).columns, 120))

    def para(text: str) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), cols, initial_indent="  ", subsequent_indent="  ") or [""]

    lines = [*textwrap.wrap(f"{rule.id}  [default severity {rule.severity}, {rule.scope} scope]  {rule.title}",
                            cols, subsequent_indent="  "), ""]
    if rule.severity_when:
        lines += ["Severity:", *para(f"{rule.severity} by default; the rule's severity_when raises or lowers it "
                                     f"per finding to {' or '.join(sorted({s for _, s in rule.severity_when}))} "
                                     "(see its YAML file); a finding carries the severity that applied."), ""]
    if rule.rationale:
        lines += ["Why it matters:", *para(rule.rationale), ""]
    lines += ["Remediation:", *para(rule.remediation), "", "References:", *(f"  {ref}" for ref in rule.references)]
    return "\n".join(lines) + "\n"


def policy_text(kind: Literal["member", "caller"], options: ScanOptions) -> str:
    """The IAM policy (JSON) of the member audit role, or of the caller that assumes it."""
    from audit_bedrock import policy  # the collector registry, botocore

    if kind == "caller":
        return policy.dumps(policy.caller_policy(options.role_name or load_config(options.config).role_name))
    return policy.dumps(policy.member_policy())


# ---------------------------------------------------------------------------------------------- results

def _result(acc: Any, org_id: str | None, caller: str, regions: tuple[str, ...], started: str, finished: str,
            api_calls: int, interrupted: bool = False, shard: tuple[int, int] | None = None,
            region_source: str = "", timed_out: str = "") -> ScanResult:
    """The result of the accumulated accounts; `timed_out` is the deadline's notice when the scan reached it."""
    coverage = list(acc.coverage)
    covered = {c.account_id for c in coverage}
    for o in acc.outcomes:  # accounts that could not be entered get an error cell per region
        if o.status == "error" and o.id not in covered:
            covered.add(o.id)
            coverage.extend(Coverage(o.id, r, "error", reason=o.reason) for r in regions)
    coverage.sort(key=lambda c: (c.account_id, c.region))
    outcomes = sorted(acc.outcomes, key=lambda o: o.id)
    meta = ScanMeta(started, finished, org_id, caller, regions, tuple(outcomes), api_calls,
                    incomplete=acc.incomplete or interrupted or bool(timed_out), interrupted=interrupted,
                    timed_out=bool(timed_out), shard=shard, region_source=region_source)
    notices = ([timed_out] if timed_out else []) + acc.builder.expired_notices()
    return ScanResult(meta, tuple(coverage), tuple(sort_findings(acc.findings)), notices=tuple(notices))


@contextlib.contextmanager
def _deadline_alarm(deadline: float | None, timeout: float | None) -> Iterator[None]:
    """Before the accounts are scanned (discovery, the region list, the SCPs), the deadline interrupts the main
    thread with SIGALRM: a black-holed endpoint would otherwise hold a call for minutes (10 attempts of 20 s).
    Off the main thread (no signals there), only the account scan itself is bounded (Scanner's deadline)."""
    if deadline is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise DeadlineReached(f"--timeout {timeout:g} s reached before the first account was scanned (discovery "
                              "did not finish: is the endpoint reachable?); nothing was scanned or written")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(0.001, deadline - time.monotonic()))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _protect_logs() -> None:
    """Redact credentials in every record the root logger's handlers emit (botocore's debug logging too)."""
    from audit_bedrock.aws.redact import SecretFilter  # botocore

    for handler in logging.getLogger().handlers:  # on the handlers: records of every logger pass them
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(SecretFilter())


def scan(options: RunOptions, settings: Settings, keep_facts: bool = False,
         planner: FixPlanner | None = None) -> ScanOutcome:
    """Discovery, sessions, collectors, derivation, rules, findings; with keep_facts, the raw facts too.

    With options.scan.timeout the scan stops at that deadline as on an interrupt and returns what it has,
    timed out (incomplete); DeadlineReached when the deadline passes before discovery finished."""
    from audit_bedrock.scan import Accumulator, Scanner, skipped_doc, utcnow

    _protect_logs()
    scope, cfg = options.scope, settings.config
    started = utcnow()
    timeout = options.scan.timeout
    deadline = time.monotonic() + timeout if timeout else None
    with _deadline_alarm(deadline, timeout):
        sessions, estate, plan, region_source = _discover(options, settings)
    acc = Accumulator(Evaluator(list(settings.rules), cfg.rule_params()), FindingBuilder(cfg), keep_facts=keep_facts,
                      on_account=integrations.account_hook(planner))
    for acct, reason in estate.skipped:
        acc.add(skipped_doc(acct, reason))
    scanner = Scanner(sessions, plan, deadline=deadline)
    bar = _progress(len(estate.accounts), not options.output.progress)
    try:
        complete = scanner.run(estate.accounts, acc.add, bar.update if bar else None)
    finally:
        if bar:
            bar.close()
        sessions.close()  # clients, service models and client classes: the reports need the memory
    regions = cfg.regions or tuple(sorted(acc.regions_seen))
    late = sum(1 for o in acc.outcomes if o.status == "interrupted")
    notice = (f"the scan stopped at its deadline (--timeout {timeout:g} s): {late} account(s) not finished are "
              "marked interrupted" if scanner.timed_out else "")
    result = _result(acc, estate.organization_id, estate.caller_account, regions, started, utcnow(),
                     sessions.calls.calls, interrupted=not complete and not scanner.timed_out, shard=scope.shard,
                     region_source=region_source, timed_out=notice)
    if sessions.calls.duplicates:
        log.warning("%d identical AWS request(s) were repeated", sessions.calls.duplicates)
    facts = tuple(acc.facts) if keep_facts else None
    del scanner, sessions, acc
    gc.collect()  # the scan's clients and sessions are reference cycles: free them before the reports
    return ScanOutcome(result, facts, planner.plan() if planner is not None else None)


def _discover(options: RunOptions, settings: Settings) -> tuple[Any, Any, Any, str]:
    """The caller's sessions, the accounts to scan and the scan plan (discovery, the region list, the SCPs)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from audit_bedrock import collectors
    from audit_bedrock.aws.clients import Sessions
    from audit_bedrock.aws.errors import error_message
    from audit_bedrock.collectors.scp import read_scps
    from audit_bedrock.discovery import bedrock_region_list, discover_accounts, partition_of, ssm_query_region
    from audit_bedrock.scan import ScanPlan
    from audit_bedrock.shard import select

    scope, cfg = options.scope, settings.config
    # the collectors' declared actions are the only operations of the trimmed (EC2) client models
    sessions = Sessions(profile=options.scan.profile, endpoint_url=options.scan.endpoint_url, max_pool=10,
                        declared_actions=collectors.required_actions())
    caller_creds = sessions.caller_credentials()
    org = sessions.client("organizations", "us-east-1", caller_creds, "caller")
    sts = sessions.client("sts", sessions.home_region, caller_creds, "caller")
    try:
        estate = discover_accounts(org, sts, use_org=scope.org, accounts=list(scope.accounts),
                                   exclude=list(scope.exclude_accounts), ous=list(scope.ous))
    except (ClientError, BotoCoreError) as exc:
        raise UsageError(f"cannot identify the caller: {error_message(exc)}") from None
    if scope.shard:
        total = len(estate.accounts) + len(estate.skipped)
        estate = select(estate, *scope.shard)
        log.info("shard %d/%d: %d of %d account(s)", *scope.shard, len(estate.accounts) + len(estate.skipped), total)
    log.info("scanning %d account(s), %d skipped", len(estate.accounts), len(estate.skipped))
    # The organization's SCPs (BIL-024): read once per scan by the caller, never per account.
    # Every Bedrock region, newer than the installed botocore included: once per scan, in the caller's account.
    ssm = sessions.client("ssm", ssm_query_region(sessions.home_region), caller_creds, "caller")
    known = bedrock_region_list(ssm, partition_of(sessions.home_region) or "aws")
    log.info("%d Bedrock region(s) from %s", len(known.regions), known.source)
    plan = ScanPlan(estate, cfg.regions, cfg.role_name, cfg.external_id, cfg.max_workers,
                    settings={"usage_lookback_days": cfg.usage_lookback_days, "scp": read_scps(org, estate)},
                    bedrock_regions=known.regions)
    return sessions, estate, plan, known.source


def _progress(total: int, quiet: bool) -> Any:
    if quiet or not sys.stderr.isatty() or total < 2:
        return None
    from tqdm import tqdm
    return tqdm(total=total, unit="account", file=sys.stderr, leave=False)


# The notice of a result re-evaluated from facts saved by a scan that reached its deadline.
TIMED_OUT_AGAIN = "these facts come from a scan that stopped at its deadline (--timeout): unfinished accounts are " \
                  "marked interrupted"


def evaluate_facts(doc: dict[str, Any], settings: Settings, planner: FixPlanner | None = None) -> ScanResult:
    """Derive and judge the accounts of a facts document (as load_facts returns it); no AWS calls."""
    from audit_bedrock.scan import Accumulator  # the derivation and judging stages, shared with the scan

    acc = Accumulator(Evaluator(list(settings.rules), settings.config.rule_params()),
                      FindingBuilder(settings.config), on_account=integrations.account_hook(planner))
    for account in doc["accounts"]:
        acc.add(account)
    meta = doc["scan"]
    return _result(acc, meta.get("organization_id"), str(meta.get("caller_account", "")),
                   tuple(meta.get("regions") or sorted(acc.regions_seen)), str(meta.get("started_at") or ""),
                   str(meta.get("finished_at") or ""), int(meta.get("api_calls", 0)),
                   interrupted=bool(meta.get("interrupted", False)),
                   region_source=str(meta.get("region_source") or ""),
                   timed_out=TIMED_OUT_AGAIN if meta.get("timed_out") else "")


def evaluate_saved(path: str, settings: Settings, planner: FixPlanner | None = None) -> ScanResult:
    """Re-derive and re-judge a --save-facts file."""
    return evaluate_facts(load_facts(path), settings, planner)


def merge_results(paths: tuple[str, ...], settings: Settings) -> ScanResult:
    """One result from the findings.json of shard runs, checked against the loaded rule packs."""
    result = merge(list(paths))
    known = {r.id for r in settings.rules}
    unknown = sorted({f.rule_id for f in result.findings} - known)
    if unknown:
        raise UsageError(f"--merge: findings of rule(s) {', '.join(unknown)} are not in the loaded rule packs; "
                         "give --merge the same --config and --rules-dir as the shard runs")
    return result


# ---------------------------------------------------------------------------------------------- reports, exit

def write_reports(result: ScanResult, settings: Settings, options: RunOptions,
                  baseline: list[Finding] | None = None, facts: tuple[dict[str, Any], ...] | None = None,
                  fix_plan: FixPlan | None = None) -> Report:
    """Apply the baseline, write the facts file (when given facts) and every format, print the summary;
    import into Security Hub when asked."""
    _protect_logs()  # an s3:// output dir is written with botocore
    out = options.output
    formats = check_formats(out.formats)
    if out.min_severity:
        limit = SEVERITY_RANK[out.min_severity]
        result = replace(result, findings=tuple(f for f in result.findings if SEVERITY_RANK[f.severity] <= limit))
        if baseline is not None:
            baseline = [f for f in baseline if SEVERITY_RANK[f.severity] <= limit]
    if baseline is not None:
        marked, fixed, carried = apply_baseline(list(result.findings), baseline,
                                                not_rechecked_reason(result, {r.id for r in settings.rules}))
        result = replace(result, findings=tuple(marked), fixed=tuple(fixed), not_rechecked=tuple(carried))
    scope = options.scope
    ctx = RenderContext(catalog={r.id: r.to_catalog() for r in settings.rules}, version=__version__,
                        baseline=out.baseline if baseline is not None else None,
                        home_region=integrations.home_region(), fix_plan=fix_plan,
                        scope=integrations.scope(scope.ous, scope.accounts, scope.exclude_accounts),
                        history=integrations.history(out.history, options.scan.profile, options.scan.endpoint_url))
    s3 = S3Writer(profile=options.scan.profile, endpoint_url=options.scan.endpoint_url)
    written = []
    if facts is not None and out.save_facts:
        m = result.meta
        meta = {"organization_id": m.organization_id, "caller_account": m.caller_account,
                "regions": list(m.regions), "started_at": m.started_at, "finished_at": m.finished_at,
                "api_calls": m.api_calls, "interrupted": m.interrupted, "timed_out": m.timed_out,
                "region_source": m.region_source}
        path = Path(out.save_facts)
        write_atomic(path, dump_facts(path, meta, list(facts)), private=True)
        written.append(str(path))
    failed: list[str] = []
    if out.output_dir == STDOUT_DIR:
        for fmt in formats:
            write_chunks(sys.stdout.buffer, streamer(fmt)(result, ctx))
            sys.stdout.flush()
            written.append("<stdout>")
    elif is_s3(out.output_dir):
        written += _write_s3(result, ctx, formats, out.output_dir, failed, s3)
    else:
        written += _write_local(result, ctx, formats, Path(out.output_dir), failed)
    tty = sys.stderr if out.output_dir == STDOUT_DIR else sys.stdout  # stdout carries findings.json with '-'
    if out.summary:
        render_summary(result, written, out=tty, baseline=baseline is not None, brief=out.brief,
                       previous=integrations.previous_run(ctx, result))
    if out.security_hub_import:
        imported = integrations.import_with_sessions(result, ctx, settings.config.external_id,
                                                     out.security_hub_role_name, options.scan.profile,
                                                     options.scan.endpoint_url)
        if out.summary:
            print(f"Security Hub: {imported.imported} finding(s) imported, {len(imported.failed)} failed", file=tty)
    if failed:  # one line: the scan is not lost, what could be written was (and where it is)
        print(f"audit-bedrock: error: {failed[0]}", file=sys.stderr)
    return Report(result, tuple(written), tuple(failed))


def _write_local(result: ScanResult, ctx: RenderContext, formats: tuple[str, ...], folder: Path,
                 failed: list[str]) -> list[str]:
    """Render and write one file at a time (a large organization's reports are big) into a staging folder, then
    switch the whole set in; on failure nothing is replaced, `failed` gets one entry naming the kept folder."""
    try:
        staged = StagedSet(folder)
    except OSError as exc:  # the folder removed, made read-only or full during the scan
        failed.append(f"cannot write the reports to {folder}: {exc.strerror or exc}; no report was replaced")
        return []
    problems: list[str] = []
    try:
        for fmt in formats:
            for name, stream in streams(fmt):
                try:
                    staged.write(name, stream(result, ctx))  # chunk by chunk: never the whole report
                except OSError as exc:  # a full disk
                    problems.append(f"cannot write {folder / name}: {exc.strerror or exc}")
        problem = problems[0] if problems else staged.blocked()
        if not problem:
            return staged.commit()
    except BaseException:  # a bug in a renderer, a second Ctrl-C: the staging folder goes, the old set stays
        staged.discard()
        raise
    kept = staged.keep()
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    failed.append(f"{problem}{more}; no report was replaced (the previous ones are intact); the {len(staged.names)} "
                  f"file(s) that could be written are in {kept}")
    failed.extend(problems[1:])
    return []


def _write_s3(result: ScanResult, ctx: RenderContext, formats: tuple[str, ...], prefix: str, failed: list[str],
              s3: S3Writer) -> list[str]:
    """Render every file before the first upload (a renderer's failure uploads nothing), then put each object.

    Each file is rendered into a temporary file (never held whole in memory) and uploaded from it.
    S3 replaces each object atomically but has no transaction over several: an upload failing midway leaves the
    objects put so far new and the rest old, and `failed` names each one that failed."""
    import tempfile

    written = []
    with contextlib.ExitStack() as files:
        rendered = []
        for fmt in formats:
            for name, stream in streams(fmt):
                try:
                    fh = files.enter_context(tempfile.TemporaryFile(prefix="audit-bedrock-report-"))
                    write_chunks(fh, stream(result, ctx))
                except OSError as exc:  # no room for the temporary file: nothing is uploaded
                    failed.append(f"cannot write {join(prefix, name)}: its temporary file: {exc.strerror or exc} "
                                  f"({tempfile.gettempdir()}); nothing was uploaded")
                    return []
                rendered.append((join(prefix, name), fh))
        for dest, fh in rendered:
            fh.seek(0)
            try:
                s3.write(dest, fh)
            except UsageError as exc:  # S3Writer: the URL and the AWS error
                failed.append(str(exc))
                continue
            written.append(dest)
    return written


def exit_code(result: ScanResult, settings: Settings, new_only: bool = False, fail_on_incomplete: bool = False) -> int:
    """130 when interrupted; else 1 for open posture findings at or above fail_on; else 3 when incomplete; else 0.

    With fail_on_incomplete, 3 comes before 1: lost coverage is never hidden behind findings (findings.json's
    scan.complete says the same either way).
    """
    if result.meta.interrupted:
        return constants.EXIT_INTERRUPTED
    if fail_on_incomplete and result.meta.incomplete:
        return constants.EXIT_INCOMPLETE
    fail_on, categories = settings.config.fail_on, settings.categories()
    if fail_on != "none":
        limit = SEVERITY_RANK[fail_on]
        for f in result.open_findings():
            if categories.get(f.rule_id, "posture") == "coverage":
                continue
            if new_only and f.baseline != "new":
                continue
            if SEVERITY_RANK[f.severity] <= limit:
                return constants.EXIT_FINDINGS
    return constants.EXIT_INCOMPLETE if result.meta.incomplete else constants.EXIT_OK


def run(options: RunOptions) -> int:
    """The whole run the options describe, reports written; returns the exit code. UsageError propagates."""
    _protect_logs()
    check_profile(options.scan.profile)
    settings = load_settings(options)
    formats = check_formats(options.output.formats)  # before a long scan, not after it
    lock = check_outputs(options)  # and where it goes; a local folder is locked until the reports are written
    try:
        return _run_locked(options, settings, formats)
    finally:
        if lock is not None:
            lock.release()


def _run_locked(options: RunOptions, settings: Settings, formats: tuple[str, ...]) -> int:
    integrations.check_fix_format(formats, has_facts=not options.merge)
    planner = integrations.fix_planner(formats, settings.config.min_retention_days)
    if options.merge:
        baseline = read_baseline(options.output.baseline)
        outcome = ScanOutcome(merge_results(options.merge, settings))
    else:
        baseline = read_baseline(options.output.baseline, options.scope.shard)
        if options.from_facts:
            outcome = ScanOutcome(evaluate_saved(options.from_facts, settings, planner),
                                  fix_plan=planner.plan() if planner is not None else None)
        else:
            outcome = scan(options, settings, keep_facts=bool(options.output.save_facts), planner=planner)
    report = write_reports(outcome.result, settings, options, baseline, outcome.facts, outcome.fix_plan)
    if report.failed:
        return constants.EXIT_WRITE_FAILED
    return exit_code(report.result, settings, new_only=options.output.fail_on_new,
                     fail_on_incomplete=options.output.fail_on_incomplete)
