"""The scan pipeline: discovery -> sessions -> collectors -> raw facts -> derive -> rules -> findings.

Accounts are collected in parallel (Scanner); each finished raw account document is then derived and judged
in the calling thread (Accumulator.add), which is also how saved facts are replayed.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from audit_bedrock import collectors
from audit_bedrock.aws.clients import Sessions
from audit_bedrock.aws.errors import error_message
from audit_bedrock.collectors.base import AccountContext, Failure, RegionContext
from audit_bedrock.constants import DATA_TYPES
from audit_bedrock.derive import derive
from audit_bedrock.discovery import NOT_ENABLED_CODES, Estate, bedrock_regions, enabled_regions
from audit_bedrock.engine import Evaluator
from audit_bedrock.facts import gap
from audit_bedrock.findings import FindingBuilder
from audit_bedrock.model import Account, AccountOutcome, Coverage, Finding

log = logging.getLogger("audit_bedrock")


def utcnow() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class ScanPlan:
    """What to scan and how to enter each account."""

    estate: Estate
    regions: tuple[str, ...] | None  # None: every Bedrock region enabled in the account
    role_name: str
    external_id: str | None
    max_workers: int
    # Values collectors read through AccountContext.settings (e.g. usage_lookback_days).
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Accumulator:
    """Derives finished raw account documents and reduces them to outcomes, coverage and findings as they
    arrive; with keep_facts it keeps the raw documents (what --save-facts writes)."""

    evaluator: Evaluator
    builder: FindingBuilder
    keep_facts: bool = False
    outcomes: list[AccountOutcome] = field(default_factory=list)
    coverage: list[Coverage] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    facts: list[dict[str, Any]] = field(default_factory=list)
    regions_seen: set[str] = field(default_factory=set)
    incomplete: bool = False
    # Called with each account's facts and its findings as they arrive (the fix planner); the facts are not kept.
    on_account: Callable[[dict[str, Any], list[Finding]], None] | None = None

    def add(self, raw: dict[str, Any]) -> None:
        """Derive one raw account document, then record its outcome, coverage and findings."""
        doc = derived(raw)
        status = doc.get("status", "error")
        self.outcomes.append(AccountOutcome(doc["account_id"], doc.get("account_name", ""),
                                            doc.get("ou_path", ""), status, doc.get("reason", "")))
        if status == "error":
            self.incomplete = True
        for r in doc.get("regions") or []:
            cell = coverage_cell(doc["account_id"], r)
            self.coverage.append(cell)
            if cell.status != "skipped":
                self.regions_seen.add(cell.region)
            if cell.status == "error":
                self.incomplete = True
        name = doc.get("account_name", "")
        mine = []
        for judged in self.evaluator.evaluate_account(doc):
            f = self.builder.build(judged, name)
            if judged.rule.category == "coverage":
                self.incomplete = True
            mine.append(f)
        self.findings.extend(mine)
        if self.on_account is not None:
            self.on_account(doc, mine)
        if self.keep_facts:
            self.facts.append(raw)


def derived(raw: dict[str, Any]) -> dict[str, Any]:
    """The derivation stage: derive(raw), or raw marked as an error when the analysis itself fails."""
    try:
        return derive(raw)
    except Exception as exc:  # contained like a collector's: one account is lost, not the scan
        log.exception("%s: deriving facts failed unexpectedly", raw.get("account_id"))
        return {**raw, "status": "error", "reason": f"internal error: {type(exc).__name__}: {exc}"[:400]}


def coverage_cell(account_id: str, r: dict[str, Any]) -> Coverage:
    """The matrix cell for one region document."""
    status = r.get("status", "error")
    logging_fact = r.get("logging") if isinstance(r.get("logging"), dict) else None
    if status != "scanned" or logging_fact is None or "enabled" not in logging_fact:
        return Coverage(account_id, r["region"], status if status in ("skipped", "error") else "error",
                        reason=str(r.get("reason", "")))
    # Facts may come from a --from-facts file: keep only values of the shape findings.json promises.
    dests = logging_fact.get("destinations")
    types = logging_fact.get("data_types")
    return Coverage(
        account_id, r["region"], "scanned",
        logging_enabled=bool(logging_fact.get("enabled")),
        destinations=tuple(d for d in dests if d in ("s3", "cloudwatch")) if isinstance(dests, list) else (),
        large_data_s3=bool(logging_fact.get("large_data_s3")),
        data_types=tuple(sorted(((k, v) for k, v in types.items() if k in _DATA_ORDER and isinstance(v, bool)),
                                key=lambda kv: _DATA_ORDER[kv[0]])) if isinstance(types, dict) else (),
    )


_DATA_ORDER = {t: i for i, t in enumerate(DATA_TYPES)}


def skipped_doc(acct: Account, reason: str) -> dict[str, Any]:
    return {"account_id": acct.id, "account_name": acct.name, "ou_path": acct.ou_path,
            "status": "skipped", "reason": reason, "regions": []}


class Scanner:
    """Scans accounts in a bounded thread pool; each account's regions are read in sequence."""

    def __init__(self, sessions: Sessions, plan: ScanPlan) -> None:
        self.sessions = sessions
        self.plan = plan
        self.stop = threading.Event()

    def credentials_for(self, acct: Account) -> Any:
        if acct.id == self.plan.estate.caller_account:
            return self.sessions.caller_credentials()
        return self.sessions.assume(acct.id, self.plan.role_name, self.plan.external_id,
                                    self.plan.estate.caller_account)

    def scan_account(self, acct: Account) -> dict[str, Any]:
        doc: dict[str, Any] = {"account_id": acct.id, "account_name": acct.name, "ou_path": acct.ou_path,
                               "status": "scanned", "reason": "", "regions": []}
        where = acct.id
        self.sessions.begin_account()
        try:
            creds = self.credentials_for(acct)
        except (ClientError, BotoCoreError) as exc:
            log.warning("%s: cannot enter account: %s", where, error_message(exc))
            doc.update(status="error", reason=f"AssumeRole failed: {error_message(exc)}")
            return doc

        def make_client(service: str, region: str) -> Any:
            return self.sessions.client(service, region, creds, acct.id)

        settings = {**self.plan.settings, "requested_regions": list(self.plan.regions) if self.plan.regions else None}
        actx = AccountContext(acct.id, acct.name, make_client, self.sessions.home_region, settings=settings)
        try:
            self._scan_regions(actx, doc)
            if self.stop.is_set():
                return doc
            region_docs = [r for r in doc["regions"] if r.get("status") == "scanned"]
            for c in collectors.ACCOUNT_COLLECTORS:
                try:
                    doc.update(c.collect(actx, doc, region_docs))
                except Failure as f:
                    doc[c.name] = f.fact
                except Exception as exc:  # contained like a region collector's: a gap, not a lost account
                    log.exception("%s: collector %s failed unexpectedly", where, c.name)
                    doc[c.name] = gap(",".join(c.actions), "InternalError", f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            log.exception("%s: unexpected error while scanning", where)
            doc.update(status="error", reason=f"internal error: {type(exc).__name__}: {exc}"[:400])
        return doc

    def _scan_regions(self, actx: AccountContext, doc: dict[str, Any]) -> None:
        candidates = self.plan.regions or bedrock_regions()
        enabled = enabled_regions(actx.client("ec2", actx.home_region))
        for region in sorted(candidates):
            if self.stop.is_set():
                doc.update(status="error", reason="scan interrupted")
                return
            if enabled is not None and region not in enabled:
                doc["regions"].append({"account_id": actx.account_id, "region": region, "status": "skipped",
                                       "reason": "region not enabled in this account"})
                continue
            doc["regions"].append(self.scan_region(RegionContext(actx, region), inferred=enabled is None))
        doc["scanned_regions"] = [r["region"] for r in doc["regions"] if r["status"] == "scanned"]

    def scan_region(self, rctx: RegionContext, inferred: bool = False) -> dict[str, Any]:
        rdoc: dict[str, Any] = {"account_id": rctx.account.account_id, "region": rctx.region, "status": "scanned"}
        where = f"{rctx.account.account_id}/{rctx.region}"
        try:
            rdoc.update(collectors.PRIMARY.collect(rctx, rdoc))
        except Failure as f:
            if inferred and f.code in NOT_ENABLED_CODES:
                rdoc.update(status="skipped", reason=f"region not enabled ({f.code})")
            else:
                # Name the permission: AWS messages often do not (S3 says only "Access Denied").
                rdoc.update(status="error", reason=f"{f.fact['action']} failed: {f.fact['message'] or f.code}")
            return rdoc
        for c in collectors.REGION_COLLECTORS:
            try:
                rdoc.update(c.collect(rctx, rdoc))
            except Failure as f:
                rdoc[c.name] = f.fact
            except Exception as exc:
                log.exception("%s: collector %s failed unexpectedly", where, c.name)
                rdoc[c.name] = gap(",".join(c.actions), "InternalError", f"{type(exc).__name__}: {exc}")
        return rdoc

    def run(self, accounts: tuple[Account, ...], on_done: Callable[[dict[str, Any]], None],
            progress: Callable[[], None] | None = None) -> bool:
        """Scan `accounts`, calling `on_done` in this thread as each finishes; False if interrupted."""
        limit = max(1, self.plan.max_workers)
        it: Iterator[Account] = iter(accounts)
        pending: dict[Future[dict[str, Any]], Account] = {}
        pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="scan")
        interrupted = False
        # Ctrl-C while on_done records an account would leave it half recorded: defer it until on_done returns.
        recording = deferred = False

        def on_sigint(signum: int, frame: Any) -> None:
            nonlocal deferred
            if recording:
                deferred = True
                return
            raise KeyboardInterrupt

        main_thread = threading.current_thread() is threading.main_thread()
        previous: Any = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
        try:
            exhausted = False
            while True:
                while not exhausted and len(pending) < 2 * limit:
                    acct = next(it, None)
                    if acct is None:
                        exhausted = True
                        break
                    pending[pool.submit(self.scan_account, acct)] = acct
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    pending.pop(fut)
                    recording = True
                    try:
                        on_done(fut.result())
                    finally:
                        recording = False
                    if deferred:
                        raise KeyboardInterrupt
                    if progress:
                        progress()
        except KeyboardInterrupt:
            interrupted = True
            self.stop.set()
            log.warning("interrupted: finishing the accounts in flight and writing what was scanned")
        finally:
            if main_thread:  # a second Ctrl-C while the accounts in flight wind down stops at once
                signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
            pool.shutdown(wait=True, cancel_futures=True)
        if interrupted:
            for fut, acct in pending.items():
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    doc = fut.result()
                    if doc.get("reason") != "scan interrupted":
                        on_done(doc)
                        continue
                on_done(skipped_doc(acct, "not scanned: the scan was interrupted"))
            for acct in it:
                on_done(skipped_doc(acct, "not scanned: the scan was interrupted"))
        return not interrupted
