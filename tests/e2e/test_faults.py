"""Fault injection: throttling, denied accounts, denied reads, dead regions and odd API shapes, through a proxy."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import botocore.exceptions
import botocore.retries.standard
import pytest

from audit_bedrock import collectors
from audit_bedrock.aws.errors import DENIED_CODES
from audit_bedrock.engine import load_rules
from audit_bedrock.standin.proxy import Proxy, Rule, Seen, match
from tests.conftest import DROP_ENV, FAKE_ENV, validate_facts, validate_findings
from tests.support import DEMO_SCAN_REGIONS, CliRun, Estate, fast_retries, run_cli_inprocess, shared_demo_estate, stable

pytestmark = pytest.mark.slow

REGIONS = ",".join(DEMO_SCAN_REGIONS)
SCAN_ARGS = ["--org", "--regions", REGIONS, "--format", "json", "-q", "-q"]
PRIMARY_ACTION = collectors.PRIMARY.actions[0]
RULE_IDS = {r.id for r in load_rules()}
GLOBAL_SERVICES = {"iam", "sts", "organizations"}
# Read once per account in the home region, for the buckets of every region.
ACCOUNT_LEVEL_ACTIONS = {"s3:ListAllMyBuckets", "s3:GetAccountPublicAccessBlock"}


@pytest.fixture(scope="module")
def estate(request: pytest.FixtureRequest) -> Estate:
    """The demo organization on one moto server shared by this process's tests (scans only read it)."""
    return shared_demo_estate(request.config)


@pytest.fixture(scope="module")
def clean(estate: Estate, tmp_path_factory: pytest.TempPathFactory) -> tuple[CliRun, list[Seen]]:
    """A fault-free scan through the proxy: the reference every faulty run is compared with."""
    with pytest.MonkeyPatch.context() as mp:
        for k in DROP_ENV:
            mp.delenv(k, raising=False)
        for k, v in FAKE_ENV.items():
            mp.setenv(k, v)
        with Proxy(estate.endpoint) as proxy:
            run = run_cli_inprocess(mp, proxy.url, [*SCAN_ARGS, "--fail-on", "none"],
                                    tmp_path_factory.mktemp("clean"))
            seen = proxy.seen()
    # Exit 3, not 0, when the demo itself shows a SCAN-00x (it seeds a key policy that locks the reader out).
    assert run.doc is not None and run.rc in (0, 3), run.stdout
    validate_findings(run.doc)
    return run, seen


def scan(mp: pytest.MonkeyPatch, proxy: Proxy, tmp: Path, *extra: str) -> CliRun:
    run = run_cli_inprocess(mp, proxy.url, [*SCAN_ARGS, *extra], tmp / "out")
    assert run.doc is not None, f"no findings.json (exit {run.rc})"
    validate_findings(run.doc)
    return run


def ids(findings: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Finding ids and rules in order (messages may name the regions scanned, which these tests narrow)."""
    return [(f["id"], f["rule_id"]) for f in findings]


def account_of(seen: Seen, estate: Estate) -> str:
    return seen.account or estate.ids["management"]


# --- the proxy's error shapes are what botocore expects -------------------------------------------

PROTOCOL_CALLS = [
    pytest.param("sts", "get_caller_identity", {}, id="query-sts"),
    pytest.param("iam", "list_roles", {}, id="query-iam"),
    pytest.param("ec2", "describe_regions", {}, id="ec2"),
    pytest.param("logs", "describe_log_groups", {}, id="json-logs"),
    pytest.param("organizations", "list_roots", {}, id="json-organizations"),
    pytest.param("kms", "list_keys", {}, id="json-kms"),
    pytest.param("cloudwatch", "list_metrics", {}, id="cloudwatch"),
    pytest.param("bedrock", "get_model_invocation_logging_configuration", {}, id="rest-json-bedrock"),
    pytest.param("s3", "list_buckets", {}, id="rest-xml-s3"),
]


@pytest.mark.parametrize(("service", "operation", "kwargs"), PROTOCOL_CALLS)
def test_throttle_shape_is_retried_as_throttling(estate: Estate, monkeypatch: pytest.MonkeyPatch,
                                                 service: str, operation: str, kwargs: dict[str, Any]) -> None:
    """Each protocol's throttling reply is classified as throttling by botocore and retried to success."""
    from audit_bedrock.aws.clients import Sessions

    fast_retries(monkeypatch)
    detector = botocore.retries.standard.ThrottlingErrorDetector(botocore.retries.standard.RetryEventAdapter())
    verdicts: list[bool] = []

    with Proxy(estate.endpoint) as proxy:
        proxy.add(Rule(match(), "throttle", fraction=1.0, max_consecutive=3))
        sessions = Sessions(endpoint_url=proxy.url)
        client = sessions.client(service, "us-east-1", sessions.caller_credentials(), "caller")

        def judge(response: Any = None, **kw: Any) -> None:
            if response is not None and response[0].status_code >= 300:
                verdicts.append(detector.is_throttling_error(response=response, **kw))

        client.meta.events.register("needs-retry", judge, unique_id="judge-throttle")
        resp = getattr(client, operation)(**kwargs)
    assert resp["ResponseMetadata"]["RetryAttempts"] == 3
    assert verdicts == [True, True, True]
    assert [s.outcome for s in proxy.seen()] == ["throttled"] * 3 + ["forwarded"]


@pytest.mark.parametrize(("service", "operation", "kwargs"), PROTOCOL_CALLS)
def test_deny_shape_is_an_access_denied_code(estate: Estate, monkeypatch: pytest.MonkeyPatch,
                                             service: str, operation: str, kwargs: dict[str, Any]) -> None:
    """Each protocol's denial surfaces as a ClientError whose code the collectors treat as denied."""
    from audit_bedrock.aws.clients import Sessions

    with Proxy(estate.endpoint) as proxy:
        proxy.add(Rule(match(), "deny"))
        sessions = Sessions(endpoint_url=proxy.url)
        client = sessions.client(service, "us-east-1", sessions.caller_credentials(), "caller")
        with pytest.raises(botocore.exceptions.ClientError) as info:
            getattr(client, operation)(**kwargs)
    assert info.value.response["Error"]["Code"] in DENIED_CODES
    assert info.value.response["ResponseMetadata"].get("RetryAttempts", 0) == 0  # a denial is not retried


# --- throttling -----------------------------------------------------------------------------------

def test_throttling_changes_no_finding(estate: Estate, clean: tuple[CliRun, list[Seen]],
                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """18% of attempts to every service throttled: exactly the clean run's findings, in the same order."""
    from audit_bedrock.aws.clients import MAX_ATTEMPTS

    assert MAX_ATTEMPTS >= 8
    fast_retries(monkeypatch)
    first_of: set[str] = set()

    def first_call_of_each_service(req: Any) -> bool:  # so that every service is throttled at least once
        if req.service in first_of:
            return False
        first_of.add(req.service)
        return True

    with Proxy(estate.endpoint) as proxy:
        first = proxy.add(Rule(first_call_of_each_service, "throttle", fraction=1.0, max_consecutive=1))
        rule = proxy.add(Rule(match(), "throttle", fraction=0.18, seed=7, max_consecutive=MAX_ATTEMPTS - 1))
        run = scan(monkeypatch, proxy, tmp_path, "--fail-on", "none")
        seen = proxy.seen()
    ref = clean[0]
    assert run.rc == ref.rc
    assert run.doc is not None and ref.doc is not None
    assert [f["id"] for f in run.findings()] == [f["id"] for f in ref.findings()]
    assert stable(run.doc) == stable(ref.doc)  # every field, api_calls included (retries are not calls)
    throttled = [s for s in seen if s.outcome == "throttled"]
    assert rule.hits + first.hits == len(throttled)
    assert 0.12 <= len(throttled) / len(seen) <= 0.30, f"{len(throttled)} of {len(seen)} attempts throttled"
    assert {s.service for s in throttled} == {s.service for s in seen} == first_of


# --- AssumeRole denied for one account ------------------------------------------------------------

@pytest.mark.parametrize("victim", ["data-science", "payments-prod"])
def test_assume_role_denied_gives_scan001_only(estate: Estate, clean: tuple[CliRun, list[Seen]],
                                               monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                               victim: str) -> None:
    """SCAN-001 and nothing else for the denied account, exit 3, every other account unchanged.

    --fail-on none: the other demo accounts have high findings by design, which would make the
    exit code 1; the compliant-estate test below shows exit 3 with the default --fail-on.
    """
    fast_retries(monkeypatch)
    victim_id = estate.ids[victim]
    with Proxy(estate.endpoint) as proxy:
        proxy.add(Rule(match(assume_role_into=victim_id), "deny"))
        run = scan(monkeypatch, proxy, tmp_path, "--fail-on", "none")
        denied = proxy.seen("denied")
    assert denied and {s.operation for s in denied} == {"AssumeRole"}
    assert run.rc == 3
    mine = run.findings(victim_id)
    assert [f["rule_id"] for f in mine] == ["SCAN-001"]
    assert "AccessDenied" in mine[0]["message"] and mine[0]["region"] is None
    assert run.doc is not None
    outcome = next(a for a in run.doc["scan"]["accounts"] if a["id"] == victim_id)
    assert outcome["status"] == "error" and "AssumeRole" in outcome["reason"]
    cells = [c for c in run.doc["coverage"] if c["account_id"] == victim_id]
    assert cells and {c["status"] for c in cells} == {"error"}
    assert run.doc["scan"]["complete"] is False
    others = [f for f in run.findings() if f["account_id"] != victim_id]
    assert others == [f for f in clean[0].findings() if f["account_id"] != victim_id]
    assert [c for c in run.doc["coverage"] if c["account_id"] != victim_id] == \
        [c for c in clean[0].doc["coverage"] if c["account_id"] != victim_id]  # type: ignore[index]


def test_assume_role_denied_on_compliant_estate_exits_3(estate: Estate, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    """With the default --fail-on high and only the compliant account beside the denied one: exit 3."""
    fast_retries(monkeypatch)
    victim_id = estate.ids["sandbox"]
    with Proxy(estate.endpoint) as proxy:
        proxy.add(Rule(match(assume_role_into=victim_id), "deny"))
        run = scan(monkeypatch, proxy, tmp_path, "--accounts", f"{estate.ids['security-tooling']},{victim_id}")
    assert [(f["account_id"], f["rule_id"]) for f in run.findings()] == [(victim_id, "SCAN-001")]
    assert run.rc == 3


# --- AccessDenied on every action the collectors declare ------------------------------------------

def _declared_actions() -> list[Any]:
    params = []
    for action in collectors.required_actions():
        params.append(pytest.param(action, id=action))
    return params


@pytest.mark.parametrize("action", _declared_actions())
def test_access_denied_is_never_a_pass(estate: Estate, clean: tuple[CliRun, list[Seen]],
                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path, action: str) -> None:
    """Denying one declared action: each blocked rule becomes SCAN-003 (or SCAN-002 for the Bedrock read)."""
    fast_retries(monkeypatch)
    # Only the accounts and regions whose clean scan used the action: a whole-estate scan per action is slow.
    used = [s for s in clean[1] if s.action == action]
    assert used, f"the demo estate never calls {action}: the declaration or the demo is wrong"
    callers = sorted({account_of(s, estate) for s in used})
    regions = sorted({s.region for s in used} & set(DEMO_SCAN_REGIONS))
    if (action.split(":")[0] in GLOBAL_SERVICES or action in collectors.DISCOVERY_ACTIONS
            or action in ACCOUNT_LEVEL_ACTIONS):
        # IAM is read once per account for every region; without DescribeRegions every requested region
        # is tried, so leave out the one the demo has not enabled.
        regions = [r for r in DEMO_SCAN_REGIONS if r != "me-south-1"]
    with Proxy(estate.endpoint) as proxy:
        proxy.add(Rule(match(action=action), "deny"))
        run = scan(monkeypatch, proxy, tmp_path, "--fail-on", "none", "--regions", ",".join(regions),
                   "--accounts", ",".join(callers))
        denied = proxy.seen("denied")
    assert denied, f"{action} was not called in {callers} this time"
    assert run.doc is not None
    ref = CliRun(clean[0].rc, "", {**clean[0].doc, "findings": [  # type: ignore[dict-item]
        f for f in clean[0].findings() if f["account_id"] in callers and f["region"] in (*regions, None)]}, tmp_path)
    hit = {(account_of(s, estate), s.region) for s in denied}

    if action in collectors.DISCOVERY_ACTIONS:
        assert ids(run.findings()) == ids(ref.findings())
        assert run.rc == (3 if any(f["rule_id"].startswith("SCAN-") for f in ref.findings()) else 0)
        return

    assert run.rc == 3
    if action == PRIMARY_ACTION:
        for acct, region in hit:
            mine = [f for f in run.findings(acct) if f["region"] == region]
            assert [f["rule_id"] for f in mine] == ["SCAN-002"], (acct, region, mine)
            assert action in mine[0]["message"]
            cell = next(c for c in run.doc["coverage"] if c["account_id"] == acct and c["region"] == region)
            assert cell["status"] == "error"
        return

    gaps = [f for f in run.findings() if f["rule_id"] == "SCAN-003"
            and action in f["properties"]["missing_permissions"]]
    for f in gaps:
        blocked = f["properties"]["blocked_rule"]
        assert blocked in RULE_IDS and blocked != "SCAN-003"
        assert blocked in f["message"] and action in f["message"]
    if not gaps:
        # The denied fact decided no verdict in this estate (e.g. a public access block behind a bucket
        # policy that grants nothing publicly): then nothing at all may change.
        assert ids(run.findings()) == ids(ref.findings()), \
            f"{action} was denied, results changed, and no SCAN-003 names it"
    # Never a pass: every finding the clean run had is still there, or its rule is reported as blocked.
    blocked_at = {(f["account_id"], f["region"], f["properties"]["blocked_rule"]) for f in run.findings()
                  if f["rule_id"] == "SCAN-003"}
    now = {f["id"] for f in run.findings()}
    for f in ref.findings():
        if f["id"] in now:
            continue
        rule = f["properties"]["blocked_rule"] if f["rule_id"] == "SCAN-003" else f["rule_id"]
        assert (f["account_id"], f["region"], rule) in blocked_at, \
            f"{f['rule_id']} ({rule}) for {f['account_id']}/{f['region']} vanished when {action} was denied"


# --- a region that cannot be reached --------------------------------------------------------------

@pytest.mark.parametrize("fault", ["drop", "stall"])
def test_unreachable_region_gives_scan002(estate: Estate, clean: tuple[CliRun, list[Seen]],
                                          monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fault: str) -> None:
    """Connections to us-west-2 dropped, or stalled past the read timeout: SCAN-002 there, the rest unchanged."""
    dead = "us-west-2"
    # A generous timeout: under load a healthy call must not time out; each stalled attempt costs it.
    fast_retries(monkeypatch, read_timeout=1.0 if fault == "stall" else None)
    with Proxy(estate.endpoint) as proxy:
        proxy.add(Rule(match(region=dead), fault, seconds=3.0))
        run = scan(monkeypatch, proxy, tmp_path, "--fail-on", "none")
        broken = proxy.seen("dropped" if fault == "drop" else "stalled")
    assert broken and {s.region for s in broken} == {dead}
    assert run.rc == 3 and run.doc is not None
    scanned = [a["id"] for a in run.doc["scan"]["accounts"] if a["status"] == "scanned"]
    assert len(scanned) >= 6
    for acct in scanned:
        mine = [f for f in run.findings(acct) if f["region"] == dead]
        assert [f["rule_id"] for f in mine] == ["SCAN-002"], (acct, mine)
        cell = next(c for c in run.doc["coverage"] if c["account_id"] == acct and c["region"] == dead)
        assert cell["status"] == "error"
    ref = clean[0]
    assert [f for f in run.findings() if f["region"] not in (dead, None)] == \
        [f for f in ref.findings() if f["region"] not in (dead, None)]
    assert [c for c in run.doc["coverage"] if c["region"] != dead] == \
        [c for c in ref.doc["coverage"] if c["region"] != dead]  # type: ignore[index]


# --- unexpected API shapes ------------------------------------------------------------------------

def _walk(value: Any, leaf: Any) -> Any:
    if isinstance(value, dict):
        return {k: (v if k == "ResponseMetadata" else _walk(v, leaf)) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, leaf) for v in value]
    return leaf(value)


def _drop_keys(parsed: dict[str, Any], model: Any) -> None:
    for k in [k for k in parsed if k != "ResponseMetadata"]:
        del parsed[k]


def _null_top(parsed: dict[str, Any], model: Any) -> None:
    for k in [k for k in parsed if k != "ResponseMetadata"]:
        parsed[k] = None


def _null_leaves(parsed: dict[str, Any], model: Any) -> None:
    new = _walk(parsed, lambda v: None)
    parsed.update(new)


def _empty_containers(parsed: dict[str, Any], model: Any) -> None:
    for k in [k for k in parsed if k != "ResponseMetadata"]:
        if isinstance(parsed[k], list):
            parsed[k] = []
        elif isinstance(parsed[k], dict):
            parsed[k] = {}


_INPUT_SHAPES: dict[str, frozenset[str]] = {}


def _input_shapes(service_model: Any) -> frozenset[str]:
    """Names of every shape reachable from any operation's input: a new member there would be sent back."""
    name = service_model.service_name
    if name not in _INPUT_SHAPES:
        seen: set[str] = set()

        def visit(shape: Any) -> None:
            if shape is None or shape.name in seen:
                return
            seen.add(shape.name)
            for member in getattr(shape, "members", {}).values():
                visit(member)
            for attr in ("member", "key", "value"):
                visit(getattr(shape, attr, None))

        for op in service_model.operation_names:
            visit(service_model.operation_model(op).input_shape)
        _INPUT_SHAPES[name] = frozenset(seen)
    return _INPUT_SHAPES[name]


def _add_fields(parsed: dict[str, Any], model: Any) -> None:
    """A member that a newer service model might add: to every output-only structure in the response."""
    inputs = _input_shapes(model.service_model)

    def add(value: Any, shape: Any) -> None:
        if shape is None:
            return
        if shape.type_name == "structure" and isinstance(value, dict):
            for name, member in shape.members.items():
                if name in value:
                    add(value[name], member)
            if shape.name not in inputs:
                value["UnexpectedNewField"] = {"nested": [1, None, "x"], "flag": True}
        elif shape.type_name == "list" and isinstance(value, list):
            for item in value:
                add(item, shape.member)
        elif shape.type_name == "map" and isinstance(value, dict):
            for item in value.values():
                add(item, shape.value)

    add(parsed, model.output_shape)


# (mangle, realistic): botocore itself can hand the scanner missing members, empty containers and new
# members (a newer model); nulls it produces only inside JSON lists. Realistic shapes must be handled by
# the collectors themselves; the others may end in a contained InternalError gap, never a lost account.
MANGLES = [
    pytest.param(_drop_keys, True, id="missing-keys"),
    pytest.param(_empty_containers, True, id="empty-containers"),
    pytest.param(_add_fields, True, id="extra-fields"),
    pytest.param(_null_top, False, id="null-values"),
    pytest.param(_null_leaves, False, id="null-leaves"),
]
# Not mangled into wrong types: botocore's parser builds every value from the service model, so a type
# cannot change; what can vary is presence (missing keys), nulls, empty containers and new fields.
# Discovery's own reads (Organizations, STS) are the caller's; these tests mangle what collectors read.
UNMANGLED_SERVICES = {"organizations", "sts"}


@pytest.mark.parametrize(("mangle", "realistic"), MANGLES)
def test_unexpected_shapes_never_crash(estate: Estate, clean: tuple[CliRun, list[Seen]],
                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                       caplog: pytest.LogCaptureFixture, mangle: Any, realistic: bool) -> None:
    """Successful responses mangled after parsing: the scan finishes, loses no account, records gaps."""
    import botocore.session

    mangled: list[str] = []

    def after_call(http_response: Any = None, parsed: Any = None, model: Any = None, **_: Any) -> None:
        if model is None or not isinstance(parsed, dict) or getattr(http_response, "status_code", 500) >= 300:
            return
        if model.service_model.service_name in UNMANGLED_SERVICES:
            return
        mangle(parsed, model)
        mangled.append(f"{model.service_model.service_name}:{model.name}")

    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register("after-call", after_call)
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
    fast_retries(monkeypatch)
    caplog.set_level(logging.WARNING, logger="audit_bedrock")
    with Proxy(estate.endpoint) as proxy:
        run = scan(monkeypatch, proxy, tmp_path, "--fail-on", "none", "--save-facts", str(tmp_path / "facts.json"))
    assert mangled, "no response was mangled"
    assert run.rc in (0, 1, 3) and run.doc is not None
    validate_facts(json.loads((tmp_path / "facts.json").read_text()))  # odd shapes still give vocabulary types
    lost = [a for a in run.doc["scan"]["accounts"] if a["status"] == "error"]
    assert not lost, f"accounts lost to an unexpected shape: {lost}"
    crashes = [r.getMessage() for r in caplog.records if "unexpected" in r.getMessage()]
    if realistic:
        assert not crashes, f"a collector crashed instead of handling the shape: {crashes}"
    internal = [f for f in run.findings() if f["rule_id"] == "SCAN-003"
                and "InternalError" in f["properties"]["error_codes"]]
    assert len(crashes) == 0 or internal, "a collector crashed and no SCAN-003 reports it"
    if mangle is _add_fields:  # unknown fields are ignored: nothing changes
        assert run.findings() == clean[0].findings()


# --- a baseline diff calls "fixed" only what this run read again (issue 12) -------------------------

def _baseline_diff(run: CliRun) -> tuple[set[str], dict[str, str]]:
    assert run.doc is not None
    return ({f["id"] for f in run.doc["fixed"]},
            {f["id"]: f["properties"]["not_rechecked"] for f in run.doc.get("not_rechecked", [])})


@pytest.mark.parametrize("case", ["narrowed-scope", "assume-role-denied", "fact-denied"])
def test_baseline_fixes_only_what_was_rechecked(estate: Estate, clean: tuple[CliRun, list[Seen]],
                                                monkeypatch: pytest.MonkeyPatch, tmp_path: Path, case: str) -> None:
    """Findings outside what the run read (other accounts and regions, an account whose AssumeRole fails,
    a rule whose facts were denied) are carried as not re-checked, never listed as fixed."""
    fast_retries(monkeypatch)
    ref = clean[0]
    baseline = str(ref.out_dir / "findings.json")
    victim = estate.ids["payments-prod"]
    extra = ["--fail-on", "none", "--baseline", baseline]
    with Proxy(estate.endpoint) as proxy:
        if case == "narrowed-scope":
            extra += ["--accounts", victim, "--regions", "us-east-1"]
        elif case == "assume-role-denied":
            proxy.add(Rule(match(assume_role_into=victim), "deny"))
        else:  # the bucket policies behind BIL-012/BIL-013 cannot be read
            proxy.add(Rule(match(action="s3:GetBucketPolicy"), "deny"))
        run = scan(monkeypatch, proxy, tmp_path, *extra)
    fixed, carried = _baseline_diff(run)
    assert not fixed, "nothing was fixed in the estate between the two runs"
    gone = {f["id"] for f in ref.findings() if f["status"] == "open"} - {f["id"] for f in run.findings()}
    assert gone and set(carried) == gone
    for f in ref.findings():
        if f["id"] not in carried:
            continue
        if case == "narrowed-scope":
            assert f["account_id"] != victim or f["region"] not in ("us-east-1", None)
        elif case == "assume-role-denied":
            assert f["account_id"] == victim and "not scanned" in carried[f["id"]]
        else:
            assert "could not be read" in carried[f["id"]]
    assert run.doc is not None
    # The next run, reading this one as its baseline, still knows the carried findings: a full clean
    # scan marks every one of them unchanged, and none is new.
    with Proxy(estate.endpoint) as proxy:
        again = scan(monkeypatch, proxy, tmp_path / "again", "--fail-on", "none",
                     "--baseline", str(run.out_dir / "findings.json"))
    assert {f["id"] for f in again.findings() if f["baseline"] == "new"} == set()
    coverage_only = {f["id"] for f in run.findings() if f["rule_id"].startswith("SCAN-")} - \
        {f["id"] for f in ref.findings()}
    assert _baseline_diff(again) == (coverage_only, {})  # only this run's own SCAN-* gaps are resolved
