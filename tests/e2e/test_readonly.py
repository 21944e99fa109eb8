"""Read-only proof: every operation a full scan calls is a read, and every action the collectors declare is one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from audit_bedrock import collectors, policy
from audit_bedrock.policy import iam_action
from audit_bedrock.standin.evidence import demo_answers
from audit_bedrock.standin.proxy import Proxy
from tests.conftest import cli_env, validate_findings
from tests.support import DEMO_SCAN_REGIONS, Estate, run_cli_inprocess, shared_demo_estate

# "Lookup" is deliberate and covers one operation, cloudtrail:LookupEvents (BIL-023): AWS classes it as a
# Read action (it searches the 90-day event history); the same verbs as audit_bedrock.policy.READ_ONLY_VERBS.
READ_VERB = re.compile(r"^(Get|List|Describe|Head|Lookup)[A-Z]")
# Reads the scanner must never make, though they are reads: a log's content (BIL-022 reads key names and
# stream metadata only). HeadObject needs s3:GetObject too.
CONTENT_READS = {("s3", "GetObject"), ("s3", "HeadObject"), ("s3", "GetObjectAttributes"),
                 ("s3", "SelectObjectContent"), ("logs", "GetLogEvents"), ("logs", "FilterLogEvents"),
                 ("logs", "StartQuery"), ("logs", "GetQueryResults"), ("logs", "StartLiveTail"),
                 ("logs", "GetLogRecord")}
# The only non-read operations a scan may make: entering accounts and asking who the caller is.
ALLOWED_OTHERS = {("sts", "AssumeRole"), ("sts", "GetCallerIdentity")}
# The one write audit-bedrock can ever make, and only when asked (--security-hub-import): importing its own findings
# into Security Hub, with securityhub:BatchImportFindings held by the importing role alone (never the audit role).
WRITE_WHEN_ASKED = {("securityhub", "BatchImportFindings")}
# Read by the caller during discovery, not inside member accounts: not part of the member-role policy.
CALLER_SERVICES = {"organizations", "sts", "ssm"}  # discovery and the region list


def is_read(service: str, operation: str) -> bool:
    return bool(READ_VERB.match(operation)) or (service, operation) in ALLOWED_OTHERS


@pytest.mark.parametrize(("service", "operation", "expected"), [
    pytest.param("s3", "GetBucketPolicy", True, id="get"),
    pytest.param("iam", "ListRoles", True, id="list"),
    pytest.param("ec2", "DescribeRegions", True, id="describe"),
    pytest.param("s3", "HeadBucket", True, id="head"),
    pytest.param("cloudtrail", "LookupEvents", True, id="lookup"),
    pytest.param("cloudtrail", "Lookupevents", False, id="lookup-not-a-verb"),
    pytest.param("sts", "AssumeRole", True, id="assume-role"),
    pytest.param("s3", "PutBucketPolicy", False, id="put"),
    pytest.param("bedrock", "PutModelInvocationLoggingConfiguration", False, id="put-logging"),
    pytest.param("bedrock", "DeleteModelInvocationLoggingConfiguration", False, id="delete"),
    pytest.param("iam", "CreateRole", False, id="create"),
    pytest.param("logs", "Getaway", False, id="not-a-verb"),
    pytest.param("sts", "AssumeRoleWithWebIdentity", False, id="other-sts"),
])
def test_read_classifier(service: str, operation: str, expected: bool) -> None:
    assert is_read(service, operation) is expected


@pytest.mark.parametrize("action", collectors.required_actions())
def test_declared_action_is_read_only(action: str) -> None:
    """Every IAM action a collector declares (the audit role's policy) is a Get/List/Describe/Head/Lookup."""
    service, _, name = action.partition(":")
    assert service and name, action
    assert READ_VERB.match(name), f"{action} is not a read-only action"


def test_no_declared_action_reads_log_content() -> None:
    """The audit role cannot read a log: no s3:GetObject, no logs:GetLogEvents/FilterLogEvents/StartQuery."""
    content_actions = {iam_action(s, op) for s, op in CONTENT_READS}
    assert not content_actions & set(collectors.required_actions())


HOOKED_DEMO = textwrap.dedent("""
    import json, sys
    from audit_bedrock.aws import clients
    from audit_bedrock.cli import main

    calls = []
    original = clients.Sessions.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.add_hook(lambda model, **_: calls.append([model.service_model.service_name, model.name,
                                                       model.http.get("method", "POST")]))

    clients.Sessions.__init__ = init
    try:
        rc = main(sys.argv[2:])
    finally:
        with open(sys.argv[1], "w") as fh:
            json.dump(calls, fh)
    raise SystemExit(rc)
""")


@pytest.mark.slow
def test_full_demo_scan_makes_only_reads(tmp_path: Path) -> None:
    """`audit-bedrock --demo` in its own process, every AWS call recorded by a before-call hook on every client."""
    script = tmp_path / "hooked.py"
    script.write_text(HOOKED_DEMO)
    record = tmp_path / "calls.json"
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(script), str(record), "--demo", "--output-dir", str(out), "-q"],
                          env=cli_env(None), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode in (1, 3), proc.stderr[-3000:]
    calls = [tuple(c) for c in json.loads(record.read_text())]
    doc = json.loads((out / "findings.json").read_text())
    validate_findings(doc)
    assert len(calls) == doc["scan"]["api_calls"] > 0
    writes = sorted({(s, op) for s, op, _ in calls if not is_read(s, op)})
    assert not writes, f"the scan made non-read calls: {writes}"
    assert not {s for s, _, _ in calls} & {"securityhub"}, "Security Hub was called without --security-hub-import"
    ops = {(s, op) for s, op, _ in calls}
    assert not ops & CONTENT_READS, f"the scan read log content: {sorted(ops & CONTENT_READS)}"
    assert ("sts", "AssumeRole") in ops and ("bedrock", "GetModelInvocationLoggingConfiguration") in ops
    # Every member-account call is covered by an action the collectors declare (the audit role's policy).
    declared = set(collectors.required_actions())
    undeclared = sorted({iam_action(s, op) for s, op, _ in calls if s not in CALLER_SERVICES} - declared - {None})
    assert not undeclared, f"called but not declared in any collector's actions: {undeclared}"


@pytest.fixture(scope="module")
def estate(request: pytest.FixtureRequest) -> Estate:
    return shared_demo_estate(request.config)


@pytest.mark.slow
def test_wire_shows_only_reads(estate: Estate, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Independent of the scanner's own hooks: what reached the network, seen by the proxy, is only reads."""
    # One proxy in front of moto (not a chain through the estate's own): it answers LookupEvents itself.
    with Proxy(estate.upstream, answers=demo_answers(estate.ids)) as proxy:
        run = run_cli_inprocess(monkeypatch, proxy.url, ["--org", "--regions", ",".join(DEMO_SCAN_REGIONS),
                                                         "--format", "json", "-q", "-q"], tmp_path / "out")
        seen = proxy.seen()
    assert run.doc is not None and run.rc in (1, 3)
    assert {s.outcome for s in seen} == {"forwarded", "answered"}
    assert {s.operation for s in seen if s.outcome == "answered"} == {"LookupEvents"}  # never sent to moto
    unknown = [s for s in seen if s.operation == "?"]
    assert not unknown, f"requests the proxy could not name: {unknown[:5]}"
    writes = sorted({(s.service, s.operation) for s in seen if not is_read(s.service, s.operation)})
    assert not writes, f"non-read calls on the wire: {writes}"
    content = sorted({(s.service, s.operation) for s in seen} & CONTENT_READS)
    assert not content, f"log content read on the wire: {content}"
    # The evidence reads did happen, as key names and stream metadata only (BIL-022, BIL-023).
    assert {("s3", "ListObjectsV2"), ("logs", "DescribeLogStreams"), ("cloudtrail", "LookupEvents")} <= {
        (s.service, s.operation) for s in seen}
    rest_writes = sorted({(s.service, s.operation, s.method) for s in seen
                          if s.protocol.startswith("rest") and s.method not in ("GET", "HEAD")})
    assert not rest_writes, f"REST calls with a writing method: {rest_writes}"
    # Every attempt reached the wire once: the scanner's own count matches the proxy's (no retries here).
    assert len(seen) == run.doc["scan"]["api_calls"]


@pytest.mark.slow
def test_the_only_write_is_the_security_hub_import_when_asked(tmp_path: Path) -> None:
    """With --security-hub-import the scan still reads only; the import adds BatchImportFindings and nothing else."""
    script = tmp_path / "hooked.py"
    script.write_text(HOOKED_DEMO)
    record = tmp_path / "calls.json"
    proc = subprocess.run([sys.executable, str(script), str(record), "--demo", "--output-dir", str(tmp_path / "out"),
                           "-q", "--format", "json", "--security-hub-import",
                           "--security-hub-role-name", "OrganizationAccountAccessRole"],
                          env=cli_env(None), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode in (1, 3), proc.stderr[-3000:]
    calls = [tuple(c) for c in json.loads(record.read_text())]
    writes = {(s, op) for s, op, _ in calls if not is_read(s, op)}
    assert writes == WRITE_WHEN_ASKED
    # the import is the last thing the run does: every scan call comes before the first import
    first = next(i for i, (s, op, _) in enumerate(calls) if (s, op) in WRITE_WHEN_ASKED)
    assert all((s, op) in WRITE_WHEN_ASKED or s in ("sts",) for s, op, _ in calls[first:])
    assert {iam_action(s, op) for s, op in WRITE_WHEN_ASKED} == set(policy.WRITE_ACTIONS)
    assert policy.IMPORT_ACTION not in collectors.required_actions()  # never in the audit role
