"""Import findings.asff.json into AWS Security Hub: the only write audit-bedrock can make, and only when asked.

Who may import: with the default product ARN (a custom integration), BatchImportFindings accepts a finding only
from the account the finding is about: the caller's account must equal the finding's `AwsAccountId` (Security Hub
API reference, BatchImportFindings). The Security Hub administrator account cannot import its members' findings;
only an allow-listed partner product can import for other accounts. So the findings of each account are imported
with that account's own credentials (the caller's for its own account, an import role in each member account),
into the region in the finding's ProductArn; the administrator then sees them through Security Hub's
organization aggregation like any member finding.

Batches hold at most 100 findings (BatchImportFindingsRequestFindingList, max 100). The response shapes
(securityhub service-2.json) and what each one does:
- BatchImportFindingsResponse {FailedCount, SuccessCount, FailedFindings}: SuccessCount findings are in;
- FailedFindings is a list of ImportFindingsError {Id, ErrorCode, ErrorMessage}: a finding Security Hub refused
  as such (`InvalidInput`: it does not follow the AWS Security Finding Format) is reported at once; any other
  failure is retried (`attempts` in all, with a growing pause); what still fails is reported with its code;
- an error for the whole call: throttling (ThrottlingException, LimitExceededException, HTTP 429) is retried by
  botocore itself (the scanner's clients use its adaptive mode, audit_bedrock.aws.clients.CLIENT_CONFIG); what
  is left is reported for the batch. InvalidAccessException (Security Hub is not enabled in that account and
  region) and AccessDenied* mean every other batch of that account and region would fail alike: they are
  reported without calling again.
Nothing is dropped silently: every finding not imported is in ImportReport.failed, and the log names each
(account, region, error code) once with its count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger("audit_bedrock")

MAX_BATCH = 100  # BatchImportFindings accepts at most 100 findings per call
ACTION = "securityhub:BatchImportFindings"
# FailedFindings error codes that another attempt cannot change: the finding itself was refused.
PERMANENT_CODES = frozenset({"InvalidInput", "InvalidInputException"})
# Whole-call error codes that hold for every batch of the same account and region.
GROUP_FATAL_CODES = frozenset({"InvalidAccessException", "AccessDenied", "AccessDeniedException",
                               "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken"})


@dataclass(frozen=True)
class ImportFailure:
    """A finding that was not imported, with Security Hub's (or the client's) error code."""

    id: str
    account_id: str
    region: str
    code: str
    message: str


@dataclass(frozen=True)
class ImportReport:
    """What an import did: findings accepted, calls made, and every finding that failed in the end."""

    imported: int
    calls: int
    failed: tuple[ImportFailure, ...]

    def failure_groups(self) -> list[tuple[str, str, str, int, str]]:
        """(account, region, error code, findings, first message) per kind of failure, sorted."""
        groups: dict[tuple[str, str, str], list[ImportFailure]] = {}
        for f in self.failed:
            groups.setdefault((f.account_id, f.region, f.code), []).append(f)
        return [(a, r, c, len(fs), fs[0].message) for (a, r, c), fs in sorted(groups.items())]


def product_region(finding: dict[str, Any]) -> str:
    """The region of a finding's ProductArn (arn:aws:securityhub:REGION:ACCOUNT:product/...)."""
    parts = str(finding.get("ProductArn", "")).split(":")
    return parts[3] if len(parts) > 4 else ""


def _code(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return str(err.get("Code") or "ClientError"), str(err.get("Message") or exc)
    return type(exc).__name__, str(exc)


def import_findings(findings: Iterable[dict[str, Any]], client_for: Callable[[str, str], Any],
                    batch_size: int = MAX_BATCH, attempts: int = 3, pause: float = 1.0,
                    sleep: Callable[[float], None] = time.sleep) -> ImportReport:
    """Import ASFF findings, grouped by (account, region), with `client_for(account, region)`'s client."""
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in findings:
        groups.setdefault((str(f["AwsAccountId"]), product_region(f)), []).append(f)
    imported = calls = 0
    failed: list[ImportFailure] = []
    for (account, region), items in sorted(groups.items()):
        try:
            client = client_for(account, region)
        except (ClientError, BotoCoreError) as exc:
            code, message = _code(exc)
            failed += [ImportFailure(str(item["Id"]), account, region, code, message) for item in items]
            continue
        for start in range(0, len(items), batch_size):
            batch = items[start:start + batch_size]
            done, n, missed = _import_batch(client, batch, account, region, attempts, pause, sleep)
            imported, calls = imported + done, calls + n
            failed += missed
            fatal = next((m for m in missed if m.code in GROUP_FATAL_CODES), None)
            if fatal is not None:  # the next batches of this account and region would fail alike
                failed += [ImportFailure(str(item["Id"]), account, region, fatal.code, fatal.message)
                           for item in items[start + batch_size:]]
                break
    report = ImportReport(imported, calls, tuple(failed))
    for account, region, code, count, message in report.failure_groups():
        log.warning("Security Hub did not import %d finding(s) of %s in %s: %s %s", count, account, region, code,
                    message)
    return report


def _import_batch(client: Any, batch: list[dict[str, Any]], account: str, region: str, attempts: int,
                  pause: float, sleep: Callable[[float], None]) -> tuple[int, int, list[ImportFailure]]:
    """One batch with its retries: (imported, calls, failures after the last attempt)."""
    pending = {str(f["Id"]): f for f in batch}
    imported = calls = 0
    last: dict[str, tuple[str, str]] = {}
    refused: list[ImportFailure] = []
    for attempt in range(1, attempts + 1):
        try:
            calls += 1
            reply = client.batch_import_findings(Findings=list(pending.values()))
        except (ClientError, BotoCoreError) as exc:  # the whole call failed (botocore already retried throttling)
            code, message = _code(exc)
            return imported, calls, [*refused, *(ImportFailure(i, account, region, code, message) for i in pending)]
        last = {str(e.get("Id", "")): (str(e.get("ErrorCode", "")), str(e.get("ErrorMessage", "")))
                for e in reply.get("FailedFindings") or []}
        imported += int(reply.get("SuccessCount", len(pending) - len(last)))
        refused += [ImportFailure(i, account, region, *last[i]) for i in pending
                    if i in last and last[i][0] in PERMANENT_CODES]
        pending = {i: f for i, f in pending.items() if i in last and last[i][0] not in PERMANENT_CODES}
        if not pending:
            break
        if attempt < attempts:
            log.info("%s/%s: %d finding(s) failed to import; retrying", account, region, len(pending))
            sleep(pause * attempt)
    return imported, calls, [*refused, *(ImportFailure(i, account, region, *last.get(i, ("Unknown", "")))
                                         for i in pending)]
