"""The benchmark harness stays runnable (a tiny run, no timing assertions), and the scanner's cost invariants hold."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from audit_bedrock.standin import estate as builders
from tests.conftest import FAKE_ENV, ROOT

CALLER = {"aws_access_key_id": FAKE_ENV["AWS_ACCESS_KEY_ID"],
          "aws_secret_access_key": FAKE_ENV["AWS_SECRET_ACCESS_KEY"]}


def run_calls(size: dict[str, Any]) -> int:
    calls: int = size["runs"][0]["wire_calls"]
    return calls


@pytest.mark.slow
def test_benchmark_smoke_run(tmp_path: Path) -> None:
    """bench/run.py end to end: moto subprocess, seeding, latency proxy (0 ms), one scan with the 3 seeded
    regions and one with the 17 enabled by default; the JSON is sane."""
    accounts = 5
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--accounts", str(accounts), "--latency-ms", "0",
         "--repeat", "1", "--regions", "3", "17", "--no-startup", "--results-dir", str(tmp_path),
         "--seed-workers", "2"],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [result_file] = tmp_path.glob("*.json")
    result = json.loads(result_file.read_text())
    assert (tmp_path / result_file.name.replace(".json", ".md")).read_text().startswith("audit-bedrock benchmark")
    assert result["config"]["latency_ms"] == 0 and result["machine"]["cpus"] >= 1
    size, wide = result["sizes"]
    assert size["accounts"] == accounts and size["regions"] == 3
    assert wide["accounts"] == accounts and wide["regions"] == 17
    [wide_run] = wide["runs"]
    assert wide_run["account_regions_scanned"] == 17 * accounts and wide_run["repeated_requests"] == 0
    assert wide_run["wire_calls"] == wide_run["scanner_api_calls"] > run_calls(size)
    assert wide_run["longest_account_chain"] < wide_run["calls_per_account_max"]  # regions overlap in the bound
    assert sum(size["profiles"].values()) == accounts
    [run] = size["runs"]
    assert run["exit_code"] in (0, 3)
    assert run["accounts_scanned"] == accounts
    assert run["account_regions_scanned"] == 3 * accounts
    assert run["wall_s"] > 0 and 10 < run["peak_rss_mb"] < 2000 and run["cpu_s"] > 0
    # The proxy saw every call the scanner counted, attributed each to an account, and none twice.
    assert run["wire_calls"] == run["scanner_api_calls"] > accounts
    assert run["unattributed_calls"] == 0
    assert run["repeated_requests"] == 0, run["repeated_examples"]
    assert run["calls_per_account_max"] >= run["calls_per_account_median"] > 0
    assert run["calls_per_account_region_max"] >= run["calls_per_account_region"] > 0
    assert run["by_operation"]["sts:AssumeRole"] == accounts - 1  # the caller's own account is not assumed
    assert run["discovery_calls"] >= 2 and run["lower_bound_s"] == 0 and run["ratio"] is None
    median = size["median"]
    assert median["wall_s"] == run["wall_s"] and median["repeated_requests"] == 0


@pytest.mark.slow
def test_workers_reuse_clients_and_sign_as_each_account(moto_subprocess: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """One worker scans several accounts in turn: it builds each (service, region) client once, and every
    account still reads its own data (the clients re-sign with that account's credentials)."""
    from audit_bedrock import collectors
    from audit_bedrock.aws.clients import Sessions
    from audit_bedrock.config import Config
    from audit_bedrock.discovery import discover_accounts
    from audit_bedrock.engine import Evaluator, load_rules
    from audit_bedrock.findings import FindingBuilder
    from audit_bedrock.scan import Accumulator, Scanner, ScanPlan

    for k, v in FAKE_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_subprocess)
    mgmt = builders.AccountClients(moto_subprocess, CALLER)
    org = builders.organization(mgmt)
    members = [org.add_account(f"m{i}") for i in range(4)]
    for i, acct in enumerate(members):  # a distinct, recognisable configuration per account
        builders.put_logging(builders.assume(mgmt, acct, "seed"), "us-east-1", {
            **builders.s3_config(f"logs-of-{acct}"), "textDataDeliveryEnabled": True,
            "imageDataDeliveryEnabled": i % 2 == 0})

    built: list[tuple[str, str, int]] = []
    original = botocore.session.Session.create_client

    def counting(self: Any, service_name: str, region_name: str | None = None, *a: Any, **kw: Any) -> Any:
        built.append((service_name, str(region_name), threading.get_ident()))
        return original(self, service_name, region_name, *a, **kw)

    monkeypatch.setattr(botocore.session.Session, "create_client", counting)
    sessions = Sessions(declared_actions=collectors.required_actions())
    estate = discover_accounts(sessions.client("organizations", "us-east-1", sessions.caller_credentials(), "c"),
                               sessions.client("sts", "us-east-1", sessions.caller_credentials(), "c"),
                               use_org=True, accounts=members)
    plan = ScanPlan(estate, ("us-east-1",), "OrganizationAccountAccessRole", None, max_workers=1)
    acc = Accumulator(Evaluator(load_rules(), Config().rule_params()), FindingBuilder(Config()), keep_facts=True)
    built.clear()
    assert Scanner(sessions, plan).run(estate.accounts, acc.add)

    docs = {d["account_id"]: d for d in acc.facts}
    assert set(docs) == set(members)
    for i, acct in enumerate(members):
        logging_fact = docs[acct]["regions"][0]["logging"]
        assert logging_fact["s3"]["bucket"] == f"logs-of-{acct}", "an account read another account's data"
        assert logging_fact["data_types"]["image"] is (i % 2 == 0)
    assert built and len(built) == len(set(built)), f"a worker built a client twice: {sorted(built)}"
    assert sessions.calls.duplicates == 0


@pytest.mark.parametrize(("doc", "options"), [
    pytest.param({"a": [1, 2.5, None, True], "b": {"c": "d"}}, {"indent": 2}, id="json-report"),
    pytest.param({"msg": "caf\u00e9 \u2014 \U0001f600 <b>"}, {"indent": 1, "ensure_ascii": False}, id="sarif-unicode"),
    pytest.param([{"k": i, "v": "x" * i} for i in range(5000)], {"indent": 2}, id="many-chunks"),
    pytest.param({}, {"indent": 2}, id="empty"),
])
def test_streamed_encoding_is_byte_identical(doc: Any, options: dict[str, Any]) -> None:
    """The reports are encoded piece by piece to save memory; the bytes are json.dumps' exactly."""
    from audit_bedrock.reports.json_report import encode, stream_utf8

    assert encode(doc, **options) == (json.dumps(doc, **options) + "\n").encode()
    pieces = ["\u00e9", "a" * 10, "\U0001f600"] * 3000
    assert stream_utf8(iter(pieces), "!") == ("".join(pieces) + "!").encode()


def test_spawn_reports_the_commands_own_peak_rss(tmp_path: Path) -> None:
    """bench/spawn.py: a command run through it reports its own peak RSS, not that of the (large) process that
    started it. Linux's getrusage(2) and wait4(2) count ru_maxrss across exec, and subprocess starts children with
    vfork, so a child of a 300 MB parent reported >= 300 MB; forked from the small launcher it starts from zero."""
    ballast = bytearray(256 * 1024 * 1024)
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # touched: resident
    out = tmp_path / "usage.json"
    proc = subprocess.run([sys.executable, "-S", str(ROOT / "bench" / "spawn.py"), str(out),
                           sys.executable, "-S", "-c", "import sys; sys.exit(3)"], check=False, timeout=60)
    del ballast
    assert proc.returncode == 0
    usage = json.loads(out.read_text())
    assert usage["exit_code"] == 3  # the command's own exit code
    assert 0 < usage["maxrss_kb"] < 100 * 1024  # a bare interpreter, nowhere near the 256 MB of its grandparent
    assert usage["cpu_s"] >= 0
