"""The scan pipeline: discovery -> sessions -> collectors -> raw facts -> derive -> rules -> findings.

Accounts are collected in parallel and each account's regions concurrently (Scanner); each finished raw account
document is then derived and judged in the calling thread (Accumulator.add), which is also how saved facts are
replayed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import re
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from audit_bedrock import collectors
from audit_bedrock.aws.clients import Sessions
from audit_bedrock.aws.errors import error_code, error_message
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
    # Every Bedrock region of the partition (discovery.bedrock_region_list); empty: botocore's list.
    bedrock_regions: tuple[str, ...] = ()


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
        self.outcomes.append(AccountOutcome(_interned(doc["account_id"]), _interned(doc.get("account_name", "")),
                                            _interned(doc.get("ou_path", "")), status, doc.get("reason", "")))
        if status in ("error", "interrupted"):
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


def _interned(value: Any) -> Any:
    """`value`, the one copy of it when it is a str (the ids, names and regions every cell and finding repeat)."""
    return sys.intern(value) if type(value) is str else value


@functools.cache
def _shared(value: tuple[Any, ...]) -> tuple[Any, ...]:
    """One tuple object per distinct value (a few destination and data-type sets cover every cell)."""
    return value


def coverage_cell(account_id: str, r: dict[str, Any]) -> Coverage:
    """The matrix cell for one region document."""
    status = r.get("status", "error")
    logging_fact = r.get("logging") if isinstance(r.get("logging"), dict) else None
    account_id, region = _interned(account_id), _interned(r["region"])
    if status != "scanned" or logging_fact is None or "enabled" not in logging_fact:
        return Coverage(account_id, region, status if status in ("skipped", "error") else "error",
                        reason=_interned(str(r.get("reason", ""))))
    # Facts may come from a --from-facts file: keep only values of the shape findings.json promises.
    dests = logging_fact.get("destinations")
    types = logging_fact.get("data_types")
    delivery = r.get("delivery")
    delivering, last = (delivery.get("delivering"), delivery.get("last_delivery")) if isinstance(
        delivery, dict) else (None, None)
    return Coverage(
        account_id, region, "scanned",
        logging_enabled=bool(logging_fact.get("enabled")),
        destinations=_shared(tuple(sys.intern(d) for d in dests if d in ("s3", "cloudwatch")))
        if isinstance(dests, list) else (),
        large_data_s3=bool(logging_fact.get("large_data_s3")),
        data_types=_shared(tuple(sorted(((sys.intern(k), v) for k, v in types.items()
                                         if k in _DATA_ORDER and isinstance(v, bool)),
                                        key=lambda kv: _DATA_ORDER[kv[0]]))) if isinstance(types, dict) else (),
        delivering=delivering if isinstance(delivering, bool) else None,
        last_delivery=last if isinstance(last, str) and isinstance(delivering, bool) else None,
    )


_DATA_ORDER = {t: i for i, t in enumerate(DATA_TYPES)}


# AWS's access-denied messages name the policy type that denied ("... with an explicit deny in a service control
# policy[: arn:aws:organizations::...]"); only this type means "Bedrock is not allowed in this region".
SCP_DENY_PHRASE = "with an explicit deny in a service control policy"
_SCP_ARN = re.compile(r"service control policy:?\s*(arn:[^\s;,]+)", re.IGNORECASE)


def scp_denial(failure: Failure) -> str | None:
    """The skip reason when a region's Bedrock read was refused by a service control policy, else None.

    A Control Tower region deny-list refuses every Bedrock read there: the region is out of scope, not a scan
    error. Other explicit denies (resource control policy, permissions boundary, identity policy) stay errors.
    """
    if failure.code not in ("AccessDeniedException", "AccessDenied"):
        return None
    cause = failure.cause
    text = str(cause.response.get("Error", {}).get("Message", "")) if isinstance(cause, ClientError) else ""
    if SCP_DENY_PHRASE not in text.lower():
        return None
    arn = _SCP_ARN.search(text)
    return f"{failure.fact['action']} is denied by a service control policy" + (f" ({arn.group(1)})" if arn else "")


def skipped_doc(acct: Account, reason: str, status: str = "skipped") -> dict[str, Any]:
    return {"account_id": acct.id, "account_name": acct.name, "ou_path": acct.ou_path,
            "status": status, "reason": reason, "regions": []}


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
INTERRUPT_GRACE_SECONDS = 5.0
INTERRUPTED, TIMED_OUT = "the scan was interrupted", "the scan reached its deadline (--timeout)"


def mark_interrupted(doc: dict[str, Any], why: str = INTERRUPTED) -> None:
    """An account the interrupt (or the deadline) caught mid-scan: status interrupted, and every account-level
    fact not read yet is a gap, so that the rules needing it are reported (SCAN-003), not silently absent."""
    doc.update(status="interrupted", reason=f"{why} before this account was finished")
    doc.setdefault("scanned_regions", [r["region"] for r in doc["regions"] if r.get("status") == "scanned"])
    code = "Interrupted" if why == INTERRUPTED else "TimedOut"
    for c in collectors.ACCOUNT_COLLECTORS:
        if c.name not in doc:
            doc[c.name] = gap(",".join(c.actions), code, f"{why} before this was read")


# At most this many regions of one account are scanned at the same time (and never more than --max-workers).
REGIONS_IN_FLIGHT_PER_ACCOUNT = 8


class Scanner:
    """Scans accounts in a bounded thread pool, each account's regions concurrently.

    --max-workers bounds the calls in flight: a thread makes calls only while it holds one of `max_workers`
    slots. An account's own reads (AssumeRole, DescribeRegions, IAM) hold a slot on the account's thread, which
    gives it back while its regions run as tasks of a shared region pool, each holding a slot; at most
    REGIONS_IN_FLIGHT_PER_ACCOUNT regions of one account are in flight. Every region task shares the account's
    AccountContext, whose `once` cache makes each shared read once.
    """

    def __init__(self, sessions: Sessions, plan: ScanPlan, grace: float = INTERRUPT_GRACE_SECONDS,
                 deadline: float | None = None) -> None:
        self.sessions = sessions
        self.plan = plan
        self.grace = grace  # how long in-flight accounts may finish after an interrupt
        self.deadline = deadline  # time.monotonic() at which the scan stops as on an interrupt (--timeout)
        self.timed_out = False
        self.stop = threading.Event()
        limit = max(1, plan.max_workers)
        reserve = getattr(sessions, "reserve", None)  # tests scan single regions without sessions
        if reserve is not None:
            reserve(limit)  # every thread shares the clients: their pools hold a connection per slot
        self._slots = threading.BoundedSemaphore(limit)
        self._regions_per_account = max(1, min(REGIONS_IN_FLIGHT_PER_ACCOUNT, limit))
        self._region_pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="region")
        weakref.finalize(self, self._region_pool.shutdown, wait=False, cancel_futures=True)
        # Reads inside other accounts of the organization (AccountContext.peer): one at a time, each account
        # entered once and each of its facts read once per scan, whichever scanned account needs it.
        self._peer_lock = threading.Lock()
        self._peer_credentials: dict[str, Any] = {}
        self._peer_caches: dict[str, dict[Any, Any]] = {}

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
            with self._slots:
                creds = self.credentials_for(acct)
        except (ClientError, BotoCoreError, ResponseParserError) as exc:
            log.warning("%s: cannot enter account: %s", where, error_message(exc))
            doc.update(status="error", reason=f"AssumeRole failed: {error_message(exc)}")
            return doc

        def make_client(service: str, region: str) -> Any:
            return self.sessions.client(service, region, creds, acct.id)

        settings = {**self.plan.settings, "requested_regions": list(self.plan.regions) if self.plan.regions else None,
                    "bedrock_regions": list(self.known_regions())}
        actx = AccountContext(acct.id, acct.name, make_client, self.sessions.home_region, settings=settings)
        actx.peer = functools.partial(self.peer, actx)
        try:
            self._scan_regions(actx, doc, creds)
            if self.stop.is_set():  # the account-level checks never ran: interrupted, not scanned
                mark_interrupted(doc, self.stop_reason())
                return doc
            region_docs = [r for r in doc["regions"] if r.get("status") == "scanned"]
            with self._slots, self.sessions.bind(creds, acct.id):
                self._account_collectors(actx, doc, region_docs)
        except Exception as exc:
            log.exception("%s: unexpected error while scanning", where)
            doc.update(status="error", reason=f"internal error: {type(exc).__name__}: {exc}"[:400])
        finally:
            end = getattr(self.sessions, "end_account", None)
            if end is not None:
                end(acct.id)  # its retry states go with it
        return doc

    def _account_collectors(self, actx: AccountContext, doc: dict[str, Any],
                            region_docs: list[dict[str, Any]]) -> None:
        """The account-level collectors (IAM, SCPs), once every region is read; each failure is a gap."""
        for c in collectors.ACCOUNT_COLLECTORS:
            try:
                doc.update(c.collect(actx, doc, region_docs))
            except Failure as f:
                doc[c.name] = f.fact
            except Exception as exc:  # contained like a region collector's: a gap, not a lost account
                log.exception("%s: collector %s failed unexpectedly", actx.account_id, c.name)
                doc[c.name] = gap(",".join(c.actions), "InternalError", f"{type(exc).__name__}: {exc}")

    def stop_reason(self) -> str:
        return TIMED_OUT if self.timed_out else INTERRUPTED

    def _time_left(self) -> float | None:
        """Seconds to the deadline (0 once passed); None without one."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def known_regions(self) -> tuple[str, ...]:
        """Every Bedrock region: the plan's list (SSM or botocore), else the installed botocore's."""
        return self.plan.bedrock_regions or bedrock_regions()

    @contextlib.contextmanager
    def peer(self, home: AccountContext, account_id: str) -> Iterator[Any]:
        """AccountContext.peer: another ACTIVE account of the organization (or the caller's own), entered with its
        audit role; a gap when AssumeRole fails; None for any other account."""
        estate = self.plan.estate
        if account_id not in estate.members and account_id != estate.caller_account:
            yield None
            return
        with self._peer_lock:
            creds = self._peer_credentials.get(account_id)
            if creds is None:
                try:
                    creds = self.credentials_for(Account(account_id))
                except (ClientError, BotoCoreError) as exc:
                    code = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
                    yield gap("sts:AssumeRole", code, f"cannot enter account {account_id}: {error_message(exc)}")
                    return
                self._peer_credentials[account_id] = creds

            def make_client(service: str, region: str) -> Any:
                return self.sessions.client(service, region, creds, account_id)

            # A fresh context over the scan-wide cache of that account's facts; this thread signs as that
            # account inside the block only.
            other = AccountContext(account_id, "", make_client, self.sessions.home_region, settings=home.settings,
                                   cache=self._peer_caches.setdefault(account_id, {}))
            with self.sessions.bind(creds, account_id):
                yield other

    def _scan_regions(self, actx: AccountContext, doc: dict[str, Any], creds: Any) -> None:
        """Scan the account's regions as tasks of the region pool, at most `_regions_per_account` at a time; the
        region documents keep the sorted order of a sequential scan."""
        candidates = self.plan.regions or self.known_regions()
        with self._slots, self.sessions.bind(creds, actx.account_id):
            enabled = enabled_regions(actx.client("ec2", actx.home_region))
        results: dict[str, dict[str, Any] | None] = {}
        todo: list[str] = []
        for region in sorted(candidates):
            if enabled is not None and region not in enabled:
                results[region] = {"account_id": actx.account_id, "region": region, "status": "skipped",
                                   "reason": "region not enabled in this account"}
            else:
                todo.append(region)
        queue = iter(todo)
        running: dict[Future[dict[str, Any] | None], str] = {}
        try:
            while True:
                while len(running) < self._regions_per_account and not self.stop.is_set():
                    nxt = next(queue, None)
                    if nxt is None:
                        break
                    running[self._region_pool.submit(self._region_task, actx, creds, nxt, enabled is None)] = nxt
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    results[running.pop(fut)] = fut.result()
        finally:
            for fut in running:
                fut.cancel()
        doc["regions"].extend(rdoc for region in sorted(candidates) if (rdoc := results.get(region)) is not None)
        if self.stop.is_set():  # some regions were never started: the caller marks the account interrupted
            return
        doc["scanned_regions"] = [r["region"] for r in doc["regions"] if r["status"] == "scanned"]

    def _region_task(self, actx: AccountContext, creds: Any, region: str, inferred: bool) -> dict[str, Any] | None:
        """One region of an account on a pool thread: None when the scan was stopped before it started."""
        with self._slots, self.sessions.bind(creds, actx.account_id):
            if self.stop.is_set():
                return None
            return self.scan_region(RegionContext(actx, region), inferred=inferred)

    def scan_region(self, rctx: RegionContext, inferred: bool = False) -> dict[str, Any]:
        rdoc: dict[str, Any] = {"account_id": rctx.account.account_id, "region": rctx.region, "status": "scanned"}
        where = f"{rctx.account.account_id}/{rctx.region}"
        try:
            rdoc.update(collectors.PRIMARY.collect(rctx, rdoc))
        except Failure as f:
            scp = scp_denial(f)
            if scp is not None:
                rdoc.update(status="skipped", reason=scp)
            elif inferred and f.code in NOT_ENABLED_CODES:
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
        # SIGTERM (Lambda, containers, CI runners) is handled like Ctrl-C; a signal inherited as ignored
        # (SIGINT in a background job) stays ignored.
        previous: dict[int, Any] = {}
        if main_thread:
            for sig in STOP_SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    previous[sig] = signal.signal(sig, on_sigint)
        try:
            exhausted = False
            while True:
                if self._time_left() == 0:  # the deadline: stop as on an interrupt
                    self.timed_out = True
                    raise KeyboardInterrupt
                while not exhausted and len(pending) < 2 * limit:
                    acct = next(it, None)
                    if acct is None:
                        exhausted = True
                        break
                    pending[pool.submit(self.scan_account, acct)] = acct
                if not pending:
                    break
                done, _ = wait(pending, timeout=self._time_left(), return_when=FIRST_COMPLETED)
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
            log.warning("%s: giving the accounts in flight %.0f s, then writing what was scanned",
                        "deadline reached (--timeout)" if self.timed_out else "interrupted", self.grace)
        finally:
            for signum, handler in previous.items():  # a second Ctrl-C while the accounts in flight wind down
                signal.signal(signum, handler if handler is not None else signal.default_int_handler)
            # in-flight accounts get a short grace, not the retries of a black-holed endpoint
            pool.shutdown(wait=not interrupted, cancel_futures=True)
            if interrupted and pending:
                wait(pending, timeout=self.grace)
        if interrupted:
            not_started = f"not scanned: {self.stop_reason()} before this account"
            for fut, acct in pending.items():
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    doc = fut.result()
                    if doc.get("status") != "interrupted" or any(r.get("status") == "scanned"
                                                                  for r in doc["regions"]):
                        on_done(doc)
                        continue
                on_done(skipped_doc(acct, not_started, status="interrupted"))
            for acct in it:
                on_done(skipped_doc(acct, not_started, status="interrupted"))
        return not interrupted
