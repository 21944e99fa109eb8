"""The audit-bedrock command line: parse flags into RunOptions and call the core API (audit_bedrock.api).

Kept light: `--help` imports argparse and this package's own small modules only. The API and what it needs
(YAML, jmespath; botocore and jinja2 later, lazily) are imported once a command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

from audit_bedrock import __version__
from audit_bedrock.constants import ACCOUNT_ID_RE as _ACCOUNT_RE
from audit_bedrock.constants import (  # the exit codes are re-exported: callers import them from here too
    DEFAULT_FORMATS,
    DEFAULT_OUTPUT_DIR,
    EXIT_CODES_TEXT,
    EXIT_FINDINGS,
    EXIT_INCOMPLETE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_WRITE_FAILED,
    FAIL_ON_LEVELS,
    SEVERITIES,
)
from audit_bedrock.errors import DeadlineReached, UsageError

if TYPE_CHECKING:
    from audit_bedrock.api import RunOptions, ScanOptions

__all__ = ["EXIT_FINDINGS", "EXIT_INCOMPLETE", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE",
           "EXIT_WRITE_FAILED", "build_parser", "entry", "main"]


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _rule_ids(value: str) -> list[str]:
    return [v.upper() for v in _csv(value)]


def _formats(value: str) -> list[str]:
    return [v.lower() for v in _csv(value)]


def _accounts(value: str) -> list[str]:
    ids = _csv(value)
    for i in ids:
        if not _ACCOUNT_RE.match(i):
            raise argparse.ArgumentTypeError(f"'{i}' is not a 12-digit AWS account id")
    return ids


def _shard(value: str) -> tuple[int, int]:
    from audit_bedrock.shard import parse_shard  # hashlib and dataclasses: not for --help

    return parse_shard(value)


EXAMPLES = """examples:
  audit-bedrock --demo                          a sample organization on a local AWS stand-in
  audit-bedrock                                 the caller's own account, every enabled Bedrock region
  audit-bedrock --org --regions us-east-1       every ACTIVE account (management or delegated admin account)
  audit-bedrock --org --baseline last/findings.json --fail-on-new
  audit-bedrock --explain BIL-005               one rule: why it matters and how to fix it
"""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error for a bad value (not the whole usage block), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    """A case-insensitive choice: `--fail-on High` is `high`."""
    def parse(value: str) -> str:
        if value.lower() not in choices:
            raise argparse.ArgumentTypeError(f"'{value}' is not one of {', '.join(choices)}")
        return value.lower()
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="audit-bedrock",
        description="Audit Amazon Bedrock model invocation logging across an AWS Organization.",
        epilog=EXAMPLES + "\n" + textwrap.fill(EXIT_CODES_TEXT, 100),
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    scope.add_argument("--role-name", help="role assumed in member accounts (default AuditBedrockRole, the read-only "
                                           "role deploy/audit-role.yaml creates)")
    scope.add_argument("--external-id", help="ExternalId for AssumeRole")
    scope.add_argument("--print-policy", nargs="?", const="member", type=_choice(("member", "caller")),
                       metavar="member|caller",
                       help="print the IAM policy of the member audit role (default) or of the caller, and exit")
    rules = p.add_argument_group("rules and config")
    rules.add_argument("--config", metavar="FILE", help="YAML config (see config.example.yaml)")
    rules.add_argument("--rules-dir", action="append", default=[], metavar="DIR",
                       help="an extra rule pack beside the default one (repeatable)")
    rules.add_argument("--rules", type=_rule_ids, default=[], metavar="ID,ID",
                       help="evaluate only these rules (see --list-rules)")
    rules.add_argument("--skip-rules", type=_rule_ids, default=[], metavar="ID,ID",
                       help="do not evaluate these rules (beside the config's disabled_rules)")
    rules.add_argument("--list-rules", action="store_true", help="print the rule catalog and exit")
    rules.add_argument("--explain", metavar="RULE_ID", help="print one rule's rationale and remediation")
    rules.add_argument("--list-facts", action="store_true",
                       help="print the facts rules may read (path, type, gap?, derived?, meaning) and exit")
    out = p.add_argument_group("output")
    out.add_argument("--format", default=None, metavar="json,html,sarif,markdown,ocsf,asff,fix",
                     help=f"report formats (default {','.join(DEFAULT_FORMATS)}); markdown writes summary.md, "
                          "for a CI job summary; ocsf, asff and fix (fix-plan.json and .sh) on request; "
                          "with --list-rules: text or json")
    out.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR, metavar="DIR|s3://BUCKET/PREFIX|-",
                     help=f"where the reports go (default ./{DEFAULT_OUTPUT_DIR}); '-' writes findings.json to "
                          "stdout and nothing to disk")
    out.add_argument("--fail-on", type=_choice(FAIL_ON_LEVELS), default=None, metavar="|".join(FAIL_ON_LEVELS),
                     help="exit 1 when an open finding is at or above this severity (default high)")
    out.add_argument("--min-severity", "--severity", type=_choice(SEVERITIES), default=None,
                     metavar="|".join(SEVERITIES), help="leave findings below this severity out of the reports")
    out.add_argument("--fail-on-incomplete", action="store_true",
                     help="exit 3 when the scan is incomplete even if it has findings at or above --fail-on "
                          "(without it, 1 wins; findings.json's scan.complete tells either way)")
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
    run.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                     help="stop the scan after SECONDS and write what was scanned, marked incomplete (exit 3)")
    run.add_argument("--profile", help="AWS profile")
    run.add_argument("--endpoint-url", help="AWS endpoint override (AWS_ENDPOINT_URL works too)")
    run.add_argument("--demo", action="store_true",
                     help="scan a seeded sample organization on an embedded AWS stand-in (needs .[demo])")
    run.add_argument("-q", "--quiet", action="count", default=0, help="less output")
    run.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    run.add_argument("--version", action="version", version=f"audit-bedrock {__version__}")
    return p


def _setup_logging(ns: argparse.Namespace) -> None:
    """Verbosity from -q/-v; the API adds the credential-redacting filter to these handlers."""
    import logging  # with traceback, ~0.1 s of imports that --help does not need

    level = logging.WARNING - 10 * ns.verbose + 10 * ns.quiet
    logging.basicConfig(level=max(logging.DEBUG, min(logging.CRITICAL, level)), stream=sys.stderr,
                        format="audit-bedrock: %(levelname)s: %(message)s")
    if ns.verbose < 3:
        for noisy in ("botocore", "urllib3", "werkzeug"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    if ns.output_dir == "-" and ns.format is None:
        ns.format = "json"  # stdout holds one file: findings.json
    _setup_logging(ns)
    try:
        return execute(ns)
    except UsageError as exc:
        print(f"audit-bedrock: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DeadlineReached as exc:
        print(f"audit-bedrock: error: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except KeyboardInterrupt:  # outside the scan loop (discovery, a second Ctrl-C): no traceback
        print("audit-bedrock: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, a documented code; traceback with -v
        setup = _aws_setup_problem(exc)
        if setup:
            print(f"audit-bedrock: error: {setup}", file=sys.stderr)
            return EXIT_USAGE
        if ns.verbose:
            import traceback

            traceback.print_exc(file=sys.stderr)
        hint = "" if ns.verbose else "; run with -v for the traceback"
        print(f"audit-bedrock: internal error: {type(exc).__name__}: {exc}{hint} (please report it)", file=sys.stderr)
        return EXIT_INTERNAL


def _aws_setup_problem(exc: Exception) -> str | None:
    """The message for an AWS set-up error a user fixes (profile, credentials, region), else None."""
    try:
        from botocore import exceptions as bce
    except ImportError:  # pragma: no cover - botocore is a dependency
        return None
    setup = (bce.ProfileNotFound, bce.NoCredentialsError, bce.PartialCredentialsError, bce.NoRegionError,
             bce.InvalidConfigError, bce.ConfigParseError)
    return f"AWS set-up: {exc}" if isinstance(exc, setup) else None


def scan_options(ns: argparse.Namespace) -> ScanOptions:
    """The config, rule-pack and AWS flags."""
    from audit_bedrock.api import ScanOptions

    return ScanOptions(config=ns.config, rules_dirs=tuple(ns.rules_dir), role_name=ns.role_name,
                       external_id=ns.external_id, fail_on=ns.fail_on, max_workers=ns.max_workers,
                       profile=ns.profile, endpoint_url=ns.endpoint_url, only_rules=tuple(ns.rules),
                       skip_rules=tuple(ns.skip_rules), timeout=ns.timeout)


def run_options(ns: argparse.Namespace) -> RunOptions:
    """Every flag of a run (scan, --from-facts or --merge) as options; bad combinations are UsageErrors."""
    from audit_bedrock.api import OutputOptions, RunOptions, ScopeOptions, parse_regions

    scope = ScopeOptions(org=ns.org, accounts=tuple(ns.accounts or ()), exclude_accounts=tuple(ns.exclude_accounts),
                         ous=tuple(ns.ou), regions=parse_regions(ns.regions) if ns.regions else None,
                         shard=ns.shard)
    output = OutputOptions(formats=tuple(_formats(ns.format)) if ns.format else DEFAULT_FORMATS,
                           output_dir=ns.output_dir, baseline=ns.baseline, fail_on_new=ns.fail_on_new,
                           fail_on_incomplete=ns.fail_on_incomplete, min_severity=ns.min_severity,
                           save_facts=ns.save_facts, history=ns.history,
                           security_hub_import=ns.security_hub_import,
                           security_hub_role_name=ns.security_hub_role_name,
                           progress=ns.quiet == 0, summary=ns.quiet < 2, brief=ns.quiet == 1)
    return RunOptions(scope=scope, scan=scan_options(ns), output=output, from_facts=ns.from_facts,
                      merge=tuple(ns.merge or ()))


def execute(ns: argparse.Namespace) -> int:
    """Run one command; UsageError propagates to main()."""
    from audit_bedrock import api

    if ns.print_policy:
        sys.stdout.write(api.policy_text(ns.print_policy, scan_options(ns)))
        return EXIT_OK
    if ns.list_facts:
        sys.stdout.write(api.facts_text())
        return EXIT_OK
    if ns.list_rules and ns.format:
        fmt = ns.format.strip().lower()
        if fmt not in ("text", "json"):
            raise UsageError(f"--list-rules --format: '{ns.format}' is not text or json")
        if fmt == "json":
            sys.stdout.write(api.catalog_json(scan_options(ns)))
            return EXIT_OK
    if ns.list_rules or ns.explain:
        sys.stdout.write(api.catalog_text(api.catalog_rules(scan_options(ns)), ns.explain))
        return EXIT_OK
    if ns.demo:
        from audit_bedrock.demo import run_demo
        return run_demo(run_options(ns))
    return api.run(run_options(ns))


def entry() -> NoReturn:
    """The `audit-bedrock` command: main(), then exit at once, even while scan threads hang.

    After an interrupt or the deadline, worker threads may still wait on a black-holed endpoint (10 attempts of
    20 s). A normal exit joins them first (concurrent.futures' exit hook), which held the process for minutes;
    what had to be written was written, so the process ends without waiting for them.
    """
    code = main()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        import logging  # imported lazily (--help does not need it); already loaded after a scan

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    entry()
