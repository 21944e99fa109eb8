"""Ctrl-C: the CLI as a real process against a slowed proxy; SIGINT mid-scan writes what was scanned, exit 130."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from audit_bedrock.standin.proxy import Proxy, Rule, Seen, match
from tests.conftest import cli_env, validate_findings
from tests.support import DEMO_SCAN_REGIONS, Estate, shared_demo_estate

pytestmark = pytest.mark.slow

CALLER_SERVICES = {"organizations", "sts", "ssm"}  # discovery and the region list


@pytest.fixture(scope="module")
def estate(request: pytest.FixtureRequest) -> Estate:
    return shared_demo_estate(request.config)


def start(proxy: Proxy, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "audit_bedrock", "--org", "--regions", ",".join(DEMO_SCAN_REGIONS), "--format",
         "json", "--output-dir", str(out), "--max-workers", "1", *extra],
        env=cli_env(proxy.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(proc: subprocess.Popen[str], proxy: Proxy, done: Callable[[list[Seen]], bool],
               timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not done(proxy.seen()):
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the scan ended (exit {proc.returncode}) before the moment to interrupt it:\n{err[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("timed out waiting for the moment to interrupt")
        time.sleep(0.05)


def member_accounts(seen: list[Seen]) -> list[str]:
    """Accounts in the order their first in-account call reached the wire (caller account as 'caller')."""
    order: list[str] = []
    for s in seen:
        if s.service in CALLER_SERVICES:
            continue
        acct = s.account or "caller"
        if acct not in order:
            order.append(acct)
    return order


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the scan did not stop after SIGINT:\n{err[-2000:]}")
    return proc.returncode, out, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_ctrl_c_after_first_account_writes_what_was_scanned(estate: Estate, tmp_path: Path,
                                                            sig: signal.Signals) -> None:
    """SIGINT, and SIGTERM as Lambda, containers and CI runners send it (issue 12): what was scanned is
    written, marked interrupted."""
    out = tmp_path / "out"
    with Proxy(estate.endpoint) as proxy:
        proxy.add(Rule(match(), "delay", seconds=0.05))
        proc = start(proxy, out)
        # One worker scans one account at a time: a second account on the wire means the first is done.
        wait_until(proc, proxy, lambda seen: len(member_accounts(seen)) >= 2)
        first = member_accounts(proxy.seen())[0]
        proc.send_signal(sig)
        rc, stdout, stderr = finish(proc)
    assert rc == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    doc = json.loads((out / "findings.json").read_text())
    validate_findings(doc)
    scan = doc["scan"]
    assert scan["interrupted"] is True and scan["complete"] is False
    status = {a["id"]: a for a in scan["accounts"]}
    first_id = estate.ids["management"] if first == "caller" else first
    assert status[first_id]["status"] == "scanned"
    assert len(status) == len(estate.ids)  # every account is listed, scanned or not
    not_scanned = [a for a in scan["accounts"] if a["status"] != "scanned" and "SUSPENDED" not in a["reason"]]
    assert not_scanned, "the interrupt came too late to leave anything unscanned"
    for a in not_scanned:
        assert a["status"] == "interrupted" and "interrupted" in a["reason"], a
    scanned = {a["id"] for a in scan["accounts"] if a["status"] == "scanned"}
    cells = [c for c in doc["coverage"] if c["account_id"] in scanned and c["status"] == "scanned"]
    assert cells, "the scanned account has no coverage"
    # nothing judged for what was not read; an account caught mid-scan reports its unevaluated rules as gaps
    partly = {a["id"] for a in scan["accounts"] if a["status"] == "interrupted"
              and any(c["account_id"] == a["id"] and c["status"] == "scanned" for c in doc["coverage"])}
    assert {f["account_id"] for f in doc["findings"]} <= scanned | partly
    assert "interrupted" in stdout


def test_ctrl_c_during_discovery_exits_130_quietly(estate: Estate, tmp_path: Path) -> None:
    """Interrupted before any account was scanned: exit 130, a one-line note, no traceback, no reports."""
    out = tmp_path / "out"
    with Proxy(estate.endpoint) as proxy:
        proxy.add(Rule(match(service="organizations"), "delay", seconds=30))
        proc = start(proxy, out)
        wait_until(proc, proxy, lambda seen: any(s.service == "sts" for s in seen))
        time.sleep(0.5)  # now inside the (stalled) Organizations calls
        proc.send_signal(signal.SIGINT)
        rc, _, stderr = finish(proc)
    assert rc == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "interrupted" in stderr
    assert not out.exists()


def test_second_ctrl_c_stops_at_once(estate: Estate, tmp_path: Path) -> None:
    """A second SIGINT while the accounts in flight are winding down: still exit 130 without a traceback."""
    out = tmp_path / "out"
    with Proxy(estate.endpoint) as proxy:
        proxy.add(Rule(match(), "delay", seconds=0.3))
        proc = start(proxy, out)
        wait_until(proc, proxy, lambda seen: len(member_accounts(seen)) >= 1)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        rc, _, stderr = finish(proc)
    assert rc == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]


@pytest.mark.parametrize("workers", [1, 4])
def test_ctrl_c_while_recording_an_account_loses_none_of_it(workers: int) -> None:
    """SIGINT arriving while the main thread records a finished account (rule evaluation, coverage): that
    account is recorded whole, once, and every other account is accounted for."""
    import os

    from audit_bedrock.discovery import Estate as Discovered
    from audit_bedrock.model import Account
    from audit_bedrock.scan import Scanner, ScanPlan

    accounts = tuple(Account(f"{i:012d}", f"acct-{i}") for i in range(1, 7))

    class Offline(Scanner):
        def scan_account(self, acct: Account) -> dict[str, Any]:
            time.sleep(0.05)
            return {"account_id": acct.id, "account_name": acct.name, "status": "scanned", "reason": "",
                    "regions": []}

    plan = ScanPlan(Discovered(None, "000000000000", accounts), ("us-east-1",), "Role", None, workers)
    recorded: list[tuple[str, str]] = []

    def on_done(doc: dict[str, Any]) -> None:
        recorded.append((doc["account_id"], "begin"))
        if len(recorded) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C lands halfway through recording the first account
            time.sleep(0.05)
        recorded.append((doc["account_id"], "end"))

    complete = Offline(None, plan).run(accounts, on_done)  # type: ignore[arg-type]
    assert complete is False
    ids = [a for a, step in recorded if step == "begin"]
    assert sorted(ids) == sorted(a.id for a in accounts) and len(ids) == len(set(ids)), recorded
    assert [step for _, step in recorded] == ["begin", "end"] * len(accounts), recorded


def test_sigint_inherited_as_ignored_stays_ignored(estate: Estate, tmp_path: Path) -> None:
    """issue 12: a background job (SIGINT inherited as ignored) is not stopped by SIGINT: it scans everything."""
    out = tmp_path / "out"
    with Proxy(estate.endpoint) as proxy:
        proxy.add(Rule(match(), "delay", seconds=0.02))
        proc = subprocess.Popen(
            [sys.executable, "-m", "audit_bedrock", "--org", "--regions", ",".join(DEMO_SCAN_REGIONS), "--format",
             "json", "--output-dir", str(out), "--max-workers", "1", "--fail-on", "none"],
            env=cli_env(proxy.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        wait_until(proc, proxy, lambda seen: len(member_accounts(seen)) >= 2)
        proc.send_signal(signal.SIGINT)
        rc, _, stderr = finish(proc)
    assert rc in (0, 3), stderr[-3000:]
    doc = json.loads((out / "findings.json").read_text())
    assert doc["scan"]["interrupted"] is False
    assert not [a for a in doc["scan"]["accounts"] if a["status"] == "interrupted"]
