"""What a run adds for the security team's stack: the fix plan built during the scan, the history of previous runs,
the scanned scope (SARIF category) and the optional Security Hub import. The CLI and the scheduled job call these.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from audit_bedrock import constants
from audit_bedrock.errors import UsageError

if TYPE_CHECKING:
    from audit_bedrock.model import Finding, ScanResult
    from audit_bedrock.reports import RenderContext
    from audit_bedrock.reports.fixplan import FixPlanner
    from audit_bedrock.reports.history import RunPoint
    from audit_bedrock.reports.securityhub import ImportReport

log = logging.getLogger("audit_bedrock")

DEFAULT_IMPORT_ROLE = constants.DEFAULT_IMPORT_ROLE  # deploy/audit-role.yaml creates it when asked
# policy (and with it the collectors and botocore) is imported only where used: --help and --list-rules stay light


def home_region() -> str:
    """Where account-wide findings are imported into Security Hub: the caller's configured region."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def wants_fix_plan(formats: Sequence[str]) -> bool:
    """The plan is built when it is written (fix) or shown (html, next to each finding's remediation)."""
    return "fix" in formats or "html" in formats


def fix_planner(formats: Sequence[str], min_retention_days: int) -> FixPlanner | None:
    if not wants_fix_plan(formats):
        return None
    from audit_bedrock.reports.fixplan import FixPlanner
    return FixPlanner(min_retention_days)


def account_hook(planner: FixPlanner | None) -> Callable[[dict[str, Any], list[Finding]], None] | None:
    """The Accumulator's per-account callback: plan that account's fixes from its facts, which are then let go."""
    return planner.add if planner is not None else None


def check_fix_format(formats: Sequence[str], has_facts: bool) -> None:
    if "fix" in formats and not has_facts:
        raise UsageError("--format fix needs the scan's facts: run it on a scan or on --from-facts, not on --merge "
                         "(each shard run can write its own fix plan)")


def scope(ous: Sequence[str] | None, accounts: Sequence[str] | None, exclude: Sequence[str] | None) -> str:
    """The scanned subset, as SARIF's category names it ('' for a whole organization)."""
    from audit_bedrock.reports.sarif import scope_key
    return scope_key(ous=list(ous or ()), accounts=list(accounts or ()), exclude=list(exclude or ()))


def history(source: str | None, profile: str | None = None, endpoint_url: str | None = None) -> tuple[RunPoint, ...]:
    """Previous runs from --history (a folder or s3://bucket/prefix), oldest first; () without the flag."""
    if not source:
        return ()
    from audit_bedrock.reports.history import load_history

    def s3() -> Any:
        import boto3
        return boto3.Session(profile_name=profile).client("s3", endpoint_url=endpoint_url)

    points = tuple(load_history(source, s3))
    log.info("--history: %d previous run(s) from %s", len(points), source)
    return points


def previous_run(ctx: RenderContext, result: ScanResult) -> RunPoint | None:
    """The last run before this one, for the terminal summary's change since the last run."""
    if not ctx.history:
        return None
    from audit_bedrock.reports.history import point_from_result, series
    runs = series(ctx.history, point_from_result(result))
    return runs[-2] if len(runs) > 1 else None


@dataclass(frozen=True)
class ImportTarget:
    """How to reach each account's Security Hub: the caller's credentials for its own account, else a role."""

    caller_account: str
    role_name: str
    external_id: str | None = None


def import_findings(result: ScanResult, ctx: RenderContext, target: ImportTarget,
                    make_client: Callable[[str, str, str | None], Any]) -> ImportReport:
    """--security-hub-import: the findings.asff.json findings, imported account by account.

    `make_client(account, region, role_name_or_None)` returns a securityhub client with that account's own
    credentials (None: the caller's). BatchImportFindings accepts a finding with the default product only from the
    finding's own account, so every member account is entered through its import role.
    """
    from audit_bedrock.reports.asff import findings as asff_findings
    from audit_bedrock.reports.securityhub import import_findings as run_import

    def client_for(account: str, region: str) -> Any:
        role = None if account == target.caller_account else target.role_name
        return make_client(account, region, role)

    report = run_import(asff_findings(result, ctx), client_for)
    log.info("Security Hub: %d finding(s) imported in %d call(s), %d failed", report.imported, report.calls,
             len(report.failed))
    return report


def import_with_sessions(result: ScanResult, ctx: RenderContext, external_id: str | None, role_name: str | None,
                         profile: str | None, endpoint_url: str | None) -> ImportReport:
    """--security-hub-import with the scanner's own sessions: the caller's credentials, AssumeRole elsewhere."""
    from botocore.exceptions import BotoCoreError, ClientError

    from audit_bedrock.aws.clients import Sessions

    sessions = Sessions(profile=profile, endpoint_url=endpoint_url, max_pool=4)
    caller = sessions.caller_credentials()
    # The importing identity's own account, which may not be the scan's (a --merge or --from-facts run elsewhere):
    # only its findings may go with the caller's credentials.
    try:
        me = str(sessions.client("sts", sessions.home_region, caller, "caller").get_caller_identity()["Account"])
    except (ClientError, BotoCoreError) as exc:
        log.warning("Security Hub: cannot tell the caller's account (%s); using the scan's, %s", exc,
                    result.meta.caller_account)
        me = result.meta.caller_account
    target = ImportTarget(me, role_name or DEFAULT_IMPORT_ROLE, external_id)
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
