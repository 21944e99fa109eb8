"""Concurrent regions (issue 16): the bounds on calls in flight, the order of region documents, and reads shared
by an account's regions made once however many regions ask at the same time."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from audit_bedrock import collectors
from audit_bedrock.collectors.base import AccountContext, RegionContext
from audit_bedrock.discovery import Estate
from audit_bedrock.model import Account
from audit_bedrock.scan import REGIONS_IN_FLIGHT_PER_ACCOUNT, Scanner, ScanPlan

REGIONS = tuple(f"r-{i:02d}" for i in range(17))
CALLER = "000000000000"


class FakeEc2:
    """DescribeRegions (botocore ec2 DescribeRegionsResult/Region: RegionName, OptInStatus)."""

    def describe_regions(self, **_: Any) -> dict[str, Any]:
        return {"Regions": [{"RegionName": r, "OptInStatus": "opt-in-not-required"} for r in REGIONS]}


class FakeSessions:
    """What Scanner asks of Sessions, with no AWS behind it; counts the threads bound to an account at once."""

    home_region = "r-00"

    def __init__(self) -> None:
        self.local = threading.local()

    def reserve(self, _: int) -> None:
        return

    def begin_account(self) -> None:
        self.local.account = ""

    def caller_credentials(self) -> Any:
        return "caller"

    def assume(self, account_id: str, *_: Any) -> Any:
        return f"creds-{account_id}"

    def client(self, service: str, region: str, creds: Any, account: str) -> Any:
        self.local.account = account
        return FakeEc2()

    @contextlib.contextmanager
    def bind(self, creds: Any, account: str) -> Iterator[None]:
        previous = getattr(self.local, "account", "")
        self.local.account = account
        try:
            yield
        finally:
            self.local.account = previous

    def bound(self) -> str:
        return str(getattr(self.local, "account", ""))


class Probe:
    """A region collector that sleeps and records how many region tasks run at once, overall and per account."""

    name = "logging"
    actions = ("bedrock:GetModelInvocationLoggingConfiguration",)

    def __init__(self, sessions: FakeSessions) -> None:
        self.sessions = sessions
        self.lock = threading.Lock()
        self.now: dict[str, int] = {}
        self.peak = 0
        self.peak_per_account = 0
        self.wrong_binding: list[str] = []

    def collect(self, ctx: RegionContext, facts: dict[str, Any]) -> dict[str, Any]:
        account = ctx.account.account_id
        if self.sessions.bound() != account:
            self.wrong_binding.append(f"{account}/{ctx.region} bound to {self.sessions.bound()!r}")
        with self.lock:
            self.now[account] = self.now.get(account, 0) + 1
            self.peak = max(self.peak, sum(self.now.values()))
            self.peak_per_account = max(self.peak_per_account, self.now[account])
        time.sleep(0.01)
        with self.lock:
            self.now[account] -= 1
        return {"logging": {"enabled": False}}


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeSessions, Probe]:
    sessions = FakeSessions()
    p = Probe(sessions)
    monkeypatch.setattr(collectors, "PRIMARY", p)
    monkeypatch.setattr(collectors, "REGION_COLLECTORS", ())
    monkeypatch.setattr(collectors, "ACCOUNT_COLLECTORS", ())
    return sessions, p


@pytest.mark.parametrize(("workers", "accounts", "peak_at_most", "per_account_at_most"), [
    pytest.param(1, 2, 1, 1, id="one-worker-is-sequential"),
    pytest.param(4, 1, 4, 4, id="one-account-up-to-max-workers"),
    pytest.param(16, 1, REGIONS_IN_FLIGHT_PER_ACCOUNT, REGIONS_IN_FLIGHT_PER_ACCOUNT, id="per-account-bound"),
    pytest.param(6, 5, 6, 6, id="overall-bound-across-accounts"),
])
def test_regions_run_concurrently_within_the_bounds(probe: tuple[FakeSessions, Probe], workers: int, accounts: int,
                                                   peak_at_most: int, per_account_at_most: int) -> None:
    sessions, p = probe
    members = tuple(Account(f"{i:012d}") for i in range(1, accounts + 1))
    plan = ScanPlan(Estate(None, CALLER, members), REGIONS, "Audit", None, workers)
    docs: list[dict[str, Any]] = []
    assert Scanner(sessions, plan).run(members, docs.append)  # type: ignore[arg-type]
    assert sorted(d["account_id"] for d in docs) == [a.id for a in members]
    for d in docs:
        assert [r["region"] for r in d["regions"]] == sorted(REGIONS)  # the order of a sequential scan
        assert d["scanned_regions"] == sorted(REGIONS)
    assert not p.wrong_binding
    assert p.peak <= peak_at_most and p.peak_per_account <= per_account_at_most
    if workers > 1:
        assert p.peak > 1, "regions were scanned one after another"


def test_once_reads_a_shared_fact_once_and_distinct_facts_in_parallel() -> None:
    """Eight regions ask for the account's ListBuckets at once: one read; two distinct keys do not wait."""
    actx = AccountContext("111111111111", "", lambda s, r: None, "r-00")
    reads: list[str] = []
    started = threading.Barrier(8)

    def slow(key: str) -> Any:
        reads.append(key)
        time.sleep(0.05)
        return {"key": key}

    def region(i: int) -> None:
        started.wait()
        assert actx.once(("s3", "ListBuckets"), lambda: slow("list"))["key"] == "list"
        actx.once(("s3", f"bucket-{i % 2}"), lambda: slow(f"bucket-{i % 2}"))

    threads = [threading.Thread(target=region, args=(i,)) for i in range(8)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(reads) == ["bucket-0", "bucket-1", "list"]
    assert time.monotonic() - t0 < 0.5  # the two bucket reads overlapped (and nobody read twice)
